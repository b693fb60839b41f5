#!/usr/bin/env bash
# Builds "OSS Desk.app" and a drag-to-Applications .dmg on an Apple silicon Mac, from
# packaging/oss_desk.spec. Run from anywhere; everything goes to build/ (build/dist/ for results).
#
#   PYTHON              Python 3.11+ with the project and the `package` extra installed
#                       (default .venv/bin/python, as `make bundle` sets up)
#   CODESIGN_IDENTITY   e.g. "Developer ID Application: Name (TEAMID)": sign with the hardened
#                       runtime and packaging/entitlements.plist (unset: PyInstaller's ad-hoc
#                       signature, fine on the build Mac only)
#   NOTARY_PROFILE      a `xcrun notarytool store-credentials` profile: notarize and staple the
#                       app and the .dmg (needs CODESIGN_IDENTITY)
#   DRY_RUN=1           print the commands instead of running them (works on any system)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
CODESIGN_IDENTITY=${CODESIGN_IDENTITY:-}
NOTARY_PROFILE=${NOTARY_PROFILE:-}
DRY_RUN=${DRY_RUN:-0}

APP_NAME="OSS Desk"
BUILD=build
DIST=$BUILD/dist
APP=$DIST/$APP_NAME.app
ICONSET=$BUILD/$APP_NAME.iconset
ICNS=$BUILD/$APP_NAME.icns
ENTITLEMENTS=packaging/entitlements.plist
STAGE=$BUILD/dmg-stage
SIGN_ARGS=(--force --timestamp --options runtime --sign "$CODESIGN_IDENTITY")

die() {
    echo "build_macos.sh: $*" >&2
    exit 1
}

# Prints a command, shell-quoted, then runs it unless DRY_RUN=1.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ $DRY_RUN != 1 ]]; then
        "$@"
    fi
}

# Dry run only: prints a command whose last argument stands for many files.
run_each() {
    local what=$1
    shift
    printf '+'
    printf ' %q' "$@"
    printf ' %s\n' "$what"
}

project_version() {
    "$PYTHON" -c 'import pathlib, sys; sys.path.insert(0, "packaging"); import info_plist;
print(info_plist.project_version(pathlib.Path("pyproject.toml")))'
}

check_host() {
    [[ $(uname -s) == Darwin ]] || die "builds the Mac app on macOS only (DRY_RUN=1 prints the steps)"
    [[ $(uname -m) == arm64 ]] || die "MLX needs Apple silicon (arm64); this Mac is $(uname -m)"
    [[ -z $NOTARY_PROFILE || -n $CODESIGN_IDENTITY ]] || die "NOTARY_PROFILE needs CODESIGN_IDENTITY"
    command -v iconutil >/dev/null || die "iconutil is missing (install the Xcode command line tools)"
}

make_icon() {
    # Our own artwork: resources/app-icon.svg rendered at every .iconset size.
    run rm -rf "$ICONSET"
    run "$PYTHON" resources/make_icons.py --out "$BUILD/app-icon" --iconset "$ICONSET"
    run iconutil -c icns "$ICONSET" -o "$ICNS"
}

build_app() {
    run rm -rf "$APP"
    run env OSS_DESK_ICNS="$ICNS" "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath "$DIST" --workpath "$BUILD/pyinstaller" packaging/oss_desk.spec
}

# Apple's order: every nested binary first, then each framework (innermost first), then the app
# with its entitlements; no --deep, which would sign everything with the app's entitlements.
sign_app() {
    if [[ ! -d $APP ]]; then  # a dry run before any build: name what the loops would sign
        run_each "<each Mach-O file in $APP/Contents/Frameworks and Resources>" codesign "${SIGN_ARGS[@]}"
        run_each "<each *.framework in $APP/Contents, innermost first>" codesign "${SIGN_ARGS[@]}"
    else
        local file
        while IFS= read -r -d '' file; do
            if file -b "$file" | grep -q 'Mach-O'; then
                run codesign "${SIGN_ARGS[@]}" "$file"
            fi
        done < <(find "$APP/Contents/Frameworks" "$APP/Contents/Resources" -type f -print0)
        while IFS= read -r -d '' file; do
            run codesign "${SIGN_ARGS[@]}" "$file"
        done < <(find "$APP/Contents" -depth -type d -name '*.framework' -print0)
    fi
    run codesign "${SIGN_ARGS[@]}" --entitlements "$ENTITLEMENTS" "$APP"
    run codesign --verify --deep --strict --verbose=2 "$APP"
}

# Submits `file` and fails unless Apple accepted it; `xcrun notarytool log ID` explains a refusal.
notarize() {
    local file=$1 log
    log="$BUILD/notary-$(basename "$file").json"
    local submit=(xcrun notarytool submit "$file" --keychain-profile "$NOTARY_PROFILE" --wait
        --output-format json)
    if [[ $DRY_RUN == 1 ]]; then
        run "${submit[@]}"
        return
    fi
    run "${submit[@]}" | tee "$log"
    grep -Eq '"status" *: *"Accepted"' "$log" || die "notarization of $file was not accepted (see $log)"
}

make_dmg() {
    local dmg=$1
    run rm -rf "$STAGE" "$dmg"
    run mkdir -p "$STAGE"
    run ditto "$APP" "$STAGE/$APP_NAME.app"
    run ln -s /Applications "$STAGE/Applications"
    run hdiutil create -volname "$APP_NAME" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$dmg"
    run rm -rf "$STAGE"
}

main() {
    if [[ $DRY_RUN != 1 ]]; then
        check_host
    fi
    local version dmg
    version=$(project_version)
    dmg="$DIST/OSS-Desk-$version.dmg"

    make_icon
    build_app
    if [[ -n $CODESIGN_IDENTITY ]]; then
        sign_app
    else
        echo "CODESIGN_IDENTITY is unset: the app keeps PyInstaller's ad-hoc signature"
    fi
    # After signing, so the hardened runtime is part of what is tested.
    run env QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/$APP_NAME" --self-test
    if [[ -n $NOTARY_PROFILE ]]; then
        run ditto -c -k --keepParent "$APP" "$BUILD/$APP_NAME.zip"
        notarize "$BUILD/$APP_NAME.zip"
        run xcrun stapler staple "$APP"  # so the app opens offline once copied out of the .dmg
    fi

    make_dmg "$dmg"
    if [[ -n $CODESIGN_IDENTITY ]]; then
        run codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$dmg"
    fi
    if [[ -n $NOTARY_PROFILE ]]; then
        notarize "$dmg"
        run xcrun stapler staple "$dmg"
        run spctl --assess --type open --context context:primary-signature --verbose "$dmg"
    fi
    echo "built $APP and $dmg"
}

main "$@"
