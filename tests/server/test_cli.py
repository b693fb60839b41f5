"""oss-desk-serve's key handling: local-only by default, never unauthenticated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server import cli
from server.auth import KeyError_, is_loopback, resolve_key


def test_loopback_hosts_are_recognised() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def test_a_network_host_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match=r"^Refusing to serve on 0\.0\.0\.0 without an API key"):
        resolve_key("0.0.0.0", None, None, tmp_path / "key")
    assert not (tmp_path / "key").exists()
    key, _ = resolve_key("0.0.0.0", "a-long-enough-key", None, tmp_path / "key")
    assert key == "a-long-enough-key"


def test_a_loopback_key_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    where = tmp_path / "config" / "server-api-key"
    key, line = resolve_key("127.0.0.1", None, None, where)
    assert key in line and str(where) in line  # printed once, with where it is kept
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert where.read_text().strip() == key
    again, line2 = resolve_key("127.0.0.1", None, None, where)
    assert again == key and key not in line2  # not printed again


def test_a_key_file_is_read_and_an_empty_one_refused(tmp_path: Path) -> None:
    good = tmp_path / "key"
    good.write_text("file-key-123456\n")
    assert resolve_key("0.0.0.0", None, good, tmp_path / "x")[0] == "file-key-123456"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(KeyError_, match="is empty"):
        resolve_key("127.0.0.1", None, empty, tmp_path / "x")


def test_the_command_exits_before_loading_when_the_host_is_unsafe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--model", str(tmp_path / "missing"), "--host", "0.0.0.0"])
    assert code == 2
    assert "Refusing to serve on 0.0.0.0" in capsys.readouterr().err
