"""app.self_test runs in-process from the source tree (the bundle runs it in `make bundle-test`)."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app import self_test


@pytest.mark.slow
# The offscreen platform says so whenever a main window is shown; the message is harmless.
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_self_test_passes_from_the_source_tree(
    qtbot: QtBot, capsys: pytest.CaptureFixture[str]
) -> None:
    assert self_test.main([]) == 0
    out = capsys.readouterr().out
    for check, _ in self_test.CHECKS:
        assert f"ok    {check}" in out
    assert "self-test passed: 7 checks" in out
    assert "startup_s: " in out


def test_a_failing_check_fails_the_self_test_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(run: self_test.Run) -> str:
        raise self_test.CheckFailed("resources/dark.qss does not exist")

    def crashing(run: self_test.Run) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(self_test, "CHECKS", (("files", broken), ("chat", crashing)))
    assert self_test.main(["--self-test"]) == 1
    captured = capsys.readouterr()
    assert "FAIL  files      resources/dark.qss does not exist" in captured.out
    assert "FAIL  chat       RuntimeError: boom" in captured.out
    assert "self-test FAILED: files, chat" in captured.out
    assert "Traceback" in captured.err  # an unexpected error keeps its traceback


def test_minimal_pdf_is_a_pdf_that_pypdf_reads() -> None:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(self_test._minimal_pdf("Hello PDF")))
    assert "Hello PDF" in reader.pages[0].extract_text()
