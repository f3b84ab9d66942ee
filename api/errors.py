"""One JSON error shape for every failure: `{"error": {"code", "message", ...}}`, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError as DBOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.logging_config import REQUEST_ID_HEADER
from infra.storage import StorageUnavailable
from pipelines.errors import Refused

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "service_unavailable",
}


# The HTTP status of each domain refusal (`pipelines.errors.Refused`); a code not listed answers 422.
REFUSAL_STATUS = {
    "empty_body": 400,
    "unreadable_image": 400,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "dataset_not_found": 422,
    "dataset_revoked": 422,
    "queue_unavailable": 503,
}
# what a client should wait before retrying, for refusals that pass
_RETRY_AFTER = {"queue_unavailable": "30"}


def status_for(refusal: Refused) -> int:
    return REFUSAL_STATUS.get(refusal.code, 422)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers


class ErrorDetail(BaseModel):
    """Some errors add fields (`retake_codes`, `hints`, `retry_after`, `details`...) next to these two."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="stable, machine-readable, e.g. `quality_rejected`")
    message: str = Field(description="for people; wording may change")


class ErrorBody(BaseModel):
    error: ErrorDetail


# answers any route behind an API key can give, whatever the route declares
_KEYED_ERRORS = {
    "401": "Missing or invalid API key",
    "403": "The key's role may not use this endpoint",
    "429": "Rate limit for this key exceeded (`Retry-After` says when to retry)",
    "503": "A dependency (database, queue, registry) is unavailable",
}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers below really send: every 4xx/5xx of every operation gets
    the one error schema (FastAPI would document 422 as its own `HTTPValidationError`), and operations behind
    an API key also list 401/403/429/503. Schema-driven clients and schemathesis then check real error bodies."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(error_schema.pop("$defs", {}))
        components["ErrorBody"] = error_schema
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                responses = operation.setdefault("responses", {})
                keyed = any(
                    p.get("in") == "header" and p.get("name", "").lower() == "x-api-key"
                    for p in operation.get("parameters", [])
                )
                if keyed:
                    for status, description in _KEYED_ERRORS.items():
                        responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = content
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        retry = _RETRY_AFTER.get(exc.code)
        headers = {"Retry-After": retry} if retry else None
        return error_response(status_for(exc), exc.code, exc.message, headers=headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))} for err in exc.errors()
        ]
        return error_response(422, "invalid_request", "The request is not valid.", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(StorageUnavailable)
    async def _storage_down(_: Request, exc: StorageUnavailable) -> JSONResponse:
        log.error("photo store unavailable: %s", exc)
        return error_response(
            503,
            "storage_unavailable",
            "The photo store is unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBOperationalError)
    async def _db_down(_: Request, exc: DBOperationalError) -> JSONResponse:
        log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
        return error_response(
            503, "database_unavailable", "The database is unavailable; try again shortly.", headers={"Retry-After": "5"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        # answered outside every middleware (Starlette's ServerErrorMiddleware): name the request here, the one
        # answer a caller most needs to quote
        request_id = correlation_id.get()
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        return error_response(500, "internal_error", "Something went wrong on our side.", headers=headers)
