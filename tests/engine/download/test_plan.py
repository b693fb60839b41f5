"""Planning: which files, how big, what is already here, and whether the disk has room."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from engine.download import DownloadError, check_disk, plan_download
from engine.download.layout import partial_path
from engine.testing.fake_hub import FakeHub
from tests.engine.download.conftest import SHARD_1, SHARD_2

ENGINE_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    SHARD_1,
    SHARD_2,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
}


class Usage(NamedTuple):
    total: int
    used: int
    free: int


def free_space(nbytes: int) -> Callable[[Path], Usage]:
    return lambda path: Usage(total=10**12, used=10**12 - nbytes, free=nbytes)


def test_plan_lists_only_the_files_the_engine_reads(
    hub: FakeHub, tiny_repo: Path, dest: Path
) -> None:
    plan = plan_download(dest, endpoint=hub.endpoint)
    assert {f.name for f in plan.files} == ENGINE_FILES  # no original/, metal/, README, .tiktoken
    assert plan.commit == hub.commit
    for f in plan.files:
        data = (tiny_repo / f.name).read_bytes()
        assert f.size == len(data) and f.status == "missing" and f.present_bytes == 0
        if f.name.endswith(".safetensors"):
            assert f.sha256 == hashlib.sha256(data).hexdigest()
    assert plan.total_bytes == sum((tiny_repo / n).stat().st_size for n in ENGINE_FILES)
    assert plan.remaining_bytes == plan.total_bytes and not plan.is_complete


def test_plan_counts_partial_and_unverified_files(
    hub: FakeHub, tiny_repo: Path, dest: Path
) -> None:
    first = plan_download(dest, endpoint=hub.endpoint)
    shard = next(f for f in first.files if f.name == SHARD_1)
    part = partial_path(dest, shard.remote)
    part.parent.mkdir(parents=True)
    part.write_bytes((tiny_repo / SHARD_1).read_bytes()[:1000])
    shutil.copy(tiny_repo / "config.json", dest / "config.json")
    (dest / SHARD_2).write_bytes(b"an older, shorter shard")

    plan = plan_download(dest, endpoint=hub.endpoint)
    by_name = {f.name: f for f in plan.files}
    assert (by_name[SHARD_1].status, by_name[SHARD_1].present_bytes) == ("partial", 1000)
    assert by_name["config.json"].status == "unverified"
    assert (by_name[SHARD_2].status, by_name[SHARD_2].present_bytes) == ("missing", 0)
    assert plan.present_bytes == 1000 + by_name["config.json"].size


def test_disk_check_refuses_when_free_space_is_short(hub: FakeHub, dest: Path) -> None:
    plan = plan_download(dest, endpoint=hub.endpoint)
    short = check_disk(plan, disk_usage=free_space(50_000_000), margin_bytes=10**9)
    assert not short.ok
    assert short.needed_bytes == plan.remaining_bytes and short.free_bytes == 50_000_000
    assert "Not enough free space" in short.message and "1.0 GB to spare" in short.message
    assert "50.0 MB is free" in short.message

    margin = 1000
    exact = plan.remaining_bytes + margin
    assert check_disk(plan, disk_usage=free_space(exact), margin_bytes=margin).ok
    assert not check_disk(plan, disk_usage=free_space(exact - 1), margin_bytes=margin).ok


def test_disk_check_looks_at_the_nearest_existing_folder(hub: FakeHub, tmp_path: Path) -> None:
    seen: list[Path] = []

    def usage(path: Path) -> Usage:
        seen.append(path)
        return Usage(1, 0, 10**13)

    plan = plan_download(tmp_path / "not" / "yet" / "there", endpoint=hub.endpoint)
    assert check_disk(plan, disk_usage=usage).ok
    assert seen == [tmp_path]


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "words"),
    [
        (404, "RepoNotFound", "Repository not found", "not_found", "was not found"),
        (401, "RepoNotFound", "Invalid username or password.", "not_found", "private"),
        (401, None, "Invalid credentials in Authorization header", "unauthorized", "HTTP 401"),
        (503, None, "Service unavailable", "server", "HTTP 503"),
    ],
)
def test_hub_refusals_become_clear_errors(
    hub: FakeHub, dest: Path, status: int, code: str | None, message: str, kind: str, words: str
) -> None:
    hub.refuse(status, error_code=code, message=message)
    with pytest.raises(DownloadError) as info:
        plan_download(dest, endpoint=hub.endpoint)
    assert info.value.kind == kind
    assert words in str(info.value)
    assert "openai/gpt-oss-20b" in str(info.value)


def test_unknown_repo_and_revision(hub: FakeHub, dest: Path) -> None:
    with pytest.raises(DownloadError, match="openai/gpt-oss-999b was not found") as info:
        plan_download(dest, "openai/gpt-oss-999b", endpoint=hub.endpoint)
    assert info.value.kind == "not_found"
    with pytest.raises(DownloadError, match="no revision 'v2'"):
        plan_download(dest, revision="v2", endpoint=hub.endpoint)


def test_unreachable_hub_is_a_network_error(tiny_repo: Path, dest: Path) -> None:
    with FakeHub(tiny_repo) as gone:
        endpoint = gone.endpoint
    with pytest.raises(DownloadError, match="Cannot reach the Hugging Face Hub") as info:
        plan_download(dest, endpoint=endpoint)
    assert info.value.kind == "network"


def test_a_repo_without_weights_is_refused(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "config.json").write_text("{}")
    with FakeHub(tmp_path / "repo") as hub, pytest.raises(DownloadError, match="not a gpt-oss"):
        plan_download(dest, endpoint=hub.endpoint)


def test_hf_endpoint_is_read_at_call_time(hub: FakeHub, dest: Path) -> None:
    # FakeHub's context manager set HF_ENDPOINT after huggingface_hub was imported.
    assert plan_download(dest).endpoint == hub.endpoint
