"""The Hub's file list is checked whole before any name or hash becomes a path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.download import DownloadError, RemoteFile, plan_download
from engine.download.layout import name_problem, partial_path
from engine.download.listing import InvalidListing, remote_files
from engine.download.plan import is_wanted
from engine.testing.fake_hub import FakeHub
from tests.engine.download.conftest import SHARD_1

SHA256 = "ab" * 32
BLOB = "cd" * 20


@dataclass
class Lfs:
    size: object
    sha256: object


@dataclass
class Sibling:
    rfilename: object
    size: object = None
    blob_id: object = None
    lfs: Lfs | None = None


def listing(*siblings: Sibling) -> list[RemoteFile]:
    return remote_files(list(siblings), is_wanted, repo_id="o/r", endpoint="http://mirror")


@pytest.mark.parametrize(
    "name",
    ["config.json", "original/config.json", "model-00001-of-00002.safetensors", "a b/ü.json"],
)
def test_plain_relative_names_pass(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "a file name is empty"),
        ("..", "has an empty, '.' or '..' part"),
        ("../config.json", "'..' part"),
        ("original/../../config.json", "'..' part"),
        ("./config.json", "'.' or '..' part"),
        ("original//config.json", "has an empty"),
        ("original/", "has an empty"),
        ("/etc/passwd", "is an absolute path"),
        ("..\\..\\config.json", "contains a backslash"),
        ("config\x00.json", "contains a NUL"),
        ("config\n.json", "control character"),
        ("\ud800.json", "is not valid Unicode"),
        ("x" * 201 + ".json", "is too long"),
        ("/".join(["abc"] * 300), "is too long"),
        (7, "a file name is 7, not text"),
        (None, "a file name is NoneType, not text"),
    ],
)
def test_names_that_could_leave_the_folder_are_refused(name: object, problem: str) -> None:
    found = name_problem(name)
    assert found is not None and problem in found


def test_a_valid_listing_gives_the_wanted_files_with_their_hashes() -> None:
    files = listing(
        Sibling("config.json", 10, BLOB),
        Sibling(SHARD_1, 1, "ef" * 20, Lfs(100, SHA256)),
        Sibling("original/model.safetensors", 5, "01" * 20, Lfs(5, "cd" * 32)),
        Sibling("README.md"),  # no metadata: fine for a file we skip
    )
    assert files == [
        RemoteFile("config.json", 10, BLOB, False),
        RemoteFile(SHARD_1, 100, SHA256, True),
    ]


@pytest.mark.parametrize(
    ("sibling", "problem"),
    [
        (Sibling(SHARD_1, lfs=Lfs(100, "/../../../../../" + "0" * 48)), "not a SHA-256 hex digest"),
        (Sibling(SHARD_1, lfs=Lfs(100, SHA256.upper())), "not a SHA-256 hex digest"),
        (Sibling(SHARD_1, lfs=Lfs(100, SHA256[:40])), "not a SHA-256 hex digest"),
        (Sibling("config.json", 10, "/../../../../../" + "0" * 24), "not a git object hex digest"),
        (Sibling("config.json", 10, SHA256), "not a git object hex digest"),
        (Sibling("config.json", 10, 12345), "has the hash 12345"),
        (Sibling(SHARD_1, lfs=Lfs(-1, SHA256)), "has the size -1, not a byte count"),
        (Sibling(SHARD_1, lfs=Lfs(True, SHA256)), "has the size True"),
        (Sibling(SHARD_1, lfs=Lfs(2**60, SHA256)), "has the size 1152921504606846976"),
        (Sibling("config.json", "10", BLOB), "has the size '10'"),
        (
            Sibling("README.md", 10, "nope"),
            "'README.md' has the hash 'nope'",
        ),  # skipped, still checked
        (Sibling("../README.md"), "'..' part"),
    ],
)
def test_a_bad_hash_size_or_name_refuses_the_whole_listing(sibling: Sibling, problem: str) -> None:
    good = Sibling("config.json", 10, BLOB) if sibling.rfilename != "config.json" else Sibling("x")
    with pytest.raises(InvalidListing) as refused:
        listing(good, sibling)
    message = str(refused.value)
    assert message.startswith("The server's file list for o/r is invalid: ")
    assert problem in message and "http://mirror" in message
    assert refused.value.kind == "server"


def test_a_name_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidListing, match=r"it lists 'config\.json' twice"):
        listing(Sibling("config.json", 10, BLOB), Sibling("config.json", 11, BLOB))


def test_a_wanted_file_without_metadata_is_a_server_error() -> None:
    with pytest.raises(DownloadError, match=r"gave no size or hash for config\.json"):
        listing(Sibling("config.json", size=10))


def test_remote_files_refuse_to_be_built_from_bad_parts() -> None:
    """The last guard before a path: even code that skips the listing check gets no path."""
    with pytest.raises(ValueError, match=r"'\.\.' part"):
        RemoteFile("../config.json", 1, BLOB, lfs=False)
    with pytest.raises(ValueError, match="is not a hex digest"):
        RemoteFile("config.json", 1, "/../../../../../" + "0" * 48, lfs=True)
    remote = RemoteFile("config.json", 1, BLOB, lfs=False)
    assert partial_path(Path("/m"), remote) == Path(
        f"/m/.oss-desk/partial/config.json.{BLOB[:16]}.part"
    )


def _retag(info: dict[str, Any]) -> None:
    info["sha"] = "main"


def test_plan_refuses_a_commit_that_is_not_a_git_id(hub: FakeHub, dest: Path) -> None:
    hub.tamper(_retag)
    with pytest.raises(InvalidListing, match="its commit id 'main' is not a git object id"):
        plan_download(dest, endpoint=hub.endpoint, token=False)


@pytest.mark.parametrize(
    "answer", [[1, 2], "not json", {"siblings": "x", "sha": "0" * 40}, {"siblings": [{"lfs": 1}]}]
)
def test_plan_turns_a_malformed_answer_into_a_download_error(
    hub: FakeHub, dest: Path, answer: object
) -> None:
    hub.tamper(lambda _info: answer)
    with pytest.raises(InvalidListing, match=r"its answer is malformed \(\w+Error\)"):
        plan_download(dest, endpoint=hub.endpoint, token=False)
    assert not dest.exists()
