"""The model registry, on MLflow: versions of `skintrouble-detector`, aliases poc/mvp/release.

A registered version's artifacts are a model folder (`model.json` + `.pt`) that `Detector.load` serves.
Every function takes the tracking URI explicitly: nothing is configured at import time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from detector.model_card import ModelCard
from infra.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

Alias = Literal["poc", "mvp", "release"]  # PoC -> MVP -> release; the API schemas validate with it
ALIASES: tuple[str, ...] = get_args(Alias)
NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}  # no such model / no such alias
EXPERIMENT = "skintrouble-detector"


OFFLINE_ENV = {
    # `import mlflow` starts a usage-telemetry client that posts to the internet unless told not to; the
    # switch is read once, at that import, so it must be in the environment before the first mlflow import.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # a dead tracking server must cost a serving process seconds, not minutes of retries
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def mlflow_offline() -> None:
    """Call before importing mlflow: nothing but the configured tracking server is ever contacted."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def _client(tracking_uri: str):  # type: ignore[no-untyped-def]
    mlflow_offline()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: list[str]
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """What the API and `models list` show: everything but the artefact source."""
        return {k: v for k, v in asdict(self).items() if k != "source"}


class Registry:
    def __init__(self, *, tracking_uri: str, model_name: str, artifact_root: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.artifact_root = artifact_root
        self.client = _client(tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        return cls(
            tracking_uri=settings.tracking_uri,
            model_name=settings.model_name,
            artifact_root=None if settings.mlflow_tracking_uri else settings.mlflow_artifact_root,
        )

    # experiments and runs
    def experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(EXPERIMENT, artifact_location=self.artifact_root)

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code not in NOT_FOUND:
                raise
            self.client.create_registered_model(self.model_name, description="Acne lesion detector (YOLO, ONNX served)")

    def register_folder(self, *, run_id: str, model_dir: Path, tags: dict[str, str]) -> str:
        """Log a model folder into the run's `model/` artifacts and register it as a new version."""
        self.client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        self._ensure_model()
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        mv = self.client.create_model_version(self.model_name, source=source, run_id=run_id, tags=tags)
        return str(mv.version)

    # versions and aliases
    def versions(self) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        return sorted((self._info(mv) for mv in found), key=lambda v: int(v.version))

    def version(self, version: str) -> VersionInfo:
        return self._info(self.client.get_model_version(self.model_name, version))

    def version_tags(self, version: str) -> dict[str, str]:
        return self.version(version).tags

    def _info(self, mv: Any) -> VersionInfo:
        return VersionInfo(
            version=str(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
            created_at=int(mv.creation_timestamp or 0),
        )

    def alias(self, alias: str) -> str | None:
        """The version holding `alias`, None when nobody does. An unreachable registry raises: "nobody holds
        release" would make every server fall back to the shipped model while MLflow is down."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND:
                return None
            raise

    def aliases(self) -> dict[str, str | None]:
        return {alias: self.alias(alias) for alias in ALIASES}

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def tag(self, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.model_name, version, key, value)

    def download(self, version: str, cache_dir: Path) -> Path:
        """The version's model folder, downloaded once into the cache.

        Keyed by the artifact location, not the version number: two registries (say a test's and the
        developer's) both have a version 1, but never the same artifacts.
        """
        from pipelines.mlops.release_follower import cache_folder

        mv = self.client.get_model_version(self.model_name, version)
        target = cache_folder(cache_dir, self.tracking_uri, mv.source)
        key = target.name
        if (target / "model.json").is_file():
            return target
        import mlflow.artifacts

        tmp = target.with_name(f".{key}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=str(tmp), tracking_uri=self.tracking_uri
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        local.rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
        return target

    def card(self, version: str, cache_dir: Path) -> ModelCard:
        return ModelCard.load(self.download(version, cache_dir))


def log_model_run(
    registry: Registry,
    *,
    model_dir: Path,
    params: dict[str, Any],
    tags: dict[str, str],
    run_name: str,
) -> tuple[str, str]:
    """A run that only carries an existing model folder (bootstrap, hand-made candidates): (run_id, version)."""
    run = registry.client.create_run(registry.experiment_id(), run_name=run_name, tags={"kind": "register"})
    run_id = run.info.run_id
    for key, value in params.items():
        registry.client.log_param(run_id, key, str(value))
    version = registry.register_folder(run_id=run_id, model_dir=model_dir, tags=tags)
    registry.client.set_terminated(run_id)
    return run_id, version


def _download_main(argv: list[str]) -> int:
    """`python -m pipelines.mlops.registry '{"tracking_uri", "model_name", "version"}' CACHE_DIR`: the child
    process `release_follower.fetch` runs, so serving processes never import MLflow themselves."""
    args = json.loads(argv[0])
    registry = Registry(tracking_uri=args["tracking_uri"], model_name=args["model_name"])
    print(registry.download(str(args["version"]), Path(argv[1])))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_download_main(sys.argv[1:]))
