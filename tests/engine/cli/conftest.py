"""The CLI tests use the chat tests' tiny chat-capable model (session-scoped, written once)."""

from tests.engine.chat.conftest import model, model_dir, tok

__all__ = ["model", "model_dir", "tok"]
