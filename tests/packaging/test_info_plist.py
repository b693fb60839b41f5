"""The Info.plist that packaging/oss_desk.spec passes to PyInstaller's BUNDLE."""

from __future__ import annotations

import plistlib
import tomllib
from types import ModuleType
from typing import Any

import pytest

from tests.packaging.conftest import PACKAGING, ROOT


def pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


@pytest.fixture(scope="module")
def plist(info_plist: ModuleType) -> dict[str, Any]:
    version = info_plist.project_version(ROOT / "pyproject.toml")
    result: dict[str, Any] = info_plist.info_plist(version)
    return result


def test_version_is_pyprojects(info_plist: ModuleType, plist: dict[str, Any]) -> None:
    assert info_plist.project_version(ROOT / "pyproject.toml") == pyproject_version()
    assert plist["CFBundleShortVersionString"] == pyproject_version()
    assert plist["CFBundleVersion"] == info_plist.bundle_version(pyproject_version())


def test_identity_and_system_requirements(plist: dict[str, Any]) -> None:
    assert plist["CFBundleIdentifier"] == "app.ossdesk.OSSDesk"
    assert plist["CFBundleName"] == "OSS Desk"
    assert plist["LSMinimumSystemVersion"] == "14.0"  # mlx 0.32's oldest wheel: macosx_14_0
    assert plist["LSArchitecturePriority"] == ["arm64"]
    assert plist["NSHighResolutionCapable"] is True


def test_opens_documents_without_becoming_their_default_app(plist: dict[str, Any]) -> None:
    types = plist["CFBundleDocumentTypes"]
    utis = {uti for t in types for uti in t["LSItemContentTypes"]}
    assert utis == {
        "com.adobe.pdf",
        "public.plain-text",
        "net.daringfireball.markdown",
        "org.openxmlformats.wordprocessingml.document",
        "public.html",
        "public.comma-separated-values-text",
    }
    assert {t["LSHandlerRank"] for t in types} == {"Alternate"}
    assert {t["CFBundleTypeRole"] for t in types} == {"Viewer"}
    markdown = plist["UTImportedTypeDeclarations"][0]
    assert markdown["UTTypeIdentifier"] == "net.daringfireball.markdown"
    assert "md" in markdown["UTTypeTagSpecification"]["public.filename-extension"]


def test_is_a_valid_property_list(plist: dict[str, Any]) -> None:
    assert plistlib.loads(plistlib.dumps(plist)) == plist


@pytest.mark.parametrize(
    ("version", "expected"), [("0.1.0", "0.1.0"), ("1.2", "1.2"), ("0.2.0rc1", "0.2.0")]
)
def test_bundle_version_keeps_the_release_numbers(
    info_plist: ModuleType, version: str, expected: str
) -> None:
    assert info_plist.bundle_version(version) == expected


def test_bundle_version_rejects_what_is_not_a_release(info_plist: ModuleType) -> None:
    with pytest.raises(ValueError, match="release number"):
        info_plist.bundle_version("dev")


def test_the_spec_builds_the_app_from_these_functions() -> None:
    spec = (PACKAGING / "oss_desk.spec").read_text(encoding="utf-8")
    compile(spec, "oss_desk.spec", "exec")
    assert "info_plist=info_plist.info_plist(version)" in spec
    assert "bundle_identifier=info_plist.BUNDLE_ID" in spec
    assert "info_plist.project_version(" in spec
