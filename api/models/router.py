"""Model versions, aliases and their history, promotion and rollback (role ml-engineer)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import MlEngineer, ResourcesDep, UowDep
from api.models import service
from api.models.schemas import AliasEventPublic, ModelsPublic, PromoteIn, RollbackIn

router = APIRouter(prefix="/v1/models", tags=["models"])
_ERRORS = {401: {"description": "No key"}, 403: {"description": "Wrong role"}, 503: {"description": "Registry down"}}


@router.get("", response_model=ModelsPublic, responses=_ERRORS)
async def list_models(principal: MlEngineer, uow: UowDep, resources: ResourcesDep) -> ModelsPublic:
    return await run_in_threadpool(service.overview, uow=uow, resources=resources)


@router.post(
    "/{version}/promote",
    response_model=AliasEventPublic,
    responses={**_ERRORS, 404: {"description": "Unknown version"}, 409: {"description": "Refused by the gate"}},
)
async def promote(
    version: str, body: PromoteIn, principal: MlEngineer, uow: UowDep, resources: ResourcesDep
) -> AliasEventPublic:
    return await run_in_threadpool(
        service.promote, version=version, body=body, principal=principal, uow=uow, resources=resources
    )


@router.post(
    "/rollback",
    response_model=AliasEventPublic,
    responses={**_ERRORS, 409: {"description": "Nothing to roll back to"}},
)
async def rollback(body: RollbackIn, principal: MlEngineer, uow: UowDep, resources: ResourcesDep) -> AliasEventPublic:
    return await run_in_threadpool(service.rollback, body=body, principal=principal, uow=uow, resources=resources)
