"""Renders the app icon (app-icon.svg) to PNGs, and to a macOS .iconset at build time.

    python resources/make_icons.py                     # the small PNGs kept in resources/app-icon/
    python resources/make_icons.py --iconset build/OSS\\ Desk.iconset   # then: iconutil -c icns

The 512 and 1024 px renderings are only made for the .iconset, so no large binary is committed.
Qt only (QSvgRenderer into a QImage); runs headless with the offscreen platform.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "app-icon.svg"
PNG_DIR = HERE / "app-icon"
COMMITTED_SIZES = (16, 32, 64, 128, 256, 512)
# iconutil's names: each point size at 1x and 2x (https://developer.apple.com/design/human-interface-guidelines/app-icons)
ICONSET_POINTS = (16, 32, 128, 256, 512)


def png_name(size: int) -> str:
    return f"app-icon-{size}.png"


def render(svg: Path, size: int) -> QImage:
    """`svg` drawn into a transparent `size`×`size` image."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def _save(image: QImage, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):  # the format follows the .png suffix
        raise OSError(f"cannot write {path}")
    return path


def write_pngs(
    out_dir: Path, sizes: Iterable[int] = COMMITTED_SIZES, svg: Path = SOURCE
) -> list[Path]:
    return [_save(render(svg, s), out_dir / png_name(s)) for s in sizes]


def write_iconset(folder: Path, svg: Path = SOURCE) -> list[Path]:
    """The icon_<n>x<n>[@2x].png files that `iconutil -c icns <folder>` turns into an .icns."""
    written = []
    for points in ICONSET_POINTS:
        written.append(_save(render(svg, points), folder / f"icon_{points}x{points}.png"))
        written.append(_save(render(svg, 2 * points), folder / f"icon_{points}x{points}@2x.png"))
    return written


def _ensure_gui() -> QGuiApplication:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication.instance()
    return app if isinstance(app, QGuiApplication) else QGuiApplication(sys.argv[:1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PNG_DIR, help="folder for the plain PNGs")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(COMMITTED_SIZES))
    parser.add_argument("--iconset", type=Path, help="also write a macOS .iconset folder here")
    args = parser.parse_args(argv)
    _app = _ensure_gui()  # QPainter on a QImage needs no window, but the SVG module wants the app
    for path in write_pngs(args.out, args.sizes):
        print(path)
    if args.iconset:
        for path in write_iconset(args.iconset):
            print(path)


if __name__ == "__main__":
    main()
