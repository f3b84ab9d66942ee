"""`skintrouble retrain` and `skintrouble models ...`: the ML engineer's loop from a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli.common import err, migrate_database
from infra.settings import get_settings

models_app = typer.Typer(help="Model versions and aliases (poc -> mvp -> release).", no_args_is_help=True)


def _registry():  # type: ignore[no-untyped-def]
    from pipelines.mlops.registry import Registry

    return Registry.from_settings(get_settings())


def retrain(
    epochs: Annotated[int, typer.Option(help="training epochs")] = 30,
    imgsz: Annotated[int, typer.Option(help="training input size")] = 640,
    batch: Annotated[int, typer.Option(help="batch size")] = 8,
    start_from: Annotated[str, typer.Option("--from", help="release or scratch")] = "release",
    dataset: Annotated[
        str | None, typer.Option(help="a registered snapshot id to train on besides the reviewed labels")
    ] = None,
    queue: Annotated[bool, typer.Option(help="send to the training queue instead of running here")] = False,
) -> None:
    """Fine-tune on reviewed labels (+ a registered snapshot); registers a new version with alias poc."""
    from infra.db.repositories.audit import Actor
    from infra.db.unit_of_work import unit_of_work
    from pipelines.errors import Refused
    from pipelines.mlops.retraining import request_run
    from pipelines.resources import get_resources

    settings = get_settings()
    migrate_database()
    params = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "from": start_from}
    if dataset:
        params["dataset"] = dataset
    try:
        with unit_of_work(settings.sqlalchemy_url) as uow:
            run_id = request_run(uow=uow, actor=Actor.operator(), params=params, enqueue=queue).id
    except Refused as refused:
        err.print(f"[red]{refused.code}: {refused.message}[/red]")
        raise typer.Exit(1) from refused
    if queue:
        typer.echo(run_id)
        return
    from pipelines.mlops.retraining import run_training

    with Progress(TextColumn("retraining"), BarColumn(), TimeElapsedColumn(), console=err) as progress:
        progress.add_task("train", total=None)
        version = run_training(run_id, settings=settings, store=get_resources().store)
    err.print(f"[green]registered version {version} (alias poc) from training run {run_id}[/green]")
    typer.echo(version)


@models_app.command("list")
def models_list() -> None:
    """Versions with their aliases and tags."""
    registry = _registry()
    typer.echo(
        json.dumps({"aliases": registry.aliases(), "versions": [v.to_dict() for v in registry.versions()]}, indent=2)
    )


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="model version")],
    alias: Annotated[str, typer.Option(help="poc, mvp or release")] = "mvp",
    reason: Annotated[str, typer.Option(help="why (kept in the history)")] = "promoted from the CLI",
    force: Annotated[bool, typer.Option(help="override a refusing gate (recorded)")] = False,
) -> None:
    """Move an alias to a version if it beats the current holder on the frozen benchmark."""
    from infra.db.repositories.audit import Actor
    from infra.db.unit_of_work import session_scope
    from pipelines.mlops.promotion import PromotionRefused, promote

    settings = get_settings()
    try:
        with session_scope(settings.sqlalchemy_url) as session:
            event = promote(
                session=session,
                registry=_registry(),
                settings=settings,
                version=version,
                alias=alias,
                actor=Actor.operator(),
                reason=reason,
                force=force,
            )
            typer.echo(json.dumps({"alias": event.alias, "version": event.version, "figures": event.figures}))
    except PromotionRefused as refused:
        err.print(f"[red]refused: {refused}[/red]")
        typer.echo(json.dumps(refused.figures))
        raise typer.Exit(1) from refused


@models_app.command("rollback")
def models_rollback(
    alias: Annotated[str, typer.Option(help="alias to move back")] = "release",
    reason: Annotated[str, typer.Option(help="why")] = "rolled back from the CLI",
) -> None:
    """Move an alias back to its previous holder."""
    from infra.db.repositories.audit import Actor
    from infra.db.unit_of_work import session_scope
    from pipelines.mlops.promotion import rollback

    try:
        with session_scope(get_settings().sqlalchemy_url) as session:
            event = rollback(session=session, registry=_registry(), alias=alias, actor=Actor.operator(), reason=reason)
            typer.echo(json.dumps({"alias": event.alias, "version": event.version}))
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@models_app.command("benchmark")
def models_benchmark(
    src: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="labelled YOLO folder (e.g. ACNE04)")],
    out: Annotated[Path, typer.Option("--out", help="new, empty folder for the frozen benchmark")],
    split: Annotated[str, typer.Option(help="split folder to take; 'all' for a folder without splits")] = "valid",
    part: Annotated[str, typer.Option(help="report | selection | all (detector.datasets.splits)")] = "report",
) -> None:
    """Freeze a real labelled folder (by default valid's report part) as the promotion gate's benchmark."""
    from pipelines.mlops.benchmark import build_benchmark

    if part not in {"report", "selection", "all"}:
        raise typer.BadParameter("part must be report, selection or all", param_hint="--part")
    try:
        folder = build_benchmark(
            src, out, split=None if split == "all" else split, part=None if part == "all" else part
        )
    except (FileExistsError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    info = json.loads((folder / "benchmark.json").read_text(encoding="utf-8"))
    err.print(f"frozen benchmark: {info['images']} photos, digest {info['digest']}")
    err.print(f"use it: export SKINTROUBLE_BENCHMARK_DIR={folder.resolve()}")
    typer.echo(json.dumps(info))


@models_app.command("bootstrap")
def models_bootstrap() -> None:
    """Register the shipped model as the first `release` when nothing holds it (idempotent)."""
    typer.echo(bootstrap())


def bootstrap() -> str:
    from infra.db.migrate import upgrade
    from infra.db.unit_of_work import session_scope
    from pipelines.mlops.retraining import bootstrap_release

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        return bootstrap_release(session=session, registry=_registry(), settings=settings)


def dataset_register(
    src: Annotated[Path, typer.Argument(exists=True, help="Dataset folder or annotation file")],
    fmt: Annotated[str, typer.Option("--format", help="yolo | voc | coco | labelstudio")] = "yolo",
    name: Annotated[str | None, typer.Option(help="Snapshot name (default: source folder name)")] = None,
) -> None:
    """Import a labelled dataset into var/datasets and register it, so training runs can name it by id."""
    from infra.db.migrate import upgrade
    from infra.db.unit_of_work import session_scope
    from pipelines.mlops.datasets import import_folder

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        row = import_folder(session=session, src=src, root=settings.var_path / "datasets", fmt=fmt, name=name)
        snapshot_id = row.id
    err.print(f'registered snapshot {snapshot_id}: train with --dataset {snapshot_id} or {{"dataset": ...}}')
    typer.echo(snapshot_id)


def register(app: typer.Typer) -> None:
    from detector.cli import dataset_app

    app.command()(retrain)
    dataset_app.command("register")(dataset_register)
    app.add_typer(models_app, name="models")
