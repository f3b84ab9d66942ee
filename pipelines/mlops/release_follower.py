"""Which model version serving processes follow, looked up without importing MLflow.

`import mlflow` costs an API process about 130 MB (pandas, pyarrow, scipy) for one question asked every
`model_refresh_seconds`: who holds `release`? This module asks it through MLflow's REST API when the tracking
URI is a server, or reads the registry's alias table when it is a database (the embedded default), and
downloads a new release's model folder in a short-lived child process, once per release, into the same cache
`Registry.download` uses. An unreachable registry raises, so serving keeps its loaded model
(`ModelProvider`) instead of falling back to the shipped one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from infra.settings import REPO_ROOT, Settings
from pipelines.mlops.registry import NOT_FOUND  # importing it does not import MLflow

ALIAS_SQL = text(
    "SELECT v.version, v.source FROM registered_model_aliases a JOIN model_versions v"
    " ON v.name = a.name AND v.version = a.version WHERE a.name = :name AND a.alias = :alias"
)


class RegistryUnreachable(RuntimeError):
    """The registry did not answer: not the same as "nobody holds the alias"."""


def cache_folder(cache_dir: Path, tracking_uri: str, source: str) -> Path:
    """Where a version's model folder is cached: keyed by registry and artifact location (see Registry.download)."""
    return cache_dir / "registry" / hashlib.sha256(f"{tracking_uri}|{source}".encode()).hexdigest()[:20]


def holder(tracking_uri: str, model_name: str, alias: str) -> tuple[str, str] | None:
    """(version, artifact source) holding `alias`, None when nobody does; raises RegistryUnreachable."""
    if tracking_uri.startswith(("http://", "https://")):
        return _holder_rest(tracking_uri, model_name, alias)
    if "://" in tracking_uri and not tracking_uri.startswith("file:"):
        return _holder_sql(tracking_uri, model_name, alias)
    raise ValueError(f"cannot follow a registry at {tracking_uri!r} without MLflow")


def _holder_rest(uri: str, model_name: str, alias: str) -> tuple[str, str] | None:
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias"
    try:
        response = httpx.get(url, params={"name": model_name, "alias": alias}, timeout=5)
    except httpx.HTTPError as exc:
        raise RegistryUnreachable(f"registry {uri} unreachable: {type(exc).__name__}") from exc
    if response.status_code in (400, 404):
        code = response.json().get("error_code", "") if response.content else ""
        if code in NOT_FOUND:
            return None
    if response.status_code != 200:
        raise RegistryUnreachable(f"registry {uri} answered {response.status_code}")
    version = response.json()["model_version"]
    return str(version["version"]), str(version["source"])


def _holder_sql(uri: str, model_name: str, alias: str) -> tuple[str, str] | None:
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None  # no registry database yet: nothing was ever released
    engine = create_engine(uri, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            row = connection.execute(ALIAS_SQL, {"name": model_name, "alias": alias}).first()
    except ProgrammingError:
        return None  # the registry's tables do not exist yet
    except OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise RegistryUnreachable(f"registry database unreachable: {type(exc).__name__}") from exc
    finally:
        engine.dispose()
    return None if row is None else (str(row[0]), str(row[1]))


def fetch(settings: Settings, version: str, source: str) -> Path:
    """The version's model folder in the cache, downloaded by a child process (which imports MLflow) if missing."""
    target = cache_folder(settings.model_cache_dir, settings.tracking_uri, source)
    if (target / "model.json").is_file():
        return target
    args = {"tracking_uri": settings.tracking_uri, "model_name": settings.model_name, "version": version}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.mlops.registry", json.dumps(args), str(settings.model_cache_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not (target / "model.json").is_file():
        raise RegistryUnreachable(f"could not download version {version}: {done.stderr.strip()[-300:]}")
    return target


def release_resolver(settings: Settings):  # type: ignore[no-untyped-def]
    """For ModelProvider: the folder of the current `release` version, or None when nothing is released."""

    def resolve() -> Path | None:
        found = holder(settings.tracking_uri, settings.model_name, "release")
        return None if found is None else fetch(settings, *found)

    return resolve
