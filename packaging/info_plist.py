"""The Info.plist of OSS Desk.app, as a dict: the spec file passes it to PyInstaller's BUNDLE.

Files reach the app as QFileOpenEvents (Dock drop, Finder "Open With", `open -a`) only for the
types declared here; LSHandlerRank Alternate lists us in "Open With" without ever making us the
default app for PDFs or text files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

APP_NAME = "OSS Desk"
BUNDLE_ID = "app.ossdesk.OSSDesk"
# mlx and mlx-metal 0.32 publish macosx_14_0_arm64 wheels and nothing older, and MLX's install
# guide says "macOS >= 14.0"; PySide6 6.12's wheels are macosx_14_0 too.
MIN_MACOS = "14.0"
COPYRIGHT = "OSS Desk contributors. Apache License 2.0."

# (type name, UTIs). Source code conforms to public.plain-text, so it is covered too.
DOCUMENT_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PDF document", ("com.adobe.pdf",)),
    ("Plain text", ("public.plain-text",)),
    ("Markdown document", ("net.daringfireball.markdown",)),
    ("Word document", ("org.openxmlformats.wordprocessingml.document",)),
    ("HTML document", ("public.html",)),
    ("CSV document", ("public.comma-separated-values-text",)),
)

# Not every macOS declares the Markdown UTI itself; importing it makes .md files map to it
# everywhere, and a declaration by the system or another app wins where there is one.
MARKDOWN_UTI = {
    "UTTypeIdentifier": "net.daringfireball.markdown",
    "UTTypeDescription": "Markdown document",
    "UTTypeConformsTo": ["public.plain-text"],
    "UTTypeTagSpecification": {
        "public.filename-extension": ["md", "markdown", "mdown", "mkd"],
        "public.mime-type": ["text/markdown"],
    },
}

_RELEASE = re.compile(r"\d+(\.\d+){0,2}")


def project_version(pyproject: Path) -> str:
    """`[project] version` of pyproject.toml."""
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def bundle_version(version: str) -> str:
    """CFBundleVersion allows at most three dot-separated integers: "0.2.0rc1" -> "0.2.0"."""
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with a release number like 1.2.3")
    return match.group(0)


def document_types() -> list[dict[str, Any]]:
    return [
        {
            "CFBundleTypeName": name,
            "CFBundleTypeRole": "Viewer",
            "LSHandlerRank": "Alternate",
            "LSItemContentTypes": list(utis),
        }
        for name, utis in DOCUMENT_TYPES
    ]


def info_plist(version: str) -> dict[str, Any]:
    """The keys OSS Desk sets on top of PyInstaller's minimal Info.plist (which adds the
    executable and icon file names)."""
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": bundle_version(version),
        "CFBundleDevelopmentRegion": "en",
        "CFBundleDocumentTypes": document_types(),
        "UTImportedTypeDeclarations": [MARKDOWN_UTI],
        "LSMinimumSystemVersion": MIN_MACOS,
        # MLX runs on Apple silicon only: never offer to run under Rosetta.
        "LSArchitecturePriority": ["arm64"],
        "LSApplicationCategoryType": "public.app-category.productivity",
        "NSHighResolutionCapable": True,
        "NSPrincipalClass": "NSApplication",
        "NSHumanReadableCopyright": COPYRIGHT,
    }
