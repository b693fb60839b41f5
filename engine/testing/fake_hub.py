"""A loopback Hugging Face Hub for tests: a real HTTP server serving one repo from a folder.

It answers what huggingface_hub 2.x asks: model info (`/api/models/<repo>[/revision/<rev>]`,
siblings with sizes, blob ids and LFS sha256 when `blobs=true`), paths-info, and HEAD/GET on
`/<repo>/resolve/<rev>/<file>` with ETag, X-Repo-Commit, X-Linked-Size and X-Linked-Etag.
LFS files redirect to a second port standing in for the CDN (another origin, as on the real Hub,
so huggingface_hub stops its HEAD there and drops the auth header). Both honour single Range
requests with 206, or 416 past the end. Errors carry the Hub's X-Error-Code.

Knobs for tests: cut or stall a file's body after N bytes, corrupt it, refuse the repo (404,
401), gate its files, serve slowly, rewrite the model info as a hostile mirror would; every request
is logged with the body bytes really sent.

    with FakeHub(write_tiny_repo(tmp_path / "repo")) as hub:   # sets HF_ENDPOINT meanwhile
        plan_download(dest, endpoint=hub.endpoint)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import functools
import hashlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer

DEFAULT_REPO_ID = "openai/gpt-oss-20b"
# Like the Hub: these patterns, and anything over 10 MB, are stored in LFS.
LFS_PATTERNS = ("*.safetensors", "*.bin")
LFS_MIN_BYTES = 10_000_000
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = {
    "info": re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"),
    "paths": re.compile(rf"^/api/models/{_REPO}/paths-info/(?P<rev>[^/]+)$"),
    "resolve": re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"),
    "cdn": re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$"),
}
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclasses.dataclass(frozen=True)
class HubFile:
    path: str
    disk: Path
    size: int
    sha256: str
    lfs: bool
    blob_id: str  # the git object id: of the LFS pointer file for LFS files, else of the content

    def lfs_info(self) -> dict[str, Any]:
        return {"size": self.size, "pointerSize": len(_lfs_pointer(self.sha256, self.size))}


@dataclasses.dataclass
class Request:
    """One request, logged as it arrives and updated while it is answered.

    Counts are updated before each write, so a client that has seen a byte finds it counted.
    """

    method: str
    path: str
    range: str | None
    authorized: bool
    file: str | None = None  # the repo file a resolve or CDN request was about
    status: int = 0
    body_bytes: int = 0


@dataclasses.dataclass
class _Fault:
    kind: Literal["cut", "stall", "corrupt"]
    after_bytes: int
    seconds: float
    times: int | None


class FakeHub:
    """Serves `folder` as model repo `repo_id` on 127.0.0.1 until `close()`."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        repo_id: str = DEFAULT_REPO_ID,
        redirect_lfs: bool = True,
        send_chunk: int = 16 << 10,
    ) -> None:
        self.repo_id = repo_id
        self.redirect_lfs = redirect_lfs
        self.send_chunk = send_chunk
        self.bytes_per_second: float | None = None  # slow mode when set
        self.files = _scan(Path(folder))
        listing = "".join(f"{p}:{f.sha256}\n" for p, f in sorted(self.files.items()))
        self.commit = hashlib.sha1(listing.encode()).hexdigest()
        self._by_sha = {f.sha256: f for f in self.files.values()}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._log: list[Request] = []
        self._connections: set[socket.socket] = set()
        self._faults: dict[str, list[_Fault]] = {}
        self._refusal: tuple[int, str | None, str, bool] | None = None
        self._tamper: Callable[[dict[str, Any]], Any] | None = None
        self._hub = _Server(self, "hub")
        self._cdn = _Server(self, "cdn")
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        for server in (self._hub, self._cdn):
            # A short poll keeps close() (which waits for one poll) from slowing every test.
            serve = functools.partial(server.serve_forever, poll_interval=0.01)
            threading.Thread(target=serve, name="fake-hub", daemon=True).start()
        self._saved_env: str | None = None

    def close(self) -> None:
        """Stop listening and drop kept-alive connections too, as a vanished host would."""
        self._closing.set()
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeHub:
        # Only code that reads HF_ENDPOINT per call (engine.download, subprocesses) sees this:
        # huggingface_hub itself reads it once at import, so pass `endpoint=` to it.
        self._saved_env = os.environ.get("HF_ENDPOINT")
        os.environ["HF_ENDPOINT"] = self.endpoint
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._saved_env is None:
            os.environ.pop("HF_ENDPOINT", None)
        else:
            os.environ["HF_ENDPOINT"] = self._saved_env
        self.close()

    def cut(self, path: str, after_bytes: int, *, times: int | None = 1) -> None:
        """The next GET(s) of `path` drop the connection after `after_bytes` body bytes."""
        self._add_fault(path, _Fault("cut", after_bytes, 0.0, times))

    def stall(self, path: str, after_bytes: int, seconds: float, *, times: int | None = 1) -> None:
        """The next GET(s) of `path` go silent after `after_bytes` for `seconds`, then drop."""
        self._add_fault(path, _Fault("stall", after_bytes, seconds, times))

    def corrupt(self, path: str, *, times: int | None = 1) -> None:
        """The next GET(s) of `path` flip the bits of the byte in the middle of the file."""
        self._add_fault(path, _Fault("corrupt", 0, 0.0, times))

    def refuse(
        self,
        status: int,
        *,
        error_code: str | None = "RepoNotFound",
        message: str = "Repository not found",
        files_only: bool = False,
    ) -> None:
        """Answer every repo request (or only file requests) with `status` and X-Error-Code."""
        with self._lock:
            self._refusal = (status, error_code, message, files_only)

    def gate(self) -> None:
        """Gate the repo as the Hub does: its info stays public, its files answer 401 GatedRepo."""
        message = f"Access to model {self.repo_id} is restricted. You must have access to it."
        self.refuse(401, error_code="GatedRepo", message=message, files_only=True)

    def tamper(self, edit: Callable[[dict[str, Any]], Any]) -> None:
        """Serve `edit(info)` as the model info, as a hostile mirror could: `info` is the honest
        answer (with file metadata), which `edit` may change in place (returning None) or
        replace by returning any JSON value."""
        with self._lock:
            self._tamper = edit

    def reset(self) -> None:
        """Drop every fault, refusal, gate and tampering, and the request log."""
        with self._lock:
            self._faults.clear()
            self._refusal = None
            self._tamper = None
            self._log.clear()
        self.bytes_per_second = None

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return [dataclasses.replace(r) for r in self._log]

    def file_gets(self, path: str) -> list[Request]:
        """GETs that sent (some of) the bytes of repo file `path`."""
        return [r for r in self.requests if r.method == "GET" and r.file == path and r.body_bytes]

    def served_bytes(self, path: str | None = None) -> int:
        """Body bytes of repo files sent by GETs, of one file or of all."""
        return sum(
            r.body_bytes
            for r in self.requests
            if r.method == "GET" and r.file is not None and path in (None, r.file)
        )

    def _add_fault(self, path: str, fault: _Fault) -> None:
        if path not in self.files:
            raise ValueError(f"{path} is not in the fake repo")
        with self._lock:
            self._faults.setdefault(path, []).append(fault)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            faults = self._faults.get(path)
            if not faults:
                return None
            fault = faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    faults.pop(0)
            return fault

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    def info(self, blobs: bool) -> Any:
        with self._lock:
            edit = self._tamper
        honest = self._honest_info(blobs)
        if edit is None:
            return honest
        edited = edit(honest)
        return honest if edited is None else edited

    def _honest_info(self, blobs: bool) -> dict[str, Any]:
        siblings: list[dict[str, Any]] = []
        for f in self.files.values():
            sibling: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                sibling |= {"size": f.size, "blobId": f.blob_id}
                sibling["lfs"] = f.lfs_info() | {"sha256": f.sha256} if f.lfs else None
            siblings.append(sibling)
        gated = "manual" if self._refusal and self._refusal[1] == "GatedRepo" else False
        return {"id": self.repo_id, "sha": self.commit, "private": False, "gated": gated} | {
            "lastModified": "2025-08-05T00:00:00.000Z",
            "library_name": "transformers",
            "siblings": siblings,
        }

    def paths_info(self, paths: list[str]) -> list[dict[str, Any]]:
        out = []
        for f in (self.files[p] for p in paths if p in self.files):
            entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size}
            entry["path"] = f.path
            if f.lfs:
                entry["lfs"] = f.lfs_info() | {"oid": f.sha256}
            out.append(entry)
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: FakeHub, role: Literal["hub", "cdn"]) -> None:
        self.hub = hub
        self.role = role
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's pooled client expects
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs, ~10 ms a file
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read FakeHub.requests instead of stderr

    def setup(self) -> None:
        super().setup()
        with self.server.hub._lock:
            self.server.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.hub._lock:
            self.server.hub._connections.discard(self.connection)
        super().finish()

    def _dispatch(self) -> None:
        hub = self.server.hub
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        auth = self.headers.get("Authorization") is not None
        self._req = Request(self.command, url.path, self.headers.get("Range"), auth)
        hub._record(self._req)
        # Read any request body now, so a refusal still leaves the kept-alive connection in sync.
        self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if self.server.role == "cdn":
                match = _ROUTES["cdn"].match(url.path)
                found = hub._by_sha.get(match["sha"]) if match else None
                if found is None:
                    self._error(404, "EntryNotFound", "Entry not found")
                else:
                    self._send_file(found, {})
                return
            for name in ("info", "paths", "resolve"):
                match = _ROUTES[name].match(url.path)
                if match and self._allowed(match, name):
                    self._route(name, match, query)
                    return
                if match:
                    return
            self._error(404, None, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_HEAD = do_GET = do_POST = _dispatch

    def _allowed(self, match: re.Match[str], route: str) -> bool:
        hub = self.server.hub
        repo, rev = unquote(match["repo"]), unquote(match["rev"] or "main")
        if route == "resolve":
            self._req.file = unquote(match["path"])
        refusal = hub._refusal
        if refusal is not None and (route == "resolve" or not refusal[3]):
            self._error(refusal[0], refusal[1], refusal[2])
        elif repo != hub.repo_id:
            self._error(404, "RepoNotFound", "Repository not found")
        elif rev not in ("main", hub.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        else:
            return True
        return False

    def _route(self, name: str, match: re.Match[str], query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        if name == "info":
            blobs = query.get("blobs", ["false"])[0].lower() in ("true", "1")
            self._json(hub.info(blobs))
        elif name == "paths":
            self._json(hub.paths_info(parse_qs(self._body.decode()).get("paths", [])))
        else:
            self._resolve(unquote(match["path"]))

    def _resolve(self, path: str) -> None:
        hub = self.server.hub
        f = hub.files.get(path)
        if f is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on main")
            return
        headers = {"X-Repo-Commit": hub.commit, "ETag": f'"{f.sha256 if f.lfs else f.blob_id}"'}
        if f.lfs:
            headers |= {"X-Linked-Size": str(f.size), "X-Linked-Etag": f'"{f.sha256}"'}
        if f.lfs and hub.redirect_lfs:
            headers["Location"] = f"{hub.cdn_endpoint}/cdn/{f.sha256}"
            self._head(302, headers | {"Content-Length": "0"})
            return
        self._send_file(f, headers)

    def _send_file(self, f: HubFile, headers: dict[str, str]) -> None:
        self._req.file = f.path
        start, end = 0, f.size
        match = _RANGE.match(self.headers.get("Range", ""))
        status = 200
        if match:
            start = int(match[1])
            end = min(int(match[2]) + 1, f.size) if match[2] else f.size
            if start >= f.size or start >= end:
                self._head(416, {"Content-Range": f"bytes */{f.size}", "Content-Length": "0"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        headers |= {"Content-Length": str(end - start), "Accept-Ranges": "bytes"}
        self._head(status, headers | {"Content-Type": "application/octet-stream"})
        if self.command == "GET":
            fault = self.server.hub._take_fault(f.path)
            self._send_body(f, start, end, fault)

    def _send_body(self, f: HubFile, start: int, end: int, fault: _Fault | None) -> None:
        hub = self.server.hub
        limit = end - start
        if fault is not None and fault.kind in ("cut", "stall"):
            limit = min(limit, fault.after_bytes)
        flip = f.size // 2 if fault is not None and fault.kind == "corrupt" else -1
        with f.disk.open("rb") as src:
            src.seek(start)
            pos = start
            while pos < start + limit and not hub._closing.is_set():
                chunk = bytearray(src.read(min(hub.send_chunk, start + limit - pos)))
                if not chunk:
                    break
                if pos <= flip < pos + len(chunk):
                    chunk[flip - pos] ^= 0xFF
                self._req.body_bytes += len(chunk)
                self.wfile.write(chunk)
                pos += len(chunk)
                if hub.bytes_per_second:
                    time.sleep(len(chunk) / hub.bytes_per_second)
        if limit < end - start:
            if fault is not None and fault.kind == "stall":
                hub._closing.wait(fault.seconds)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self._req.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        length = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        self._head(status, length | (headers or {}))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message} | ({"X-Error-Code": code} if code else {})
        if code == "EntryNotFound":
            headers["X-Repo-Commit"] = self.server.hub.commit  # the repo exists, the file does not
        self._json({"error": message}, status, headers)


def _scan(folder: Path) -> dict[str, HubFile]:
    files = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        rel = p.relative_to(folder).as_posix()
        data = p.read_bytes()
        lfs = len(data) >= LFS_MIN_BYTES or any(fnmatch.fnmatch(p.name, g) for g in LFS_PATTERNS)
        sha256 = hashlib.sha256(data).hexdigest()
        blob = _lfs_pointer(sha256, len(data)) if lfs else data
        blob_id = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
        files[rel] = HubFile(rel, p, len(data), sha256, lfs, blob_id)
    return files


def _lfs_pointer(sha256: str, size: int) -> bytes:
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    return text.encode()


def write_tiny_repo(folder: str | os.PathLike[str], *, num_shards: int = 2, seed: int = 0) -> Path:
    """A tiny gpt-oss repo laid out like openai/gpt-oss-20b, including the files we skip."""
    out = write_checkpoint(Path(folder), tiny_config(), seed=seed, num_shards=num_shards)
    write_synthetic_tokenizer(out)
    extras = {
        "generation_config.json": b'{"bos_token_id": 199998, "eos_token_id": [200002, 199999]}',
        "tokenizer_config.json": b'{"model_max_length": 131072}',
        "special_tokens_map.json": b'{"eos_token": "<|return|>"}',
        "chat_template.jinja": b"{{ messages }}",
        "README.md": b"# tiny gpt-oss",
        "original/config.json": b'{"num_hidden_layers": 4}',
        "original/model.safetensors": bytes(range(256)) * 64,
        "metal/model.bin": bytes(4096),
    }
    for name, data in extras.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return out
