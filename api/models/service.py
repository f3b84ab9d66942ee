"""Model versions, aliases and their history; promotion and rollback with their audit trail.

Blocking (MLflow, benchmark inference): routers run these in the thread pool. Each action commits once, at its
end, through the UnitOfWork: the alias has just moved in MLflow and its history row must be saved with it.
"""

from __future__ import annotations

from api.deps import Principal, UnitOfWork
from api.errors import ApiError
from api.models.schemas import AliasEventPublic, ModelsPublic, PromoteIn, RollbackIn, VersionPublic
from infra.db.models import AliasEvent
from pipelines.mlops import promotion
from pipelines.mlops.registry import Registry
from pipelines.resources import Resources


def to_public(event: AliasEvent) -> AliasEventPublic:
    return AliasEventPublic.model_validate(event)


def registry_for(resources: Resources) -> Registry:
    try:
        return Registry.from_settings(resources.settings)
    except Exception as exc:
        raise ApiError(503, "registry_unavailable", "The model registry is unavailable.") from exc


def unavailable(exc: Exception) -> ApiError:
    return ApiError(503, "registry_unavailable", f"The model registry is unavailable ({type(exc).__name__}).")


def overview(*, uow: UnitOfWork, resources: Resources) -> ModelsPublic:
    registry = registry_for(resources)
    try:
        versions = registry.versions()
        aliases = registry.aliases()
    except Exception as exc:
        raise unavailable(exc) from exc
    return ModelsPublic(
        versions=[VersionPublic(**v.to_dict()) for v in versions],
        aliases=aliases,
        history=[to_public(e) for e in promotion.history(uow.session)],
        serving=resources.models.get().version if resources.models.loaded else None,
    )


def promote(
    *, version: str, body: PromoteIn, principal: Principal, uow: UnitOfWork, resources: Resources
) -> AliasEventPublic:
    registry = registry_for(resources)
    try:
        registry.version(version)
    except Exception as exc:
        raise ApiError(404, "version_not_found", f"No model version {version!r}.") from exc
    try:
        event = promotion.promote(
            session=uow.session,
            registry=registry,
            settings=resources.settings,
            version=version,
            alias=body.alias,
            actor=principal.actor,
            reason=body.reason,
            force=body.force,
        )
    except promotion.PromotionRefused as refused:
        raise ApiError(409, "promotion_refused", str(refused), extra={"figures": refused.figures}) from refused
    except FileNotFoundError as exc:
        raise ApiError(409, "no_benchmark", str(exc)) from exc
    uow.commit()
    return to_public(event)


def rollback(*, body: RollbackIn, principal: Principal, uow: UnitOfWork, resources: Resources) -> AliasEventPublic:
    registry = registry_for(resources)
    try:
        event = promotion.rollback(
            session=uow.session,
            registry=registry,
            alias=body.alias,
            actor=principal.actor,
            reason=body.reason,
        )
    except LookupError as exc:
        raise ApiError(409, "nothing_to_roll_back", str(exc)) from exc
    uow.commit()
    return to_public(event)
