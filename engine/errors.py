"""The engine's exceptions. The first sentence of each message is what a user sees."""


class EngineError(Exception):
    """Base of every error the engine reports on purpose."""


class ModelLoadError(EngineError):
    """The model directory cannot be used: missing, truncated or inconsistent files."""


class TokenizerError(EngineError):
    """The tokenizer files are missing or unreadable."""


class ContextOverflowError(EngineError):
    """The prompt and the answer do not fit in the model's context."""


class KernelUnavailableError(EngineError):
    """A custom kernel could not be compiled or failed its self-test."""


class CacheTrimError(EngineError):
    """A KV cache cannot be cut back to the requested length without recomputation."""
