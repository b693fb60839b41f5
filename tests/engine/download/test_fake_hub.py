"""The fake Hub answers huggingface_hub itself the way the real Hub does, faults included."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, RepoFile, hf_hub_download
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from engine.testing.fake_hub import FakeHub
from tests.engine.download.conftest import SHARD_1


def test_model_info_lists_siblings_with_lfs_sha256(hub: FakeHub, tiny_repo: Path) -> None:
    info = HfApi(endpoint=hub.endpoint).model_info(hub.repo_id, files_metadata=True)
    assert info.sha == hub.commit
    siblings = {s.rfilename: s for s in info.siblings or []}
    shard = siblings[SHARD_1]
    assert shard.lfs is not None
    assert shard.lfs.sha256 == hashlib.sha256((tiny_repo / SHARD_1).read_bytes()).hexdigest()
    assert shard.lfs.size == (tiny_repo / SHARD_1).stat().st_size
    config = siblings["config.json"]
    assert config.lfs is None and config.size == (tiny_repo / "config.json").stat().st_size
    assert "original/model.safetensors" in siblings


def test_paths_info_matches_model_info(hub: FakeHub) -> None:
    api = HfApi(endpoint=hub.endpoint)
    files = api.get_paths_info(hub.repo_id, ["config.json", SHARD_1, "nope.txt"])
    by_path = {f.path: f for f in files if isinstance(f, RepoFile)}
    assert set(by_path) == {"config.json", SHARD_1}
    siblings = api.model_info(hub.repo_id, files_metadata=True).siblings or []
    sibling = next(s for s in siblings if s.rfilename == SHARD_1)
    shard = by_path[SHARD_1]
    assert shard.blob_id == sibling.blob_id
    assert shard.lfs is not None and sibling.lfs is not None
    assert shard.lfs.sha256 == sibling.lfs.sha256


@pytest.mark.parametrize("name", ["config.json", SHARD_1])
def test_hf_hub_download_fetches_exact_bytes(
    hub: FakeHub, tiny_repo: Path, tmp_path: Path, name: str
) -> None:
    path = hf_hub_download(
        hub.repo_id,
        name,
        local_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        endpoint=hub.endpoint,
    )
    assert Path(path).read_bytes() == (tiny_repo / name).read_bytes()


def test_lfs_files_redirect_to_another_origin_that_honours_range(hub: FakeHub) -> None:
    url = f"{hub.endpoint}/{hub.repo_id}/resolve/main/{SHARD_1}"
    head = httpx2.head(url)
    assert head.status_code == 302
    assert head.headers["Location"].startswith(hub.cdn_endpoint)
    assert head.headers["X-Repo-Commit"] == hub.commit
    size = int(head.headers["X-Linked-Size"])
    part = httpx2.get(url, headers={"Range": "bytes=100-199"}, follow_redirects=True)
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    past_end = httpx2.get(url, headers={"Range": f"bytes={size}-"}, follow_redirects=True)
    assert past_end.status_code == 416


def test_cut_drops_the_connection_after_n_bytes(hub: FakeHub) -> None:
    hub.cut(SHARD_1, 1000)
    url = f"{hub.endpoint}/{hub.repo_id}/resolve/main/{SHARD_1}"
    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.get(url, follow_redirects=True)
    assert hub.served_bytes(SHARD_1) == 1000
    assert len(httpx2.get(url, follow_redirects=True).content) == hub.files[SHARD_1].size


def test_errors_carry_the_hub_error_codes(hub: FakeHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.endpoint)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("openai/no-such-model")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(hub.repo_id, revision="v9")
    hub.gate()
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            hub.repo_id, "config.json", local_dir=tmp_path, endpoint=hub.endpoint, token=False
        )
