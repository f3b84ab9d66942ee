"""What every command shares: the stderr console and bringing the database schema up to date."""

from __future__ import annotations

from rich.console import Console

from infra.settings import get_settings

err = Console(stderr=True)


def migrate_database() -> None:
    """Commands that touch the database upgrade it first, so a fresh checkout needs no separate step."""
    from infra.db.migrate import upgrade

    settings = get_settings()
    settings.var_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
