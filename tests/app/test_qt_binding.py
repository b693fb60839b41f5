"""The Qt binding must not leak references to None (PySide6 6.12.0 on CPython 3.11 did, and a long
chat, with several Qt calls per token, would end in "Fatal Python error: none_dealloc")."""

from __future__ import annotations

import os
import subprocess
import sys

SNIPPET = """
import sys
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range(30000):
    label.setText("x")
    app.processEvents()
print(sys.getrefcount(None) - before)
"""


def test_qt_calls_do_not_leak_none() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert abs(int(done.stdout.strip().splitlines()[-1])) < 1000
