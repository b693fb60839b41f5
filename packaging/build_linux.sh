#!/usr/bin/env bash
# Builds the one-folder Linux bundle from packaging/oss_desk.spec into build/dist/oss-desk/.
# The same spec makes OSS Desk.app on a Mac (build_macos.sh); here it proves the build and the
# bundled program work (make bundle-test runs `oss-desk --self-test` offscreen).
#
#   PYTHON   the interpreter with the project and PyInstaller installed (default .venv/bin/python)
#   DRY_RUN  1: print the commands instead of running them
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DRY_RUN=${DRY_RUN:-0}
DIST=build/dist
WORK=build/pyinstaller

run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ $DRY_RUN != 1 ]]; then
        "$@"
    fi
}

start=$(date +%s)
run "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/oss_desk.spec
if [[ $DRY_RUN != 1 ]]; then
    echo "built $DIST/oss-desk in $(($(date +%s) - start)) s, $(du -sh "$DIST/oss-desk" | cut -f1)"
fi
