"""OSS Desk's local OpenAI-compatible server (`oss-desk-serve`): Responses and Chat Completions
over one model. Qt-free: the HTTP layer talks to a ModelRunner (server.runner), which the
standalone command implements with its own MLX thread and the app can implement with its worker.
"""
