"""The engine's exceptions. The first sentence of each message is what a user sees."""

from collections.abc import Sequence
from typing import Literal


class EngineError(Exception):
    """Base of every error the engine reports on purpose."""


class ModelLoadError(EngineError):
    """The model directory cannot be used: missing, truncated or inconsistent files."""


class TokenizerError(EngineError):
    """The tokenizer files are missing or unreadable."""


class ContextOverflowError(EngineError):
    """The prompt and the answer do not fit in the model's context."""


class OutputSchemaError(EngineError):
    """A JSON schema for structured output is invalid or uses what the grammar cannot express."""


class KernelUnavailableError(EngineError):
    """A custom kernel could not be compiled or failed its self-test."""


class CacheTrimError(EngineError):
    """A KV cache cannot be cut back to the requested length without recomputation."""


class UnsupportedDocumentError(EngineError):
    """A file cannot be turned into text: unsupported, damaged, encrypted, empty or too large."""


DownloadErrorKind = Literal[
    "network", "not_found", "unauthorized", "server", "disk_full", "disk", "checksum", "cancelled"
]


class DownloadError(EngineError):
    """A model download failed or was stopped; what was already downloaded is kept for a resume.

    `kind` lets the app pick the remedy (retry, sign in, free space) without parsing the text;
    `files` names the repo files concerned, e.g. those that failed verification.
    """

    def __init__(self, message: str, *, kind: DownloadErrorKind, files: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.kind: DownloadErrorKind = kind
        self.files: tuple[str, ...] = tuple(files)
