"""The deployment files hold together: Docker cannot run here, so compose, the images and the Kubernetes manifests
are checked for structure and against the code they deploy (settings names, CLI commands, routes, queues)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from infra.settings import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "infra" / "deploy"
K8S = DEPLOY / "k8s"
QUEUES = {"analysis", "review", "training"}  # pipelines.tasks.app.QUEUES, read below too
LONG_RUNNING = {"api", "worker", "training-worker", "beat", "postgres", "redis", "minio", "mlflow", "flower"}
ONE_SHOT = {"migrate", "minio-init"}
# names the code reads besides SKINTROUBLE_* (settings aliases, boto3, MLflow's client)
KNOWN_ENV = {"DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|DATABASE_URL|REDIS_URL|BACKEND_STORE_URI|BASIC_AUTH")
# scipy fits the severity grader (evaluate --refit-grader, retraining); serving the grader is numpy only
TRAINING_ONLY = {"torch", "torchvision", "ultralytics", "scipy"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def pinned(image: str) -> bool:
    """A tag other than latest, or a digest: the same manifest always runs the same bits."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in {"", "latest"}


def settings_env_names() -> set[str]:
    return {f"SKINTROUBLE_{name.upper()}" for name in Settings.model_fields}


def cli_commands() -> set[str]:
    from api.cli import app

    return {cmd.name or cmd.callback.__name__.replace("_", "-") for cmd in app.registered_commands}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(DEPLOY / "compose.yaml")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    kustomization = load(K8S / "kustomization.yaml")
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


@pytest.fixture(scope="module")
def example_secrets() -> dict[str, set[str]]:
    docs = yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
    return {doc["metadata"]["name"]: set(doc["stringData"]) for doc in docs if doc}


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for doc in manifests:
        if doc["kind"] in {"Deployment", "Job"}:
            yield doc["kind"], doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc["kind"], doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


# --- compose -------------------------------------------------------------------------------------------------


