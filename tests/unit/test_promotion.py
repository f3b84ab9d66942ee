"""The promotion gate's rules, the alias history and rollback, the benchmark cache and leak filter.

The registry is an in-memory stand-in with the same methods as `Registry`; benchmark figures are planted as
the cached version tags the gate reads, so every verdict here follows from the numbers in the test.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from detector.datasets import Sample
from infra.db.migrate import upgrade
from infra.db.models import AliasEvent, AuditEvent
from infra.db.repositories.audit import Actor
from infra.db.unit_of_work import session_scope
from infra.settings import Settings, get_settings
from pipelines.mlops import benchmark, promotion
from pipelines.mlops.retraining import without_benchmark


class MemoryRegistry:
    """`Registry`'s methods over dicts. With `folders`, a version downloads as the folder of its name (figures
    computed for real); without, a download fails the test (figures must come from the cached tags)."""

    def __init__(self, folders: Path | None = None) -> None:
        self.tags: dict[str, dict[str, str]] = {}
        self.holders: dict[str, str] = {}
        self.downloads: list[str] = []
        self.folders = folders

    def add(self, version: str, figures: dict[str, float] | None, key: str) -> None:
        self.tags[version] = {key: json.dumps(figures)} if figures is not None else {}

    def version(self, version: str) -> object:
        if version not in self.tags:
            raise LookupError(version)
        return type("V", (), {"tags": self.tags[version]})()

    def version_tags(self, version: str) -> dict[str, str]:
        return self.tags[version]

    def tag(self, version: str, key: str, value: str) -> None:
        self.tags[version][key] = value

    def alias(self, alias: str) -> str | None:
        return self.holders.get(alias)

    def set_alias(self, alias: str, version: str) -> None:
        self.holders[alias] = version

    def download(self, version: str, cache_dir: Path) -> Path:
        self.downloads.append(version)
        if self.folders is None:
            raise AssertionError("cached figures must not trigger a download")
        return self.folders / version


@pytest.fixture
def gate(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, MemoryRegistry, str]:
    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    (bench / "labels").mkdir()
    (bench / "images" / "levle0_a.jpg").write_bytes(b"frozen photo a")
    (bench / "labels" / "levle0_a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    monkeypatch.setenv("SKINTROUBLE_BENCHMARK_DIR", str(bench))
    monkeypatch.setenv("SKINTROUBLE_PROMOTION_MARGIN", "0.01")
    monkeypatch.setenv("SKINTROUBLE_PROMOTION_MAX_GRADE_DROP", "0.02")
    get_settings.cache_clear()
    current = get_settings()
    upgrade(current.sqlalchemy_url)
    return current, MemoryRegistry(), benchmark.cache_key(bench)


def figures(m: float, g: float) -> dict[str, float]:
    return {"mAP50": m, "grade_accuracy": g, "images": 1.0}


@pytest.mark.parametrize(
    ("holder", "candidate", "passed"),
    [
        (figures(0.30, 0.80), figures(0.31, 0.80), True),  # exactly the margin
        (figures(0.30, 0.80), figures(0.309, 0.90), False),  # below the margin, however good the grading
        (figures(0.30, 0.80), figures(0.40, 0.78), True),  # grade drop within the allowance
        (figures(0.30, 0.80), figures(0.40, 0.77), False),  # grade drop beyond it
    ],
)
def test_gate_rules(
    gate: tuple[Settings, MemoryRegistry, str], holder: dict[str, float], candidate: dict[str, float], passed: bool
) -> None:
    settings, registry, key = gate
    registry.add("1", holder, key)
    registry.add("2", candidate, key)
    registry.set_alias("release", "1")
    verdict = promotion.judge(registry=registry, candidate="2", alias="release", settings=settings)
    assert verdict.passed is passed
    assert verdict.holder == holder and verdict.candidate == candidate and verdict.holder_version == "1"
    assert verdict.figures()["benchmark"] == key
    assert registry.downloads == []


def test_promote_refuses_records_and_forces(gate: tuple[Settings, MemoryRegistry, str]) -> None:
    settings, registry, key = gate
    registry.add("1", figures(0.30, 0.8), key)
    registry.add("2", figures(0.20, 0.8), key)
    registry.add("3", figures(0.35, 0.8), key)
    with session_scope(settings.sqlalchemy_url) as session:
        first = promotion.promote(
            session=session,
            registry=registry,
            settings=settings,
            version="1",
            alias="mvp",
            actor=Actor(id="a", role="ml-engineer", name="a"),
            reason="first",
        )
        assert first.figures["passed"] and first.previous_version is None
        with pytest.raises(promotion.PromotionRefused) as refused:
            promotion.promote(
                session=session,
                registry=registry,
                settings=settings,
                version="2",
                alias="mvp",
                actor=Actor(id="a", role="ml-engineer", name="a"),
                reason="x",
            )
        assert refused.value.figures["passed"] is False and refused.value.figures["holder"]["mAP50"] == 0.30
        assert registry.alias("mvp") == "1"
        assert json.loads(registry.tags["2"]["gate.mvp"])["passed"] is False  # the verdict stays on the version
        forced = promotion.promote(
            session=session,
            registry=registry,
            settings=settings,
            version="2",
            alias="mvp",
            actor=Actor(id="boss", role="ml-engineer", name="boss"),
            reason="hotfix",
            force=True,
        )
        assert forced.figures["forced"] is True and registry.alias("mvp") == "2" and forced.previous_version == "1"
        with pytest.raises(LookupError):
            promotion.promote(
                session=session,
                registry=registry,
                settings=settings,
                version="9",
                alias="mvp",
                actor=Actor(id="a", role="ml-engineer", name="a"),
                reason="x",
            )
    with session_scope(settings.sqlalchemy_url) as session:
        assert [(e.version, e.actor) for e in session.query(AliasEvent).order_by(AliasEvent.id)] == [
            ("1", "a"),
            ("2", "boss"),
        ]


def test_rollback_walks_back_through_earlier_holders(gate: tuple[Settings, MemoryRegistry, str]) -> None:
    settings, registry, key = gate
    for v in ("1", "2", "3"):
        registry.add(v, None, key)
    with session_scope(settings.sqlalchemy_url) as session:
        for v in ("1", "2", "3"):
            promotion.move_alias(
                session=session,
                registry=registry,
                alias="release",
                version=v,
                actor=Actor(id="t", role="ml-engineer", name="t"),
                reason="r",
                figures={},
            )
        back = promotion.rollback(
            session=session,
            registry=registry,
            alias="release",
            actor=Actor(id="t", role="ml-engineer", name="t"),
            reason="bad 3",
        )
        assert back.version == "2" and back.figures == {"rollback_of": "3"}
        again = promotion.rollback(
            session=session,
            registry=registry,
            alias="release",
            actor=Actor(id="t", role="ml-engineer", name="t"),
            reason="bad 2",
        )
        assert again.version == "1" and registry.alias("release") == "1"
        with pytest.raises(LookupError):
            promotion.rollback(
                session=session,
                registry=registry,
                alias="release",
                actor=Actor(id="t", role="ml-engineer", name="t"),
                reason="nothing left",
            )
        with pytest.raises(LookupError):
            promotion.rollback(
                session=session,
                registry=registry,
                alias="mvp",
                actor=Actor(id="t", role="ml-engineer", name="t"),
                reason="never held",
            )


def test_benchmark_cache_key_follows_content(gate: tuple[Settings, MemoryRegistry, str]) -> None:
    settings, _, key = gate
    assert settings.benchmark_dir is not None
    assert benchmark.cache_key(settings.benchmark_dir) == key
    (settings.benchmark_dir / "labels" / "levle0_a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert benchmark.cache_key(settings.benchmark_dir) != key  # an edited benchmark scores everything again


def test_retraining_data_never_contains_a_benchmark_photo(gate: tuple[Settings, MemoryRegistry, str]) -> None:
    settings, _, _ = gate
    samples = [Sample(image=b"frozen photo a", image_id="leak"), Sample(image=b"a new photo", image_id="new")]
    kept, dropped = without_benchmark(samples, settings)
    assert dropped == 1 and [s.image_id for s in kept] == ["new"]


# ---- one service behind both faces: the CLI and the API leave the same audit entries -----------------------------


def audit_rows(settings: Settings, prefix: str) -> list[tuple[str, str | None, str | None, str | None]]:
    with session_scope(settings.sqlalchemy_url) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id))
        return [(e.action, e.role, e.target, (e.details or {}).get("reason")) for e in rows]


def test_cli_and_api_promotions_and_rollbacks_are_audited_alike(
    gate: tuple[Settings, MemoryRegistry, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import app as cli
    from api.cli.keys import create_key
    from api.main import create_app

    settings, registry, key = gate
    for version, m in (("1", 0.30), ("2", 0.40), ("3", 0.50), ("4", 0.60)):
        registry.add(version, figures(m, 0.8), key)
    monkeypatch.setattr("api.cli.mlops._registry", lambda: registry)
    monkeypatch.setattr("api.models.service.registry_for", lambda resources: registry)
    runner = CliRunner()

    assert runner.invoke(cli, ["models", "promote", "1", "--alias", "mvp", "--reason", "cli says"]).exit_code == 0
    ml_key = create_key("ml-engineer", "parity")
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": ml_key}
        answer = client.post("/v1/models/2/promote", json={"alias": "mvp", "reason": "api says"}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert client.post(
            "/v1/models/rollback", json={"alias": "mvp", "reason": "api back"}, headers=headers
        ).is_success
    assert runner.invoke(cli, ["models", "promote", "3", "--alias", "mvp", "--reason", "cli again"]).exit_code == 0
    assert runner.invoke(cli, ["models", "rollback", "--alias", "mvp", "--reason", "cli back"]).exit_code == 0

    assert audit_rows(settings, "model.") == [
        ("model.promoted", "operator", "mvp:1", "cli says"),
        ("model.promoted", "ml-engineer", "mvp:2", "api says"),
        ("model.rolled_back", "ml-engineer", "mvp:1", "api back"),
        ("model.promoted", "operator", "mvp:3", "cli again"),
        ("model.rolled_back", "operator", "mvp:1", "cli back"),
    ]
    with session_scope(settings.sqlalchemy_url) as session:  # the CLI's operator is named, not "cli"
        actors = {e.actor_id for e in session.scalars(select(AuditEvent)) if e.role == "operator"}
    assert actors == {f"cli:{getpass.getuser()}"}
    assert [(a, role) for a, role, _, _ in audit_rows(settings, "key.")] == [("key.created", "operator")]


def test_cli_and_api_training_requests_share_checks_audit_and_queue(
    gate: tuple[Settings, MemoryRegistry, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import app as cli
    from api.cli.keys import create_key
    from api.main import create_app

    settings, _, _ = gate
    sent: list[str] = []
    monkeypatch.setattr("pipelines.tasks.app.enqueue_task", lambda name, run_id: sent.append(run_id))
    runner = CliRunner()
    ml_key = create_key("ml-engineer", "parity")
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": ml_key}
        started = client.post("/v1/training-runs", json={"epochs": 2}, headers=headers)
        assert started.status_code == 202, started.text
        unknown = client.post("/v1/training-runs", json={"epochs": 2, "dataset": "ds-nope"}, headers=headers)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "dataset_not_found")

        queued = runner.invoke(cli, ["retrain", "--queue", "--epochs", "3"])
        assert queued.exit_code == 0, queued.output
        refused = runner.invoke(cli, ["retrain", "--queue", "--dataset", "ds-nope"])
        assert refused.exit_code == 1 and "dataset_not_found" in refused.output

        def broken(name: str, run_id: str) -> None:
            raise ConnectionError("broker down")

        monkeypatch.setattr("pipelines.tasks.app.enqueue_task", broken)
        down = client.post("/v1/training-runs", json={"epochs": 2}, headers=headers)
        assert down.status_code == 503 and down.json()["error"]["code"] == "queue_unavailable"
        assert int(down.headers["Retry-After"]) > 0
        failed = client.get(f"/v1/training-runs/{down.json()['error']['run_id']}", headers=headers).json()
        assert (failed["status"], failed["error"]) == ("failed", "could not be queued")

    assert sent == [started.json()["id"], queued.output.strip().splitlines()[-1]]
    rows = [(action, role) for action, role, _, _ in audit_rows(settings, "training.")]
    assert rows == [
        ("training.started", "ml-engineer"),
        ("training.started", "operator"),
        ("training.started", "ml-engineer"),
    ]
