"""The ASGI app: bearer-token auth on every route, /v1/models, /v1/responses and
/v1/chat/completions over one ModelRunner, and OpenAI-style bodies for every error."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server import chat_api, convert, responses_api
from server.errors import ApiError, error_body
from server.runner import ModelRunner
from server.store import ResponseStore


def create_app(runner: ModelRunner, *, api_key: str, store: ResponseStore) -> FastAPI:
    if not api_key:
        raise ValueError("the server needs an API key")
    app = FastAPI(title="OSS Desk", docs_url=None, redoc_url=None, openapi_url=None)
    started = int(time.time())

    app.add_middleware(RequireKey, api_key=api_key)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        message = f"{error.detail}: {request.method} {request.url.path}. See /v1/models."
        return JSONResponse(
            error_body(message, type_="invalid_request_error"), status_code=error.status_code
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        model = {"id": runner.model_id, "object": "model", "created": started, "owned_by": "local"}
        return {"object": "list", "data": [model]}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != runner.model_id:
            raise ApiError(404, f"The model `{model_id}` does not exist.", code="model_not_found")
        return {"id": model_id, "object": "model", "created": started, "owned_by": "local"}

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        body = convert.parse_json_object(await request.body())
        return await responses_api.create(request, body, runner, store)

    @app.get("/v1/responses/{response_id}")
    async def stored_response(response_id: str) -> dict[str, Any]:
        found = store.response(response_id)
        if found is None:
            raise ApiError(404, f"No response with id '{response_id}' is stored.")
        return found

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = convert.parse_json_object(await request.body())
        return await chat_api.create(request, body, runner)

    return app


class RequireKey:
    """Pure ASGI, so streams and disconnects pass through untouched (BaseHTTPMiddleware
    wraps both)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self._app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key):
            await self._app(scope, receive, send)
            return
        what = "Incorrect API key provided" if token else "Missing API key"
        body = error_body(
            f"{what}. Send the server's key as 'Authorization: Bearer KEY' (oss-desk-serve "
            "prints where it is stored).",
            type_="invalid_request_error",
            code="invalid_api_key",
        )
        await JSONResponse(body, status_code=401)(scope, receive, send)