def test_compose_has_the_whole_stack_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= LONG_RUNNING | ONE_SHOT | {"prometheus"}
    for name in LONG_RUNNING | {"prometheus"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    for name, service in services.items():
        assert pinned(service["image"]), f"{name}: image {service['image']!r} is not pinned"
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_workers_cover_every_queue_and_training_reserves_a_gpu(compose: dict[str, Any]) -> None:
    from pipelines.tasks.app import QUEUES as code_queues

    assert set(code_queues) == QUEUES
    services = compose["services"]
    consumed: set[str] = set()
    for name in ("worker", "training-worker"):
        command = services[name]["command"]
        assert command[0] == "worker"
        consumed |= set(command[command.index("--queues") + 1].split(","))
    assert consumed == QUEUES
    training = services["training-worker"]
    assert training["command"][training["command"].index("--queues") + 1] == "training"
    devices = training["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "Dockerfile.train" in training["build"]["dockerfile"]
    assert services["beat"]["deploy"]["replicas"] == 1
    for name in ("migrate", "api", "worker", "training-worker", "beat"):
        assert services[name]["command"][0] in cli_commands(), name


def test_compose_app_settings_exist_and_photos_go_to_the_s3_store(compose: dict[str, Any]) -> None:
    known = settings_env_names() | KNOWN_ENV
    env = compose["services"]["api"]["environment"]
    for name in env:
        assert name in known, f"{name} is not a setting the code reads"
    assert env["SKINTROUBLE_STORAGE_URL"].startswith("s3://")
    assert env["SKINTROUBLE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["SKINTROUBLE_ENVIRONMENT"] == "production"
    mlflow_cmd = " ".join(compose["services"]["mlflow"]["command"])
    assert "--artifacts-destination s3://" in mlflow_cmd and "MLFLOW_BACKEND_STORE_URI" in mlflow_cmd


def test_compose_holds_no_secret_literals(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                pytest.fail(f"{name}: {key}={value!r} is a secret in compose.yaml; use an env file or a secret")
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"://[^/\s:@]+:[^$/\s@]+@", text), "a URL with credentials in compose.yaml"


def test_generated_secrets_fill_every_reference_consistently(compose: dict[str, Any], tmp_path: Path) -> None:
    """Run gen-secrets.sh in a scratch copy: every env file and secret compose names exists, and the passwords
    inside the URLs are the ones the servers are given."""
    shutil.copy2(DEPLOY / "gen-secrets.sh", tmp_path / "gen-secrets.sh")
    (tmp_path / "secrets").mkdir()
    subprocess.run(["sh", str(tmp_path / "gen-secrets.sh")], check=True, capture_output=True, timeout=30)
    out = tmp_path / "secrets"
    for service in compose["services"].values():
        for env_file in service.get("env_file", []):
            assert (out / Path(env_file).name).is_file(), env_file
    for secret in compose["secrets"].values():
        assert (out / Path(secret["file"]).name).is_file(), secret
    app_env = dict(line.split("=", 1) for line in (out / "app.env").read_text().split())
    redis_pw = (out / "redis_password").read_text().strip()
    postgres_pw = (out / "postgres_password").read_text().strip()
    assert app_env["REDIS_URL"] == f"redis://:{redis_pw}@redis:6379/0"
    assert f":{postgres_pw}@postgres:5432/skintrouble" in app_env["DATABASE_URL"]
    assert app_env["AWS_SECRET_ACCESS_KEY"] in (out / "minio.env").read_text()
    assert len(redis_pw) >= 24 and redis_pw != postgres_pw
    assert oct((out / "app.env").stat().st_mode)[-3:] == "600"
    before = (out / "app.env").read_text()
    subprocess.run(["sh", str(tmp_path / "gen-secrets.sh")], check=True, capture_output=True, timeout=30)
    assert (out / "app.env").read_text() == before  # a rerun never rotates a password under a running stack
    assert (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()[1] == "*"


def env_example_sections() -> dict[str, dict[str, str]]:
    """env.example split by its `# --- secrets/<file>` headers."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.startswith("# --- secrets/"):
            current = sections.setdefault(line.split()[2].removeprefix("secrets/"), {})
        elif line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def real_flower_login(path: Path) -> str:
    return next(line for line in path.read_text().split() if line.startswith("FLOWER_BASIC_AUTH=")).split(":", 1)[1]


def test_env_example_documents_every_generated_file_with_placeholders(compose: dict[str, Any], tmp_path: Path) -> None:
    shutil.copy2(DEPLOY / "gen-secrets.sh", tmp_path / "gen-secrets.sh")
    (tmp_path / "secrets").mkdir()
    subprocess.run(["sh", str(tmp_path / "gen-secrets.sh")], check=True, capture_output=True, timeout=30)
    sections = env_example_sections()
    generated = {p.name for p in (tmp_path / "secrets").iterdir()}
    assert set(sections) == generated
    passwords = [(tmp_path / "secrets" / n).read_text().strip() for n in generated if not n.endswith(".env")]
    passwords.append(real_flower_login(tmp_path / "secrets" / "flower.env"))
    for name, example in sections.items():
        if name.endswith(".env"):
            real = dict(line.split("=", 1) for line in (tmp_path / "secrets" / name).read_text().split())
            assert set(example) == set(real), name
            for key, value in example.items():
                if any(password in real[key] for password in passwords):  # a generated secret goes in this value
                    assert "CHANGE-ME" in value, f"{name}: {key}"


def test_prometheus_scrapes_the_api_metrics(compose: dict[str, Any]) -> None:
    config = load(DEPLOY / "prometheus.yml")
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "skintrouble-api")
    assert api_job["metrics_path"] == "/metrics"
    target = api_job["dns_sd_configs"][0]
    assert target["names"] == ["api"] and target["port"] == 8000
    assert "8000" in compose["services"]["api"]["command"]


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """Only where a compose client is installed (the docker CLI here has no compose plugin)."""
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True) if docker else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no `docker compose` client on this machine")
    work = tmp_path / "deploy"
    shutil.copytree(DEPLOY, work)
    subprocess.run(["sh", str(work / "gen-secrets.sh")], check=True, capture_output=True)
    result = subprocess.run([docker, "compose", "-f", str(work / "compose.yaml"), "config", "-q"], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


# --- images --------------------------------------------------------------------------------------------------


def test_serving_requirements_are_pinned_torch_free_and_within_the_project_ranges() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project = {Requirement(line).name.lower(): Requirement(line) for line in pyproject["project"]["dependencies"]}
    serving = [
        Requirement(line)
        for line in (DEPLOY / "requirements-serving.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {req.name.lower() for req in serving}
    assert not names & TRAINING_ONLY
    for req in serving:
        (spec,) = req.specifier
        assert spec.operator == "==", f"{req} is not pinned"
        upstream = project.get(req.name.lower()) or project.get(req.name.lower().removesuffix("-skinny"))
        assert upstream is not None, f"{req.name} is not a project dependency"
        assert upstream.specifier.contains(spec.version), f"{req} is outside pyproject's {upstream}"
    # every serving-path dependency of the project is there (mlflow as its client-only mlflow-skinny)
    missing = set(project) - TRAINING_ONLY - {"matplotlib", "onnx"} - names - {"mlflow"}
    assert not missing, f"serving image lacks {missing}"
    assert "mlflow-skinny" in names


def test_serving_processes_import_only_serving_requirements() -> None:
    """The API and a worker with every task loaded import no torch/ultralytics, and no project dependency the slim
    image does not install."""
    code = (
        "import sys, json\n"
        "import api.main, api.cli, pipelines.tasks.worker\n"
        "from pipelines.tasks.app import celery_app; celery_app.loader.import_default_modules()\n"
        "from importlib.metadata import packages_distributions\n"
        "dists = packages_distributions()\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted({d.lower() for m in top for d in dists.get(m, [])})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = set(yaml.safe_load(proc.stdout.strip().splitlines()[-1]))
    assert not imported & TRAINING_ONLY, imported & TRAINING_ONLY
    serving = {
        Requirement(line).name.lower()
        for line in (DEPLOY / "requirements-serving.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    direct = {Requirement(line).name.lower() for line in pyproject["project"]["dependencies"]}
    assert (imported & direct) - {"mlflow"} <= serving


def stages(dockerfile: Path) -> list[str]:
    return re.split(r"^FROM ", dockerfile.read_text(), flags=re.MULTILINE)[1:]


def test_serving_image_runtime_stage_has_no_torch_and_installs_the_package_without_deps() -> None:
    *build, runtime = stages(DEPLOY / "Dockerfile.api")
    assert any("torch==" in stage for stage in build), "the ONNX export stage needs torch"
    assert "torch==" not in runtime and "cu1" not in runtime
    assert "-r /tmp/requirements-serving.txt" in runtime and "pip install --no-deps ." in runtime
    assert "COPY --from=export" in runtime and "USER skintrouble" in runtime
    assert "'torch' not in sys.modules" in runtime
    for dockerfile in ("Dockerfile.api", "Dockerfile.train", "Dockerfile.mlflow"):
        for stage in stages(DEPLOY / dockerfile):
            image = stage.split()[0]
            assert image.startswith("${") or pinned(image), f"{dockerfile}: {image}"
        text = (DEPLOY / dockerfile).read_text()
        for arg in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, flags=re.MULTILINE):
            assert pinned(arg), f"{dockerfile}: {arg}"


def test_training_image_is_cuda_based_with_the_projects_torch() -> None:
    text = (DEPLOY / "Dockerfile.train").read_text()
    base = re.search(r"^ARG CUDA_IMAGE=(\S+)", text, flags=re.MULTILINE)
    assert base and base.group(1).startswith("nvidia/cuda:") and "cudnn" in base.group(1)
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    for pin in re.findall(r'"((?:torch|torchvision|ultralytics)==[\d.]+)"', pyproject):
        assert pin in text, f"training image does not install {pin}"
    assert "pip install --no-deps ." in text and "USER skintrouble" in text


# --- kubernetes ----------------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = set(load(K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secrets.example.yaml"}
    assert listed == on_disk
    assert "CHANGE-ME" in (K8S / "secrets.example.yaml").read_text()
    assert all("kind: Secret" not in (K8S / name).read_text() for name in listed)


def test_every_pod_has_probes_resources_pinned_images_and_existing_refs(
    manifests: list[dict[str, Any]], example_secrets: dict[str, set[str]]
) -> None:
    configmaps = {d["metadata"]["name"]: d["data"] for d in manifests if d["kind"] == "ConfigMap"}
    claims = {d["metadata"]["name"] for d in manifests if d["kind"] == "PersistentVolumeClaim"}
    for kind, name, spec in pod_specs(manifests):
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True, name
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{kind} {name}/{container['name']}"
            assert pinned(container["image"]), where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            if kind == "Deployment" and container in spec["containers"]:
                assert "livenessProbe" in container and "readinessProbe" in container, where
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in example_secrets, where
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, where
            for var in container.get("env", []):
                ref = var.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in example_secrets[ref["secretKeyRef"]["name"]], where
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in configmaps[ref["configMapKeyRef"]["name"]], where


def test_app_secret_and_config_carry_what_the_settings_need(
    manifests: list[dict[str, Any]], example_secrets: dict[str, set[str]]
) -> None:
    (config,) = [d["data"] for d in manifests if d["kind"] == "ConfigMap"]
    for key in config:
        assert key in settings_env_names() | KNOWN_ENV, f"{key} is not a setting the code reads"
        assert not SECRET_NAME.search(key), f"{key} belongs in a Secret"
    assert config["SKINTROUBLE_ENVIRONMENT"] == "production"
    production = {"DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"}  # settings refuse production without them
    assert production <= set(config) | example_secrets["skintrouble-app"]
    assert {"DATABASE_URL", "REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= example_secrets[
        "skintrouble-app"
    ]


def test_api_probes_point_at_real_routes_and_the_api_autoscales(
    manifests: list[dict[str, Any]], settings: Settings
) -> None:
    from api.main import create_app

    paths = set(create_app(settings).openapi()["paths"])
    api = next(d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == "api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert {"/healthz", "/readyz", annotations["prometheus.io/path"]} <= paths
    hpa = next(d for d in manifests if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api"
    services = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Service"}
    assert services["api"]["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]


def test_workers_cover_every_queue_and_scale_on_the_analysis_list(manifests: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in manifests if d["kind"] == "Deployment"}
    consumed: dict[str, set[str]] = {}
    for name, spec in deployments.items():
        args = spec["containers"][0].get("args", [])
        if args[:1] == ["worker"]:
            consumed[name] = set(args[args.index("--queues") + 1].split(","))
    assert set().union(*consumed.values()) == QUEUES
    assert consumed["training-worker"] == {"training"}
    gpu = deployments["training-worker"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == 1
    scaled = next(d for d in manifests if d["kind"] == "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]["name"]
    assert "analysis" in consumed[target]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "analysis"
    auth = next(d for d in manifests if d["kind"] == "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert deployments["beat"]["containers"][0]["args"] == ["beat"]
    beat = next(d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == "beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_trigger_auth_and_migrations_use_what_exists(
    manifests: list[dict[str, Any]], example_secrets: dict[str, set[str]]
) -> None:
    auth = next(d for d in manifests if d["kind"] == "TriggerAuthentication")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in example_secrets[ref["name"]]
    job = next(d for d in manifests if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert "migrate" in cli_commands()
    cron = next(d for d in manifests if d["kind"] == "CronJob")
    assert "pg_dump" in str(cron) and cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_kubectl_kustomize_renders_the_manifests() -> None:
    """Offline render (no cluster) where kubectl is installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 6 and "ScaledObject" in kinds
    assert all(doc["metadata"].get("namespace") in {"skintrouble", None} for doc in yaml.safe_load_all(result.stdout))
