"""The severity grader: deterministic features, calibrated probabilities, fallback to bands, storage, routing."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from detector.findings import Detection, Severity
from detector.grader import (
    GRADER_FILE,
    Evidence,
    Grader,
    calibrated_ece,
    default_levels,
    expected_calibration_error,
    feature_names,
    features,
    fit_grader,
    ordinal_probabilities,
    severity_from,
)
from detector.grading import grade_from_count
from detector.model_card import ModelCard
from pipelines.cases.routing import decide
from quality_gate import QualityReport
from tests.conftest import routing_policy

OP = 0.05
LEVELS = default_levels(OP)
BANDS = (5, 20, 50)


def evidence(n: int, seed: int = 0, size: int = 640) -> Evidence:
    """A photo with `n` lesions whose scores fall off like the shipped model's (mostly low)."""
    rng = np.random.default_rng(seed)
    scores = np.sort(rng.uniform(OP, 0.4, n).astype(np.float32))[::-1]
    xy = rng.uniform(0, size - 30, (n, 2)).astype(np.float32)
    side = rng.uniform(6, 28, (n, 1)).astype(np.float32)
    boxes = np.hstack([xy, xy + side])
    lost = max(0, n // 10)
    return Evidence(
        scores=scores,
        boxes=boxes,
        normal_scores=scores[lost:],
        flipped_scores=scores[: n - lost],
        flip_disagreement=0.1 + 0.01 * lost,
        low_conf_share=0.5,
        width=size,
        height=size,
    )


def synthetic_set(n_photos: int = 240, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photos whose grade follows Hayashi bands on a true count; the detector finds ~70% of lesions."""
    rng = np.random.default_rng(seed)
    true_counts = np.exp(rng.uniform(np.log(1), np.log(90), n_photos)).astype(int)
    grades = np.array([grade_from_count(int(c), BANDS).grade for c in true_counts])
    found = rng.binomial(true_counts, 0.7)
    x = np.vstack([features(evidence(int(f), seed=i), operating_conf=OP, levels=LEVELS) for i, f in enumerate(found)])
    return x, grades, true_counts


@pytest.fixture(scope="module")
def fitted() -> tuple[Grader, np.ndarray, np.ndarray, np.ndarray]:
    x, grades, counts = synthetic_set()
    report = fit_grader(x, grades, counts, operating_conf=OP, levels=LEVELS, l2_grid=(0.01, 0.1))
    return report.grader, x, grades, counts


def test_features_are_deterministic_and_named() -> None:
    a = features(evidence(30, seed=3), operating_conf=OP, levels=LEVELS)
    b = features(evidence(30, seed=3), operating_conf=OP, levels=LEVELS)
    assert a.dtype == np.float64 and np.array_equal(a, b)
    assert len(a) == len(feature_names(LEVELS))
    assert a[0] == pytest.approx(np.log1p(30))  # log count at the operating threshold
    empty = features(evidence(0), operating_conf=OP, levels=LEVELS)
    assert np.all(np.isfinite(empty)) and empty[0] == 0.0


def test_probabilities_sum_to_one_and_follow_the_latent() -> None:
    probs = ordinal_probabilities(np.linspace(-5, 5, 11), np.array([-2.0, 0.0, 2.0]), temperature=1.3)
    assert probs.shape == (11, 4) and np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()
    assert probs[0].argmax() == 0 and probs[-1].argmax() == 3


def test_fitting_on_synthetic_counts_recovers_the_bands_and_their_order(
    fitted: tuple[Grader, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    grader, x, grades, counts = fitted
    probs = grader.predict_proba(x)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == grades).mean() > 0.8
    assert grader.metrics["cv_grade_accuracy"] > 0.75 and grader.metrics["cv_ece"] < 0.1
    # Ordering: more lesions never lowers the expected grade; the grade changes near Hayashi's 5/20/50
    # true lesions, i.e. near 0.7 * those found.
    ladder = [grader.estimate(evidence(n, seed=7)) for n in range(0, 80)]
    scores = [e.score for e in ladder]
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(scores))
    switches = [n for n in range(1, 80) if ladder[n].grade > ladder[n - 1].grade]
    for found, band in zip(switches, BANDS, strict=True):
        assert 0.4 * band <= found <= 1.2 * band + 2
    # The count interval covers the true count of most photos.
    estimates = [grader.estimate(evidence(round(c * 0.7), seed=i)) for i, c in enumerate(counts)]
    covered = np.mean([e.count_interval[0] <= c <= e.count_interval[1] for e, c in zip(estimates, counts, strict=True)])
    assert covered > 0.6


def test_expected_calibration_error_is_zero_for_perfect_confidence() -> None:
    y = np.array([0, 1, 2, 3])
    assert expected_calibration_error(np.eye(4), y) == 0.0
    assert expected_calibration_error(np.full((4, 4), 0.25), np.array([0, 0, 0, 0])) == pytest.approx(0.75)


def test_calibrated_ece_floor_shrinks_with_photos_and_vanishes_for_certain_grades() -> None:
    """The ECE a calibrated grader shows by chance: zero when every grade is certain, larger on fewer photos,
    and a deliberately overconfident grader lands above it."""
    rng = np.random.default_rng(0)
    assert calibrated_ece(np.eye(4)[rng.integers(0, 4, 50)], draws=50) == (0.0, 0.0)
    probs = rng.dirichlet(np.ones(4) * 2.0, size=1000)
    few, _ = calibrated_ece(probs[:140], draws=200)
    many, _ = calibrated_ece(probs, draws=200)
    assert many < few
    assert 0.02 < few < 0.2
    drawn = np.array([rng.choice(4, p=p) for p in probs[:140]])
    overconfident = np.eye(4)[probs[:140].argmax(axis=1)] * 0.97 + 0.01
    assert expected_calibration_error(overconfident, drawn) > calibrated_ece(probs[:140], draws=200)[1]


def test_json_round_trip_is_exact(tmp_path: Path, fitted: tuple[Grader, np.ndarray, np.ndarray, np.ndarray]) -> None:
    grader = fitted[0]
    path = grader.save(tmp_path)
    assert path.name == GRADER_FILE
    again = Grader.load(tmp_path)
    assert again == grader
    x = fitted[1][:5]
    assert np.array_equal(again.predict_proba(x), grader.predict_proba(x))
    data = json.loads(path.read_text())
    data["cutpoints"] = [1.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="cutpoints"):
        Grader.from_dict(data)


def test_severity_falls_back_to_bands_without_a_grader(
    fitted: tuple[Grader, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    plain = severity_from(None, evidence(30), 30, BANDS)
    assert plain == Severity(grade=2, label="severe") and plain.to_dict() == {"grade": 2, "label": "severe"}
    graded = severity_from(fitted[0], evidence(30), 30, BANDS)
    assert graded.probabilities is not None and sum(graded.probabilities) == pytest.approx(1.0, abs=1e-3)
    assert graded.grade == int(np.argmax(graded.probabilities))
    low, high = graded.count_interval or (0, -1)
    assert 0 <= low <= high
    assert set(graded.to_dict()) == {"grade", "label", "probabilities", "count_interval", "score"}


def test_a_card_without_a_grader_serves_bands_and_one_with_a_grader_serves_probabilities(
    tmp_path: Path, fitted: tuple[Grader, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    from detector.onnx_runtime import Detector
    from tests.unit.test_detector_inference import FakeSession

    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=OP, tta_flip=True)
    assert ModelCard.load(_saved(card, tmp_path / "plain")).grader is None
    plain = Detector(card, FakeSession((100.0, 120.0, 20.0, 20.0), 0.9)).predict(np.zeros((640, 640, 3), np.uint8))
    assert plain.severity.probabilities is None and plain.severity.grade == grade_from_count(1, card.grade_bands).grade
    assert plain.evidence is not None and plain.evidence.width == 640

    graded_dir = tmp_path / "graded"
    graded_dir.mkdir()
    fitted[0].save(graded_dir)
    graded_card = replace(card, grader=GRADER_FILE)
    assert ModelCard.load(_saved(graded_card, graded_dir)).grader == GRADER_FILE
    detector = Detector(graded_card, FakeSession((100.0, 120.0, 20.0, 20.0), 0.9), grader=Grader.load(graded_dir))
    answer = detector.predict(np.zeros((640, 640, 3), np.uint8))
    assert answer.severity.probabilities is not None and answer.lesion_count == plain.lesion_count


def _saved(card: ModelCard, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card.save(folder)
    return folder


def _detection(probabilities: tuple[float, ...] | None, count: int = 12) -> Detection:
    grade = 1 if probabilities is None else int(np.argmax(probabilities))
    severity = Severity(grade=grade, label="moderate", probabilities=probabilities)
    return Detection([], count, severity, 0.0, "v1", 0.25)


def test_routing_queues_an_uncertain_grade_only_below_the_configured_probability() -> None:
    quality = QualityReport(accepted=True, retake_codes=[], hints=[], measures={}, margin=0.8)
    policy = routing_policy(audit_rate=0.0, double_rate=0.0, grade_probability_min=0.6)
    unsure = decide(
        case_id="a", detection=_detection((0.1, 0.45, 0.4, 0.05)), quality=quality, bands=BANDS, policy=policy
    )
    sure = decide(
        case_id="b", detection=_detection((0.02, 0.9, 0.07, 0.01)), quality=quality, bands=BANDS, policy=policy
    )
    bands_only = decide(case_id="c", detection=_detection(None), quality=quality, bands=BANDS, policy=policy)
    assert unsure.queued and (unsure.reason or "").split(",")[0] == "uncertain_grade"
    assert not sure.queued and not bands_only.queued
    # Near a band edge (6 lesions, bands 5/20/50): graded models are judged by their probabilities instead,
    # models without a grader (or with the setting at 0) keep the count-distance rule.
    edge_sure = _detection((0.02, 0.9, 0.07, 0.01), count=6)
    assert not decide(case_id="d", detection=edge_sure, quality=quality, bands=BANDS, policy=policy).queued
    off = replace(policy, grade_probability_min=0.0)
    assert decide(case_id="e", detection=edge_sure, quality=quality, bands=BANDS, policy=off).reason == (
        "near_grade_boundary"
    )
    assert decide(case_id="f", detection=_detection(None, count=6), quality=quality, bands=BANDS, policy=policy).queued


def test_the_case_row_keeps_the_grader_detail_and_the_api_shows_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command

    from api.analyses.service import to_public
    from infra.db.migrate import alembic_config, upgrade
    from infra.db.models import Case

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    assert "severity_detail" in {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("cases")}
    command.downgrade(alembic_config(url), "967d8cde749d")
    assert "severity_detail" not in {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("cases")}

    detail = {"probabilities": [0.1, 0.7, 0.15, 0.05], "count_interval": [8, 19], "score": 1.15}
    row = {"id": "c1", "status": "done", "created_at": datetime.now(UTC), "width": 640, "height": 640}
    row |= {"findings": [], "lesion_count": 12, "grade": 1, "uncertainty": 0.1, "model_version": "v1"}
    row |= {"review_queued": False, "review_reason": None, "quality": None}
    public = to_public(Case(**row, severity_detail=detail))
    assert public.severity is not None and public.severity.probabilities == detail["probabilities"]
    assert public.severity.count_interval == [8, 19] and public.severity.score == 1.15
    plain = to_public(Case(**row, severity_detail=None))
    assert plain.severity is not None and plain.severity.probabilities is None and plain.severity.label == "moderate"


def test_a_grader_that_counts_below_the_detectors_floor_is_not_used(
    fitted: tuple[Grader, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    from detector.onnx_runtime import Detector
    from tests.unit.test_detector_inference import FakeSession

    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=0.3)
    detector = Detector(card, FakeSession((100.0, 120.0, 20.0, 20.0), 0.9), grader=fitted[0])  # fitted at 0.05
    assert detector.grader is None
    assert detector.predict(np.zeros((640, 640, 3), np.uint8)).severity.probabilities is None


def test_refit_fits_on_the_selection_part_reports_on_the_report_part_and_stores_the_grader(tmp_path: Path) -> None:
    from detector.grader_fit import PhotoRecord, load_records, refit, save_records, split_records, write_to_model

    rng = np.random.default_rng(5)
    records = []
    for i in range(160):
        true = int(np.exp(rng.uniform(0, np.log(90))))
        found = int(rng.binomial(true, 0.7))
        grade = grade_from_count(true, BANDS).grade
        ev = evidence(found, seed=i)
        records.append(
            PhotoRecord(
                name=f"levle{grade}_{i}_jpg.rf.{i:04x}.jpg",
                grade=grade,
                labelled=true,
                count=int(np.count_nonzero(ev.scores >= OP)),
                evidence=ev,
                boxes=ev.boxes,
                scores=ev.scores,
                gt_boxes=ev.boxes[: min(found, true)],
            )
        )
    save_records(records, tmp_path / "cache.npz", {"split": "valid"})
    again, meta = load_records(tmp_path / "cache.npz")
    assert meta == {"split": "valid"} and [r.name for r in again] == [r.name for r in records]
    assert np.array_equal(again[3].evidence.scores, records[3].evidence.scores)

    model = tmp_path / "model"
    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=OP, tta_flip=True)
    _saved(card, model)
    result = refit(again, card, tmp_path / "report", cross_validate=False)
    parts = split_records(again)
    assert result.grader.fitted_on == {
        "part": "selection",
        "photos": len(parts["selection"]),
        "model_version": "fake-1",
    }
    assert result.summary["photos"] == {"selection": len(parts["selection"]), "report": len(parts["report"])}
    reported = result.summary["report"]["grader (fitted on selection)"]
    assert reported["grade_accuracy"] > 0.7
    floor_mean, floor_p95 = reported["bootstrap"]["ece_if_calibrated_mean_p95"]
    assert 0.0 < floor_mean <= floor_p95  # what a calibrated grader would show on as many photos
    assert (tmp_path / "report" / "reliability_report.png").is_file()
    stored = write_to_model(model, result)
    assert stored.grader == GRADER_FILE and Grader.load(model) == result.grader


def test_record_outcome_stores_the_grader_detail_on_the_case() -> None:
    from infra.db.models import Case
    from pipelines.cases.analysis import AnalysisOutcome, record_outcome
    from pipelines.cases.routing import ReviewDecision

    quality = QualityReport(accepted=True, retake_codes=[], hints=[], measures={}, margin=0.8)
    graded, plain = Case(id="g"), Case(id="p")
    for case, probs in ((graded, (0.1, 0.7, 0.15, 0.05)), (plain, None)):
        outcome = AnalysisOutcome(quality=quality, detection=_detection(probs), review=ReviewDecision.not_queued())
        record_outcome(session=None, case=case, outcome=outcome)  # type: ignore[arg-type]  # nothing queued
    assert graded.grade == 1 and graded.severity_detail == {"probabilities": [0.1, 0.7, 0.15, 0.05]}
    assert plain.severity_detail is None
