"""Where answers are computed: this Mac, or a server the user chose in Settings › Model (issue
14). Qt-free: the worker's loader and session factory are wrapped so that, with "Use a server"
on, "loading the model" means probing the server, and each chat session is a RemoteSession. The
worker, the answer stream and the window stay as they are.

The API token lives in the system keychain (keyring), keyed by the server's address; the
settings file holds only the address, the model id and the TLS choices. Nothing is sent
anywhere until the user has turned "Use a server" on and given an address.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.engine_requests import Loader, ModelInfo, SessionFactory, TurnSession
from app.remote_client import RemoteError, ServerConfig, ServerProbe, probe
from app.remote_session import REMOTE_CONTEXT_TOKENS, EstimatingTokenizer, RemoteSession
from engine import Message

KEYCHAIN_SERVICE = "OSS Desk server token"
THIS_MAC = "this Mac"


class RemoteChoice(Protocol):
    """The Settings fields this module reads (app.settings.Settings has them)."""

    @property
    def remote_enabled(self) -> bool: ...
    @property
    def remote_url(self) -> str: ...
    @property
    def remote_model(self) -> str: ...
    @property
    def remote_verify_tls(self) -> bool: ...
    @property
    def remote_ca_file(self) -> str: ...


def remote_fields(settings: RemoteChoice) -> tuple[bool, str, str, bool, str]:
    """What decides the server; a change to any of them reconnects."""
    return (
        settings.remote_enabled,
        settings.remote_url,
        settings.remote_model,
        settings.remote_verify_tls,
        settings.remote_ca_file,
    )


def uses_server(settings: RemoteChoice) -> bool:
    return settings.remote_enabled and bool(settings.remote_url.strip())


def read_token(base_url: str) -> str:
    """The token kept for `base_url`, or "" (none kept, or no keychain on this system)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYCHAIN_SERVICE, base_url) or ""
    except KeyringError:
        return ""


def save_token(base_url: str, token: str) -> None:
    """Keeps `token` in the keychain (an empty one deletes it). Raises RemoteError."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        if token:
            keyring.set_password(KEYCHAIN_SERVICE, base_url, token)
        elif keyring.get_password(KEYCHAIN_SERVICE, base_url) is not None:
            keyring.delete_password(KEYCHAIN_SERVICE, base_url)
    except PasswordDeleteError:
        return
    except KeyringError as e:
        raise RemoteError(
            "The token could not be kept in the keychain; unlock it (or install one) and enter "
            "the token again.",
            kind="keychain",
            details=str(e),
        ) from e


def server_config(settings: RemoteChoice, token: str | None = None) -> ServerConfig:
    url = settings.remote_url.strip()
    return ServerConfig(
        base_url=url,
        token=read_token(url) if token is None else token,
        model=settings.remote_model.strip(),
        verify_tls=settings.remote_verify_tls,
        ca_file=settings.remote_ca_file.strip(),
    )


@dataclass(frozen=True)
class RemoteModel:
    """What the worker holds as "the model" while a server answers."""

    config: ServerConfig
    found: ServerProbe


@dataclass(frozen=True)
class LocalModelInfo(ModelInfo):
    @property
    def name(self) -> str:
        # The demo's label comes first, as it must wherever the model is named.
        return (
            f"{super().name} · on {THIS_MAC}" if self.is_demo else f"{super().name} on {THIS_MAC}"
        )

    def diagnostics(self) -> dict[str, str]:
        return super().diagnostics() | {"Answers computed": f"on {THIS_MAC}"}


@dataclass(frozen=True)
class RemoteModelInfo(ModelInfo):
    host: str = ""
    url: str = ""
    api: str = ""
    finish_problem: str = ""  # why Finish Now cannot work with this server ("" if it can)

    @property
    def name(self) -> str:
        return f"{self.path} on {self.host}"

    def diagnostics(self) -> dict[str, str]:
        return {
            "Model": self.path,
            "Answers computed": f"on {self.host}",
            "Server": self.url,
            "API": self.api,
        }


def connect(config: ServerConfig) -> tuple[RemoteModel, EstimatingTokenizer, RemoteModelInfo]:
    """Probes the server and picks the model: the one chosen, else its only (or first) one."""
    found = probe(config)
    model = config.model or (found.models[0] if found.models else "")
    if not model:
        raise RemoteError(
            f"{config.host} serves no models; load one on the server, then probe it again.",
            kind="not_found",
        )
    if found.models and model not in found.models:
        raise RemoteError(
            f"{config.host} does not have the model {model!r}; choose one of "
            f"{', '.join(found.models)} in Settings › Model.",
            kind="not_found",
        )
    config = dataclasses.replace(config, model=model)
    api = "Responses" if found.responses else "Chat Completions"
    info = RemoteModelInfo(
        path=model,
        context_tokens=REMOTE_CONTEXT_TOKENS,
        profile="server",
        host=config.host,
        url=config.base_url,
        api=api,
        finish_problem=found.finish_now_problem(),
    )
    return RemoteModel(config, found), EstimatingTokenizer(), info


def remote_loader(read_settings: Callable[[], RemoteChoice], local: Loader) -> Loader:
    """`local`, unless the settings say a server answers; runs on the engine thread."""

    def load(path: str, profile: str, progress: Callable[[int, int], None]) -> Any:
        settings = read_settings()
        if uses_server(settings):
            return connect(server_config(settings))
        model, tokenizer, info = local(path, profile, progress)
        if type(info) is ModelInfo:
            info = LocalModelInfo(
                **{f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
            )
        return model, tokenizer, info

    return load


def remote_sessions(local: SessionFactory, instructions: str | None) -> SessionFactory:
    """`local`'s sessions for a local model, RemoteSessions for a server."""

    def make(model: Any, tokenizer: Any, history: Sequence[Message]) -> TurnSession:
        if isinstance(model, RemoteModel):
            return RemoteSession.from_probe(
                model.config, model.found, history, instructions=instructions
            )
        return local(model, tokenizer, history)

    return make
