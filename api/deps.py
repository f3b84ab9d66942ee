"""Typed dependencies: every route gets its collaborators as parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from api.errors import ApiError
from infra.db.models import ApiKey
from infra.db.repositories import api_keys as keys_repo
from infra.db.repositories.audit import Actor
from infra.db.unit_of_work import UnitOfWork, unit_of_work
from infra.settings import Settings
from pipelines.resources import Resources


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_uow(settings: SettingsDep) -> Iterator[UnitOfWork]:
    """The request's unit of work: routes commit once at the end; what they did not commit is rolled back."""
    with unit_of_work(settings.sqlalchemy_url, commit_on_exit=False) as uow:
        yield uow


UowDep = Annotated[UnitOfWork, Depends(get_uow)]


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    name: str
    person_id: str = ""  # the person holding the key (several keys over a rotation); defaults to the key itself

    def __post_init__(self) -> None:
        if not self.person_id:
            object.__setattr__(self, "person_id", self.key_id)

    @property
    def actor(self) -> Actor:
        """The key's holder as the audit trail and the services name them."""
        return Actor(id=self.key_id, role=self.role, name=self.name or self.key_id)


def principal_from_key(key: ApiKey) -> Principal:
    return Principal(key_id=key.id, role=key.role, name=key.name, person_id=key.person_id or key.id)


def get_principal(request: Request, uow: UowDep, x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    checked = getattr(request.state, "principal", None)  # api.header_auth already looked the key up
    if isinstance(checked, Principal):
        return checked
    if not x_api_key:
        raise ApiError(401, "missing_api_key", "Send your API key in the X-API-Key header.")
    key = keys_repo.find_active(session=uow.session, raw_key=x_api_key)
    if key is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid.")
    return principal_from_key(key)


def require_role(*roles: str) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (401 without a key, 403 with the wrong one)."""

    def _check(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden_role", f"This endpoint is for the {', '.join(roles)} role.")
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None:
            limiter.check(principal.key_id)
        return principal

    return _check


AppUser = Annotated[Principal, Depends(require_role("app"))]
CaseReader = Annotated[Principal, Depends(require_role("app", "dermatologist"))]
Dermatologist = Annotated[Principal, Depends(require_role("dermatologist"))]
MlEngineer = Annotated[Principal, Depends(require_role("ml-engineer"))]
AnyRole = Annotated[Principal, Depends(require_role("app", "dermatologist", "ml-engineer"))]
