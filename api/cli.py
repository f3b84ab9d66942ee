"""The `skintrouble` command line. Run from the repo root, it uses the same embedded state (`var/`) as `make up`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.settings import ROLES, get_settings

app = typer.Typer(help="skintrouble: acne analysis service, pipelines and model tools.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (stored hashed; a new key is shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
err = Console(stderr=True)


def _register_sub_commands() -> None:
    """Sub-commands that live beside their logic: dataset/train/evaluate, retrain/models."""
    from api.demo import register as register_demo
    from api.mlops_cli import register as register_mlops
    from detector.cli import register as register_detector

    register_detector(app)
    register_mlops(app)
    register_demo(app)


def _migrate() -> None:
    from infra.db.migrate import upgrade

    settings = get_settings()
    settings.var_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    _migrate()
    err.print("[green]database is at the latest schema[/green]")


def _create_key(role: str, name: str, same_person_as: str | None = None) -> str:
    from infra.db.engine import session_scope
    from infra.db.repositories import api_keys

    with session_scope(get_settings().sqlalchemy_url) as session:
        person = None
        if same_person_as:
            person, old_role = api_keys.person_of(session=session, prefix=same_person_as.rstrip("…"))
            if old_role != role:
                raise LookupError(f"the key {same_person_as} has the role {old_role}, not {role}")
        _, raw = api_keys.create_key(session=session, role=role, name=name, person_id=person)
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
    _migrate()
    try:
        raw = _create_key(role, name, same_person_as)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    err.print(f"created a {role} key named {name!r}; it is not stored in clear, keep it now:")
    typer.echo(raw)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, role, name); the keys themselves are never shown again."""
    from infra.db.engine import session_scope
    from infra.db.repositories import api_keys

    _migrate()
    with session_scope(get_settings().sqlalchemy_url) as session:
        for key in api_keys.list_keys(session=session):
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.prefix}…  {key.role:<14} {state:<8} {key.name}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix as `keys list` shows it")]) -> None:
    """Revoke one key at once (rotation: `keys create` the new one, deploy it, then revoke the old)."""
    from infra.db.engine import session_scope
    from infra.db.repositories import api_keys

    _migrate()
    try:
        with session_scope(get_settings().sqlalchemy_url) as session:
            key = api_keys.revoke_by_prefix(session=session, prefix=prefix.rstrip("…"))
            role, name = key.role, key.name
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    err.print(f"revoked the {role} key {prefix.rstrip('…')}… named {name!r}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from infra.logging_config import log_config

    _migrate()
    uvicorn.run(
        "api.main:create_app", factory=True, host=host, port=port, workers=workers, log_config=log_config("INFO")
    )


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "analysis,review,training",
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run a Celery worker on the configured broker."""
    from pipelines.celery_worker import run_worker

    _migrate()
    run_worker(queues=queues.split(","), concurrency=concurrency)


@app.command()
def beat() -> None:
    """Run the Celery beat scheduler (retraining checks, lease expiry)."""
    from pipelines.celery_worker import run_beat

    _migrate()
    run_beat()


@app.command()
def up(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """API, an analysis worker, a training worker and beat on embedded defaults; Ctrl-C stops them all."""
    settings = get_settings()
    _migrate()
    from api.mlops_cli import bootstrap

    err.print(f"model registry: release is version {bootstrap()} ({settings.tracking_uri})")
    keys = {role: _create_key(role, "make-up") for role in ROLES}
    keys_file = settings.var_path / "dev-keys.json"
    keys_file.write_text(json.dumps(keys, indent=2))
    keys_file.chmod(0o600)
    exe = [sys.executable, "-m", "api.cli"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Each child leads its own process group, so stopping one also stops what it forked (the worker's pool).
    children = [
        subprocess.Popen([*exe, *command], env=env, start_new_session=True) for command in up_components(host, port)
    ]
    url = f"http://{host}:{port}"
    err.print(f"\n[bold green]skintrouble is starting at {url}[/bold green]  (docs: {url}/docs, review: {url}/review)")
    for role, raw in keys.items():
        err.print(f"  {role:<14} X-API-Key: {raw}")
    err.print(f"  (keys also in {keys_file}; Ctrl-C stops everything)\n")

    stop = threading.Event()
    # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored. SIGHUP too: a closed
    # terminal would otherwise end `up` alone and leave its children (in their own sessions) running.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and all(child.poll() is None for child in children):
        stop.wait(0.5)
    if not stop.is_set():
        err.print("[red]a component exited; stopping the others[/red]")
    _stop_all(children)


def up_components(host: str, port: int) -> list[list[str]]:
    """What `up` runs: analyses and reviews on one worker, training on a worker of its own (a 30-epoch retrain
    must never hold up analyses), beat, and the API."""
    return [
        ["worker", "--queues", "analysis,review"],
        ["worker", "--queues", "training"],
        ["beat"],
        ["serve", "--host", host, "--port", str(port)],
    ]


def _stop_all(children: list[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    """SIGTERM every child's process group (warm shutdown), then SIGKILL what is left after `grace` seconds."""
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@app.command("check-quality")
def check_quality(
    images: Annotated[list[Path], typer.Argument(help="photos to check")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Run the quality gate on photos."""
    from pipelines.analysis import ANALYSIS_LONG_SIDE, thresholds_from
    from pipelines.photos import PhotoError, decode_photo, decode_stored
    from quality_gate import assess

    settings = get_settings()
    thresholds = thresholds_from(settings)
    failed = False
    for path in images:
        try:
            photo = decode_photo(path.read_bytes(), max_pixels=settings.max_image_pixels)
        except (PhotoError, OSError) as exc:
            failed = True
            _print_error(path, exc, as_json)
            continue
        pixels = decode_stored(photo.jpeg, min_long_side=ANALYSIS_LONG_SIDE)  # what the API judges, too
        report = assess(pixels.rgb, thresholds, photo_size=(photo.width, photo.height))
        line = {
            "image": str(path),
            "accepted": report.accepted,
            "retake_codes": report.retake_codes,
            "measures": report.measures,
        }
        if as_json:
            typer.echo(json.dumps(line))
        else:
            verdict = "accepted" if report.accepted else "retake: " + ", ".join(report.retake_codes)
            typer.echo(f"{path}: {verdict}")
    if failed:
        raise typer.Exit(1)


def _print_error(path: Path, exc: Exception, as_json: bool) -> None:
    code = getattr(exc, "code", "unreadable_file")
    message = getattr(exc, "message", str(exc))
    if as_json:
        typer.echo(json.dumps({"image": str(path), "error": {"code": code, "message": message}}))
    else:
        err.print(f"[red]{path}: {code}: {message}[/red]")


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="photos to analyse")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    conf: Annotated[
        float | None, typer.Option(help="list findings down to this confidence (count/grade unchanged)")
    ] = None,
    skip_quality_gate: Annotated[bool, typer.Option(help="analyse even photos the gate rejects")] = False,
    model: Annotated[Path | None, typer.Option(help="model folder (default: the shipped model)")] = None,
) -> None:
    """Analyse photos with the quality gate and the detector."""
    from detector.onnx_runtime import Detector
    from pipelines.analysis import analyze_jpeg, outcome_to_dict, policy_from, thresholds_from
    from pipelines.photos import PhotoError, decode_photo

    settings = get_settings()
    detector = Detector.load(model or settings.model_dir, settings.model_cache_dir, threads=settings.detector_threads)
    failed = False
    for path in images:
        try:
            photo = decode_photo(path.read_bytes(), max_pixels=settings.max_image_pixels)
        except (PhotoError, OSError) as exc:
            failed = True
            _print_error(path, exc, as_json)
            continue
        outcome = analyze_jpeg(
            photo.jpeg,
            photo_size=(photo.width, photo.height),
            case_id=str(path),
            detector=detector,
            thresholds=thresholds_from(settings),
            policy=policy_from(settings),
            skip_quality_gate=skip_quality_gate,
            conf=conf,
        )
        line = {"image": str(path), **outcome_to_dict(outcome)}
        if outcome.rejected:
            line["model_version"] = detector.version
        if as_json:
            typer.echo(json.dumps(line))
        elif outcome.rejected:
            typer.echo(f"{path}: rejected ({', '.join(outcome.quality.retake_codes)})")
        else:
            sev = line["severity"]
            typer.echo(f"{path}: {line['lesion_count']} lesions, grade {sev['grade']} ({sev['label']})")
    if failed:
        raise typer.Exit(1)


_register_sub_commands()

if __name__ == "__main__":
    app()
