"""The `skintrouble` app and the commands that run the house. Run from the repo root, it uses the same embedded
state (`var/`) as `make up`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

from api.cli.common import err, migrate_database
from api.cli.keys import create_key
from infra.settings import ROLES, get_settings

app = typer.Typer(help="skintrouble: acne analysis service, pipelines and model tools.", no_args_is_help=True)


def _register_sub_commands() -> None:
    """Sub-commands that live beside their logic: dataset/train/evaluate, retrain/models."""
    from api.cli.analysis import register as register_analysis
    from api.cli.demo import register as register_demo
    from api.cli.keys import register as register_keys
    from api.cli.mlops import register as register_mlops
    from detector.cli import register as register_detector

    register_keys(app)
    register_analysis(app)
    register_detector(app)
    register_mlops(app)
    register_demo(app)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    migrate_database()
    err.print("[green]database is at the latest schema[/green]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from infra.logging_config import log_config

    migrate_database()
    uvicorn.run(
        "api.main:create_app", factory=True, host=host, port=port, workers=workers, log_config=log_config("INFO")
    )


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "analysis,review,training",
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run a Celery worker on the configured broker."""
    from pipelines.tasks.worker import run_worker

    migrate_database()
    run_worker(queues=queues.split(","), concurrency=concurrency)


@app.command()
def beat() -> None:
    """Run the Celery beat scheduler (retraining checks, lease expiry)."""
    from pipelines.tasks.worker import run_beat

    migrate_database()
    run_beat()


@app.command()
def up(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """API, an analysis worker, a training worker and beat on embedded defaults; Ctrl-C stops them all."""
    settings = get_settings()
    migrate_database()
    from api.cli.mlops import bootstrap

    err.print(f"model registry: release is version {bootstrap()} ({settings.tracking_uri})")
    keys = {role: create_key(role, "make-up") for role in ROLES}
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


_register_sub_commands()
