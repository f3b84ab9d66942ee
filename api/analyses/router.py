"""Routes for the mobile app: thin, everything else lives in the service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Header, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import case_access, idempotency
from api.analyses import service
from api.analyses.schemas import AnalysisAcceptedPublic, AnalysisPublic
from api.deps import AppUser, CaseReader, ResourcesDep, UowDep
from api.errors import ApiError, error_body
from pipelines.cases import lifecycle

router = APIRouter(prefix="/v1/analyses", tags=["analyses"])

_ERRORS = {
    400: {"description": "Unreadable or empty image"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Wrong role"},
    413: {"description": "Upload or image too large"},
    415: {"description": "Not an image"},
    422: {"description": "Rejected by the quality gate (`quality_rejected`) or invalid request"},
    503: {"description": "Every analysis slot busy (`busy`, with Retry-After), queue or database unavailable"},
}


@router.post(
    "",
    response_model=AnalysisPublic,
    responses={202: {"model": AnalysisAcceptedPublic}, **_ERRORS},
    summary="Analyse a skin photo",
)
async def create_analysis(
    principal: AppUser,
    uow: UowDep,
    resources: ResourcesDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, HEIC or WebP photo")],
    mode: Annotated[Literal["sync", "async"], Query()] = "sync",
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    data = await image.read(resources.settings.max_upload_bytes + 1)
    if len(data) > resources.settings.max_upload_bytes:
        raise ApiError(413, "payload_too_large", "The photo is larger than the upload limit.")
    fingerprint = idempotency.fingerprint(data, mode)
    replay = idempotency.find_replay(
        session=uow.session, api_key_id=principal.key_id, idempotency_key=idempotency_key, fingerprint=fingerprint
    )
    if replay is None:
        upload = lifecycle.Upload(data, principal.key_id, idempotency_key, fingerprint)
        case = await run_in_threadpool(
            service.create, uow=uow, resources=resources, principal=principal, upload=upload, mode=mode
        )
        idempotency.check_same_request(case, fingerprint)
    else:
        case = replay
    return _case_response(case, accepted=mode == "async")


def _case_response(case, accepted: bool = False) -> Response:  # type: ignore[no-untyped-def]
    """`accepted`: an async request (or its replay) answers 202 with the location, whatever the case's state."""
    if case.status == "rejected" and not accepted:
        err = service.rejection_error(case)
        return JSONResponse(error_body(err.code, err.message, **err.extra), status_code=422)
    if case.status == "pending" or accepted:
        body = AnalysisAcceptedPublic(id=case.id, status="pending", location=f"/v1/analyses/{case.id}")
        return JSONResponse(
            body.model_dump(), status_code=status.HTTP_202_ACCEPTED, headers={"Location": body.location}
        )
    return JSONResponse(service.to_public(case).model_dump(mode="json"))


@router.get("/{case_id}", response_model=AnalysisPublic, responses={404: {"description": "Unknown id"}})
def get_analysis(case_id: str, principal: CaseReader, uow: UowDep) -> AnalysisPublic:
    case = service.get_visible(uow=uow, principal=principal, case_id=case_id)
    case_access.record_read(uow=uow, principal=principal, case_id=case.id, what="details")
    return service.to_public(case)


@router.get(
    "/{case_id}/overlay.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        404: {"description": "Unknown id"},
        409: {"description": "Pending"},
    },
)
def get_overlay(case_id: str, principal: CaseReader, uow: UowDep, resources: ResourcesDep) -> Response:
    case = service.get_visible(uow=uow, principal=principal, case_id=case_id)
    png = service.overlay_png(resources=resources, case=case)
    case_access.record_read(uow=uow, principal=principal, case_id=case.id, what="overlay")
    return Response(
        png,
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.delete("/{case_id}", status_code=204, response_class=Response, responses={404: {"description": "Unknown id"}})
def delete_analysis(case_id: str, principal: AppUser, uow: UowDep, resources: ResourcesDep) -> Response:
    case = service.get_visible(uow=uow, principal=principal, case_id=case_id)
    service.delete(uow=uow, resources=resources, principal=principal, case=case)
    return Response(status_code=204)
