"""Hostile Hub listings served by the loopback Hub: each is refused before any path is built,
with one clear DownloadError, and nothing appears or changes outside the model folder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine import DownloadError
from engine.testing.fake_hub import FakeHub
from engine.testing.hostile_models import (
    INVALID_LISTING,
    LISTING_CASES,
    ListingCase,
    fetch_listing,
    listing_sandbox,
    snapshot,
)

LIMIT_S = 3.0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", LISTING_CASES, ids=lambda c: c.name)
def test_a_hostile_listing_is_refused_and_writes_nothing(
    case: ListingCase, hub: FakeHub, tmp_path: Path
) -> None:
    dest, victim = listing_sandbox(tmp_path)
    kept = victim.read_bytes()
    before = snapshot(tmp_path, dest)
    hub.tamper(case.edit)
    t0 = time.perf_counter()
    with pytest.raises(DownloadError) as refused:
        fetch_listing(hub, dest)
    assert time.perf_counter() - t0 < LIMIT_S
    assert victim.read_bytes() == kept  # where an escaping hash once made .part land
    assert snapshot(tmp_path, dest) == before
    message = str(refused.value)
    assert message.startswith(INVALID_LISTING) and case.expect in message, message
    assert refused.value.kind == "server"
    assert not dest.exists()  # refused while planning: not even the folder was made
    assert hub.served_bytes() == 0


def test_the_honest_listing_still_downloads(hub: FakeHub, tmp_path: Path) -> None:
    """The checks refuse hostile listings only: the fake Hub's real answer passes them."""
    dest, _victim = listing_sandbox(tmp_path)
    before = snapshot(tmp_path, dest)
    fetch_listing(hub, dest)
    assert (dest / "config.json").is_file() and hub.served_bytes() > 0
    assert snapshot(tmp_path, dest) == before
