"""Command-line entry points (oss-desk-generate, oss-desk-chat)."""
