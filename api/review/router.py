"""Routes for dermatologists (and ML engineers for statistics and export): thin, the service does the work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.deps import Dermatologist, Principal, ResourcesDep, UowDep, require_role
from api.review import service
from api.review.schemas import (
    LabelPublic,
    LabelsIn,
    ReviewCasePublic,
    ReviewerPublic,
    ReviewStatsPublic,
    SuspectRoutedPublic,
    SuspectsPublic,
    TaxonomyPublic,
)

router = APIRouter(prefix="/v1/review", tags=["review"])
ReviewReader = Annotated[Principal, Depends(require_role("dermatologist", "ml-engineer"))]

_ERRORS = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Wrong role"},
    404: {"description": "Unknown case"},
}
_LEASE = {409: {"description": "You do not hold this case's lease (`lease_not_held`) or it ran out (`lease_expired`)"}}


@router.get("/me", response_model=ReviewerPublic, responses=_ERRORS, summary="Check a dermatologist key")
def whoami(principal: Dermatologist) -> ReviewerPublic:
    return ReviewerPublic(reviewer_id=principal.key_id, name=principal.name, role=principal.role)


@router.post(
    "/claim",
    response_model=ReviewCasePublic,
    responses={204: {"description": "Nothing left to review"}, **_ERRORS},
    summary="Lease the next case to review",
)
def claim_case(principal: Dermatologist, uow: UowDep, resources: ResourcesDep) -> ReviewCasePublic | Response:
    case = service.claim(uow=uow, resources=resources, principal=principal)
    return Response(status_code=204) if case is None else case


@router.get("/cases/{case_id}", response_model=ReviewCasePublic, responses=_ERRORS)
def get_case(case_id: str, principal: Dermatologist, uow: UowDep, resources: ResourcesDep) -> ReviewCasePublic:
    return service.get_case(uow=uow, resources=resources, principal=principal, case_id=case_id)


@router.get(
    "/cases/{case_id}/photo.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS},
)
def get_photo(case_id: str, principal: Dermatologist, uow: UowDep, resources: ResourcesDep) -> Response:
    return Response(
        service.photo(uow=uow, resources=resources, principal=principal, case_id=case_id),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(
    "/cases/{case_id}/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **_ERRORS},
    summary="Where the detector responds on the photo (objectness map, computed on demand and cached)",
)
def get_heatmap(case_id: str, principal: Dermatologist, uow: UowDep, resources: ResourcesDep) -> Response:
    return Response(
        service.heatmap(uow=uow, resources=resources, case_id=case_id),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post(
    "/cases/{case_id}/labels",
    response_model=LabelPublic,
    status_code=201,
    responses={**_ERRORS, **_LEASE, 422: {"description": "Invalid boxes or grade (code says which)"}},
)
def submit_labels(
    case_id: str, labels: LabelsIn, principal: Dermatologist, uow: UowDep, resources: ResourcesDep
) -> LabelPublic:
    return service.submit(uow=uow, resources=resources, principal=principal, case_id=case_id, labels=labels)


@router.post("/cases/{case_id}/skip", status_code=204, response_class=Response, responses={**_ERRORS, **_LEASE})
def skip_case(case_id: str, principal: Dermatologist, uow: UowDep) -> Response:
    service.skip(uow=uow, principal=principal, case_id=case_id)
    return Response(status_code=204)


@router.get(
    "/taxonomy", response_model=TaxonomyPublic, responses=_ERRORS, summary="The lesion types reviewers label with"
)
def get_taxonomy(principal: ReviewReader, uow: UowDep, resources: ResourcesDep) -> TaxonomyPublic:
    return service.taxonomy(uow=uow, resources=resources)


@router.get("/stats", response_model=ReviewStatsPublic, responses=_ERRORS)
def review_stats(principal: ReviewReader, uow: UowDep, resources: ResourcesDep) -> ReviewStatsPublic:
    return service.stats(uow=uow, resources=resources)


@router.get("/suspects", response_model=SuspectsPublic, responses=_ERRORS, summary="Labels ranked for a second look")
def get_suspects(
    principal: ReviewReader,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SuspectsPublic:
    return service.list_suspects(uow=uow, resources=resources, limit=limit)


@router.post(
    "/suspects/{case_id}/route",
    response_model=SuspectRoutedPublic,
    responses={**_ERRORS, 409: {"description": "Not finished yet (`review_not_finished`) or `already_routed`"}},
    summary="Send a suspect case to another reviewer (reason suspect_label)",
)
def route_suspect(case_id: str, principal: ReviewReader, uow: UowDep) -> SuspectRoutedPublic:
    return service.route_suspect(uow=uow, principal=principal, case_id=case_id)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}, "application/json": {}}}, **_ERRORS},
    summary="Reviewed labels as YOLO (zip), COCO or Label Studio JSON",
)
def export_labels(
    principal: ReviewReader,
    uow: UowDep,
    resources: ResourcesDep,
    format: Annotated[Literal["yolo", "coco", "labelstudio"], Query()] = "coco",
) -> Response:
    body, media_type, filename = service.export(uow=uow, resources=resources, principal=principal, fmt=format)
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
