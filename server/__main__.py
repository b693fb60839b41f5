"""`python -m server ...` is `oss-desk-serve ...`: what `mlx.launch --python PYTHON -- -m server`
runs on every Mac of a group (mlx.launch execs its command as given, so `-m` needs --python)."""

import sys

from server.cli import main

sys.exit(main())
