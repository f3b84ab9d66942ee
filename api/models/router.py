"""Model versions, aliases and their history, promotion and rollback (role ml-engineer)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.analyses.service import as_utc
from api.deps import MlEngineer, RuntimeDep, UowDep
from api.errors import ApiError
from api.models.schemas import AliasEventPublic, ModelsPublic, PromoteIn, RollbackIn, VersionPublic
from infra.db.models import AliasEvent
from infra.db.repositories import cases as cases_repo
from pipelines import promotion
from pipelines.model_registry import Registry

router = APIRouter(prefix="/v1/models", tags=["models"])
_ERRORS = {401: {"description": "No key"}, 403: {"description": "Wrong role"}, 503: {"description": "Registry down"}}


def _event(e: AliasEvent) -> AliasEventPublic:
    return AliasEventPublic(
        alias=e.alias,
        version=e.version,
        previous_version=e.previous_version,
        actor=e.actor,
        reason=e.reason,
        figures=e.figures,
        created_at=as_utc(e.created_at),
    )


def _registry(runtime: RuntimeDep) -> Registry:
    try:
        return Registry.from_settings(runtime.settings)
    except Exception as exc:
        raise ApiError(503, "registry_unavailable", "The model registry is unavailable.") from exc


@router.get("", response_model=ModelsPublic, responses=_ERRORS)
async def list_models(principal: MlEngineer, uow: UowDep, runtime: RuntimeDep) -> ModelsPublic:
    def read() -> ModelsPublic:
        registry = _registry(runtime)
        serving = runtime.models.get().version if runtime.models.loaded else None
        return ModelsPublic(
            versions=[VersionPublic(**v.to_dict()) for v in registry.versions()],
            aliases=registry.aliases(),
            history=[_event(e) for e in promotion.history(uow.session)],
            serving=serving,
        )

    try:
        return await run_in_threadpool(read)
    except ApiError:
        raise
    except Exception as exc:
        raise ApiError(
            503, "registry_unavailable", f"The model registry is unavailable ({type(exc).__name__})."
        ) from exc


@router.post(
    "/{version}/promote",
    response_model=AliasEventPublic,
    responses={**_ERRORS, 404: {"description": "Unknown version"}, 409: {"description": "Refused by the gate"}},
)
async def promote(
    version: str, body: PromoteIn, principal: MlEngineer, uow: UowDep, runtime: RuntimeDep
) -> AliasEventPublic:
    registry = _registry(runtime)

    def act() -> AliasEvent:
        try:
            registry.version(version)
        except Exception as exc:
            raise ApiError(404, "version_not_found", f"No model version {version!r}.") from exc
        try:
            event = promotion.promote(
                session=uow.session,
                registry=registry,
                settings=runtime.settings,
                version=version,
                alias=body.alias,
                actor=principal.name or principal.key_id,
                reason=body.reason,
                force=body.force,
            )
        except promotion.PromotionRefused as refused:
            raise ApiError(409, "promotion_refused", str(refused), extra={"figures": refused.figures}) from refused
        except FileNotFoundError as exc:
            raise ApiError(409, "no_benchmark", str(exc)) from exc
        cases_repo.record_audit(
            session=uow.session,
            action="model.promoted",
            actor_id=principal.key_id,
            role=principal.role,
            target=f"{body.alias}:{version}",
            details={"reason": body.reason, "force": body.force},
        )
        uow.commit()
        return event

    return _event(await run_in_threadpool(act))


@router.post(
    "/rollback",
    response_model=AliasEventPublic,
    responses={**_ERRORS, 409: {"description": "Nothing to roll back to"}},
)
async def rollback(body: RollbackIn, principal: MlEngineer, uow: UowDep, runtime: RuntimeDep) -> AliasEventPublic:
    registry = _registry(runtime)

    def act() -> AliasEvent:
        try:
            event = promotion.rollback(
                session=uow.session,
                registry=registry,
                alias=body.alias,
                actor=principal.name or principal.key_id,
                reason=body.reason,
            )
        except LookupError as exc:
            raise ApiError(409, "nothing_to_roll_back", str(exc)) from exc
        cases_repo.record_audit(
            session=uow.session,
            action="model.rolled_back",
            actor_id=principal.key_id,
            role=principal.role,
            target=f"{body.alias}:{event.version}",
            details={"reason": body.reason},
        )
        uow.commit()
        return event

    return _event(await run_in_threadpool(act))
