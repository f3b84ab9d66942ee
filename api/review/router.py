"""Routes for dermatologists (and ML engineers for statistics and export): thin, the service does the work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.deps import Dermatologist, Principal, RuntimeDep, UowDep, require_role
from api.review import service
from api.review.schemas import LabelPublic, LabelsIn, ReviewCase, ReviewStats

router = APIRouter(prefix="/v1/review", tags=["review"])
ReviewReader = Annotated[Principal, Depends(require_role("dermatologist", "ml-engineer"))]

_ERRORS = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Wrong role"},
    404: {"description": "Unknown case"},
}
_LEASE = {409: {"description": "You do not hold this case's lease (`lease_not_held`) or it ran out (`lease_expired`)"}}


@router.post(
    "/claim",
    response_model=ReviewCase,
    responses={204: {"description": "Nothing left to review"}, **_ERRORS},
    summary="Lease the next case to review",
)
def claim_case(principal: Dermatologist, uow: UowDep, runtime: RuntimeDep) -> ReviewCase | Response:
    case = service.claim(uow=uow, runtime=runtime, principal=principal)
    return Response(status_code=204) if case is None else case


@router.get("/cases/{case_id}", response_model=ReviewCase, responses=_ERRORS)
def get_case(case_id: str, principal: Dermatologist, uow: UowDep, runtime: RuntimeDep) -> ReviewCase:
    return service.get_case(uow=uow, runtime=runtime, principal=principal, case_id=case_id)


@router.get(
    "/cases/{case_id}/photo.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS},
)
def get_photo(case_id: str, principal: Dermatologist, uow: UowDep, runtime: RuntimeDep) -> Response:
    return Response(
        service.photo(uow=uow, runtime=runtime, principal=principal, case_id=case_id),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post(
    "/cases/{case_id}/labels",
    response_model=LabelPublic,
    status_code=201,
    responses={**_ERRORS, **_LEASE, 422: {"description": "Invalid boxes or grade (code says which)"}},
)
def submit_labels(
    case_id: str, labels: LabelsIn, principal: Dermatologist, uow: UowDep, runtime: RuntimeDep
) -> LabelPublic:
    return service.submit(uow=uow, runtime=runtime, principal=principal, case_id=case_id, labels=labels)


@router.post("/cases/{case_id}/skip", status_code=204, response_class=Response, responses={**_ERRORS, **_LEASE})
def skip_case(case_id: str, principal: Dermatologist, uow: UowDep) -> Response:
    service.skip(uow=uow, principal=principal, case_id=case_id)
    return Response(status_code=204)


@router.get("/stats", response_model=ReviewStats, responses=_ERRORS)
def review_stats(principal: ReviewReader, uow: UowDep) -> ReviewStats:
    return service.stats(uow=uow)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}, "application/json": {}}}, **_ERRORS},
    summary="Reviewed labels as YOLO (zip), COCO or Label Studio JSON",
)
def export_labels(
    principal: ReviewReader,
    uow: UowDep,
    runtime: RuntimeDep,
    format: Annotated[Literal["yolo", "coco", "labelstudio"], Query()] = "coco",
) -> Response:
    body, media_type, filename = service.export(uow=uow, runtime=runtime, principal=principal, fmt=format)
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
