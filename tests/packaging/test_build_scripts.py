"""The build scripts, dry-run (the Mac one cannot run here) and shellcheck-clean."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys

import pytest

from tests.packaging.conftest import PACKAGING, ROOT

IDENTITY = "Developer ID Application: Example Ltd (TEAM123456)"


def dry_run(script: str, **env: str) -> str:
    result = subprocess.run(
        ["bash", str(PACKAGING / script)],
        env={**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def commands(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"+ {name} ")]


def test_mac_build_signs_notarizes_and_makes_a_dmg() -> None:
    out = dry_run("build_macos.sh", CODESIGN_IDENTITY=IDENTITY, NOTARY_PROFILE="oss-desk")
    assert "+ iconutil -c icns" in out
    assert "PyInstaller --noconfirm" in out and "packaging/oss_desk.spec" in out
    signing = commands(out, "codesign")
    app_sign = [c for c in signing if "--entitlements packaging/entitlements.plist" in c]
    assert len(app_sign) == 1 and "--options runtime" in app_sign[0]
    assert "Developer\\ ID\\ Application:\\ Example\\ Ltd\\ \\(TEAM123456\\)" in app_sign[0]
    assert any(c.endswith(".dmg") for c in signing)
    (hdiutil,) = commands(out, "hdiutil")
    assert "create -volname OSS\\ Desk -srcfolder build/dmg-stage" in hdiutil
    assert "build/dist/OSS-Desk-" in hdiutil
    assert "+ ln -s /Applications build/dmg-stage/Applications" in out
    assert len([c for c in commands(out, "xcrun") if "notarytool submit" in c]) == 2
    assert all("--wait" in c for c in commands(out, "xcrun") if "notarytool" in c)
    assert len([c for c in commands(out, "xcrun") if "stapler staple" in c]) == 2
    assert "--self-test" in out


def test_mac_build_without_identity_keeps_the_ad_hoc_signature() -> None:
    out = dry_run("build_macos.sh", CODESIGN_IDENTITY="", NOTARY_PROFILE="")
    assert commands(out, "codesign") == []
    assert "notarytool" not in out
    assert len(commands(out, "hdiutil")) == 1


def test_linux_build_uses_the_same_spec() -> None:
    out = dry_run("build_linux.sh")
    (pyinstaller,) = [line for line in out.splitlines() if "PyInstaller" in line]
    assert "--distpath build/dist" in pyinstaller and pyinstaller.endswith(
        "packaging/oss_desk.spec"
    )


def test_entitlements_grant_no_runtime_exceptions() -> None:
    # See the comment in the file: MLX compiles Metal code out of process; nothing needs JIT.
    with (PACKAGING / "entitlements.plist").open("rb") as f:
        assert plistlib.load(f) == {}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in PACKAGING.glob("*.sh"))
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
