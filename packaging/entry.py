"""The bundled program's entry point: `--self-test` runs app.self_test, anything else the app.

app.main.main dispatches `--self-test` too; doing it here as well keeps the bundle's self-test
independent of the app's argument parsing.
"""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if "--self-test" in args:
        from app.self_test import main as self_test

        return self_test(args)
    try:
        from app.main import main as app_main
    except ModuleNotFoundError as e:
        if e.name != "app.main":
            raise
        print("OSS Desk: this build has no app.main; try --self-test.", file=sys.stderr)
        return 2
    return app_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
