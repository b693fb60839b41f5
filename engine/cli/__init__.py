"""Command-line entry points (oss-desk-generate)."""
