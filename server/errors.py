"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}` with the right status.

Handlers raise ApiError; the app turns it (and Starlette's own 404/405) into that body, so every
client's error handling (the SDK raises BadRequestError, AuthenticationError, ...) works.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or _default_type(status)

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type_=self.type, param=self.param, code=self.code)


def error_body(
    message: str, *, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _default_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status in (429, 503):
        return "server_busy"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"
