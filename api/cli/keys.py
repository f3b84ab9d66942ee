"""`skintrouble keys`: API keys, stored hashed; a new key is shown once."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import err, migrate_database
from infra.settings import ROLES, get_settings

keys_app = typer.Typer(help="API keys (stored hashed; a new key is shown once).", no_args_is_help=True)


def create_key(role: str, name: str, same_person_as: str | None = None) -> str:
    """A new key, stored hashed; who made it, for whom, is in the audit trail."""
    from infra.db.repositories import api_keys, audit
    from infra.db.repositories.audit import Actor
    from infra.db.unit_of_work import session_scope

    with session_scope(get_settings().sqlalchemy_url) as session:
        person = None
        if same_person_as:
            person, old_role = api_keys.person_of(session=session, prefix=same_person_as.rstrip("…"))
            if old_role != role:
                raise LookupError(f"the key {same_person_as} has the role {old_role}, not {role}")
        key, raw = api_keys.create_key(session=session, role=role, name=name, person_id=person)
        details = {"role": role, "name": name, "person": key.person_id or key.id}
        audit.record(session=session, action="key.created", actor=Actor.operator(), target=key.id, details=details)
    return raw


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="app, dermatologist or ml-engineer")],
    name: Annotated[str, typer.Option(help="who or what the key is for")] = "cli",
    same_person_as: Annotated[
        str | None,
        typer.Option(help="prefix of this person's current key (rotation: reviews keep counting as one person)"),
    ] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line."""
    if role not in ROLES:
        err.print(f"[red]unknown role {role!r}; choose one of {', '.join(ROLES)}[/red]")
        raise typer.Exit(2)
    migrate_database()
    try:
        raw = create_key(role, name, same_person_as)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    err.print(f"created a {role} key named {name!r}; it is not stored in clear, keep it now:")
    typer.echo(raw)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, role, name); the keys themselves are never shown again."""
    from infra.db.repositories import api_keys
    from infra.db.unit_of_work import session_scope

    migrate_database()
    with session_scope(get_settings().sqlalchemy_url) as session:
        for key in api_keys.list_keys(session=session):
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.prefix}…  {key.role:<14} {state:<8} {key.name}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix as `keys list` shows it")]) -> None:
    """Revoke one key at once (rotation: `keys create` the new one, deploy it, then revoke the old)."""
    from infra.db.repositories import api_keys, audit
    from infra.db.repositories.audit import Actor
    from infra.db.unit_of_work import session_scope

    migrate_database()
    try:
        with session_scope(get_settings().sqlalchemy_url) as session:
            key = api_keys.revoke_by_prefix(session=session, prefix=prefix.rstrip("…"))
            role, name = key.role, key.name
            audit.record(session=session, action="key.revoked", actor=Actor.operator(), target=key.id)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    err.print(f"revoked the {role} key {prefix.rstrip('…')}… named {name!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
