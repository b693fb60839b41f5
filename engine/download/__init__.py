"""Model download from the Hugging Face Hub: plan, free-disk check, resumable verified fetch.

    plan = plan_download(folder)                 # asks the Hub; cheap local checks only
    check = check_disk(plan)                     # check.ok, check.message
    download(plan, on_progress, cancel)          # blocking; resumes; verifies every file

Qt-free; the app runs `download` on a worker thread and forwards DownloadProgress values.
"""

from engine.download.failures import DownloadCancelled
from engine.download.fetch import download
from engine.download.layout import RemoteFile
from engine.download.plan import (
    DEFAULT_REPO,
    DISK_MARGIN_BYTES,
    WANTED_FILES,
    DiskCheck,
    DownloadPlan,
    PlannedFile,
    check_disk,
    plan_download,
)
from engine.download.progress import DownloadProgress
from engine.download.transfer import RetryPolicy
from engine.errors import DownloadError

__all__ = [
    "DEFAULT_REPO",
    "DISK_MARGIN_BYTES",
    "WANTED_FILES",
    "DiskCheck",
    "DownloadCancelled",
    "DownloadError",
    "DownloadPlan",
    "DownloadProgress",
    "PlannedFile",
    "RemoteFile",
    "RetryPolicy",
    "check_disk",
    "download",
    "plan_download",
]
