"""Refit a model's grader on the selection part of a labelled split and report it on the report part.

One serving call per photo (`Detector.predict(photo, conf=EVAL_CONF)`): its findings give mAP, its
`evidence` feeds the grader, its count and band grade are the baseline. The calls are cached in an
`.npz` so that fitting, reporting and the routing study never run the network again:

    skintrouble evaluate --data ../shared/datasets/acne04 --model detector/weights --split valid \
        --refit-grader --out var/grader/report [--write-card]

Protocol (printed with every figure): count bands and the grader (L2, temperature, count interval) are
chosen on the *selection* part (`detector.datasets.splits`), with 5-fold CV inside it for the grader's own
choices; every `report.*` figure comes from the *report* part, which no choice saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from detector import calibration
from detector.datasets.splits import split_names
from detector.embedding import OOD_FILE, EmbeddingOod, fit_ood, stack
from detector.evaluation import EVAL_CONF, LabelledImage, read_rgb
from detector.grader import (
    GRADER_FILE,
    SIZE_EDGES,
    Evidence,
    FitReport,
    Grader,
    calibrated_ece,
    default_levels,
    expected_calibration_error,
    fit_grader,
    fit_probe_map,
    probe_features,
)
from detector.metrics import DetectionAccumulator
from detector.model_card import ModelCard

# Linear probe on the embedding (issue 11): one supervised direction, ridge (this alpha) from the z-scored embeddings
# of the train photos to log(1 + labelled count), added to the grade head only; None: no probe. Chosen by nested
# 5-fold CV on the selection part (bench/grader_variants.py --probe) over PCA probes (selection or train) and ridge
# probes; the train photos' embeddings are ones the network was trained on, which that CV on unseen photos judges.
PROBE_ALPHA: float | None = 0.01
PROBE_IN_COUNT_HEAD = False
SELECTION_PROTOCOL = "selection part (fit data; grader figures are 5-fold out-of-fold within it)"
REPORT_PROTOCOL = "report part (held out: no choice saw it)"


@dataclass(frozen=True)
class PhotoRecord:
    name: str
    grade: int | None
    labelled: int  # labelled boxes
    count: int  # served count at the operating threshold
    evidence: Evidence
    boxes: np.ndarray  # findings at EVAL_CONF (mAP)
    scores: np.ndarray
    gt_boxes: np.ndarray


def collect(
    detector: Any, images: Sequence[LabelledImage], progress: Callable[[int, int], None] | None = None
) -> list[PhotoRecord]:
    """One serving call per photo; keep what grading, counting and mAP need."""
    records: list[PhotoRecord] = []
    for i, item in enumerate(images):
        det = detector.predict(read_rgb(item.path), conf=EVAL_CONF)
        if det.evidence is None:
            raise ValueError("the detector returned no grading evidence")
        records.append(
            PhotoRecord(
                name=item.path.name,
                grade=item.grade,
                labelled=len(item.boxes),
                count=det.lesion_count,
                evidence=det.evidence,
                boxes=np.array([f.box for f in det.findings], np.float32).reshape(-1, 4),
                scores=np.array([f.confidence for f in det.findings], np.float32),
                gt_boxes=np.asarray(item.boxes, np.float32).reshape(-1, 4),
            )
        )
        if progress:
            progress(i + 1, len(images))
    return records


def serving_fingerprint(card: ModelCard) -> dict[str, Any]:
    """The card settings that change what predict returns (not its grading outputs): a cache made under other
    settings is stale. Code changes to predict are not seen: name a new cache file after changing it."""
    data = asdict(card)
    for key in ("metrics", "grader", "grade_bands", "embedding_ood"):
        data.pop(key, None)
    return json.loads(json.dumps(data))


def save_records(records: Sequence[PhotoRecord], path: Path, meta: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {"__meta__": np.asarray(json.dumps(meta))}
    for i, r in enumerate(records):
        key = f"{i:05d}"
        arrays.update(r.evidence.to_arrays(key))
        arrays[f"{key}|name"] = np.asarray(r.name)
        arrays[f"{key}|y"] = np.asarray([-1 if r.grade is None else r.grade, r.labelled, r.count], np.int64)
        arrays[f"{key}|pb"] = r.boxes
        arrays[f"{key}|ps"] = r.scores
        arrays[f"{key}|gt"] = r.gt_boxes
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_records(path: Path) -> tuple[list[PhotoRecord], dict[str, Any]]:
    data = np.load(path)
    meta = json.loads(str(data["__meta__"]))
    keys = sorted({k.split("|")[0] for k in data.files if k != "__meta__"})
    records = []
    for key in keys:
        grade, labelled, count = (int(v) for v in data[f"{key}|y"])
        records.append(
            PhotoRecord(
                name=str(data[f"{key}|name"]),
                grade=None if grade < 0 else grade,
                labelled=labelled,
                count=count,
                evidence=Evidence.from_arrays(data, key),
                boxes=data[f"{key}|pb"],
                scores=data[f"{key}|ps"],
                gt_boxes=data[f"{key}|gt"],
            )
        )
    return records, meta


def split_records(records: Sequence[PhotoRecord]) -> dict[str, list[PhotoRecord]]:
    graded = [r for r in records if r.grade is not None]
    parts = split_names([r.name for r in graded])
    by_name = {r.name: r for r in graded}
    return {part: [by_name[n] for n in names] for part, names in parts.items()}


def feature_matrix(
    grader_or_levels: Grader | Sequence[float],
    records: Sequence[PhotoRecord],
    op: float,
    size_edges: Sequence[float] = SIZE_EDGES,
) -> np.ndarray:
    from detector.grader import features

    if isinstance(grader_or_levels, Grader):
        return np.vstack([grader_or_levels.features(r.evidence) for r in records])
    return np.vstack(
        [features(r.evidence, operating_conf=op, levels=grader_or_levels, size_edges=size_edges) for r in records]
    )


def train_probe(
    train_records: Sequence[PhotoRecord] | None, graded: Sequence[PhotoRecord], alpha: float | None = PROBE_ALPHA
) -> tuple[np.ndarray, np.ndarray] | None:
    """The probe's direction fitted on the train photos, or None (no probe asked, or photos without embedding)."""
    if alpha is None or not train_records:
        return None
    if any(r.evidence.embedding is None for r in [*train_records, *graded]):
        return None
    target = np.log1p(np.array([r.labelled for r in train_records], np.float64))
    return fit_probe_map(stack([r.evidence.embedding for r in train_records]), target, alpha)


def with_probe(
    x: np.ndarray, records: Sequence[PhotoRecord], probe: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Feature rows with the probe's columns appended (as `Grader.features` builds them in serving)."""
    if probe is None:
        return x
    columns = np.vstack([probe_features(r.evidence.embedding, *probe) for r in records])  # type: ignore[arg-type]
    return np.hstack([x, columns])


def map50(records: Sequence[PhotoRecord], operating_conf: float) -> float:
    acc = DetectionAccumulator(class_names=["lesion"], recall_conf=operating_conf)
    for r in records:
        acc.add(
            r.boxes.astype(np.float64),
            r.scores.astype(np.float64),
            np.zeros(len(r.scores), np.int64),
            r.gt_boxes.astype(np.float64),
            np.zeros(len(r.gt_boxes), np.int64),
        )
    return float(acc.summary()["mAP50"])


def grader_figures(grader: Grader, records: Sequence[PhotoRecord]) -> dict[str, Any]:
    """Grade accuracy, ECE, count MAE and interval coverage of a fitted grader on these photos."""
    x = feature_matrix(grader, records, grader.operating_conf)
    y = np.array([r.grade for r in records], np.int64)
    probs = grader.predict_proba(x)
    estimates = [grader.estimate(r.evidence) for r in records]
    counts = np.array([r.labelled for r in records], np.float64)
    low = np.array([e.count_interval[0] for e in estimates])
    high = np.array([e.count_interval[1] for e in estimates])
    est = np.array([e.count_estimate for e in estimates])
    return {
        "grade_accuracy": round(float((probs.argmax(axis=1) == y).mean()), 4),
        "ece": round(expected_calibration_error(probs, y), 4),
        "nll": round(float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()), 4),
        "count_mae": round(float(np.abs(est - counts).mean()), 3),
        "count_interval_coverage": round(float(((counts >= low) & (counts <= high)).mean()), 4),
        "count_interval_median_width": float(np.median(high - low)),
    }


def bootstrap_interval(probs: np.ndarray, y: np.ndarray, draws: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """90% bootstrap intervals (photos resampled) of grade accuracy and ECE, and the ECE a calibrated grader would
    show on as many photos (`calibrated_ece`): how much 141 photos can say."""
    rng = np.random.default_rng(seed)
    acc, ece = [], []
    for _ in range(draws):
        pick = rng.integers(0, len(y), len(y))
        acc.append(float((probs[pick].argmax(axis=1) == y[pick]).mean()))
        ece.append(expected_calibration_error(probs[pick], y[pick]))
    floor_mean, floor_p95 = calibrated_ece(probs, draws=draws, seed=seed)
    return {
        "grade_accuracy_90": [round(float(v), 4) for v in np.quantile(acc, [0.05, 0.95])],
        "ece_90": [round(float(v), 4) for v in np.quantile(ece, [0.05, 0.95])],
        "ece_if_calibrated_mean_p95": [round(floor_mean, 4), round(floor_p95, 4)],
    }


def cross_validated_all(
    records: Sequence[PhotoRecord], op: float, folds: int = 5, probe: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, Any]:
    """Both parts together, k-fold: bands and grader refitted on k-1 folds, judged on the held fold.

    Not the headline protocol (the report part is), but twice the photos, so a tighter estimate."""
    from detector.grader import stratified_folds

    graded = [r for r in records if r.grade is not None]
    y = np.array([r.grade for r in graded], np.int64)
    served = np.array([r.count for r in graded], np.int64)
    labelled = np.array([r.labelled for r in graded], np.int64)
    probs = np.zeros((len(y), 4))
    est = np.zeros(len(y))
    band_hit = np.zeros(len(y), bool)
    for held in stratified_folds(y, folds, 1):
        train = np.setdiff1d(np.arange(len(y)), held)
        cal = calibration.calibrate_counts({op: served[train]}, labelled[train], y[train])
        band_hit[held] = calibration.grades_from_counts(served[held], cal.grade_bands) == y[held]
        levels = default_levels(op)
        x = with_probe(feature_matrix(levels, graded, op), graded, probe)
        fit = fit_grader(
            x[train],
            y[train],
            labelled[train],
            operating_conf=op,
            levels=levels,
            probe=probe,
            count_probe=PROBE_IN_COUNT_HEAD,
        )
        probs[held] = fit.grader.predict_proba(x[held])
        est[held] = np.expm1(np.clip(fit.grader.predict_log_count(x[held]), 0, None))
    return {
        "protocol": f"{folds}-fold CV over selection + report ({len(y)} photos), everything refitted per fold",
        "bands_grade_accuracy": round(float(band_hit.mean()), 4),
        "grader_grade_accuracy": round(float((probs.argmax(axis=1) == y).mean()), 4),
        "grader_ece": round(expected_calibration_error(probs, y), 4),
        "grader_count_mae": round(float(np.abs(est - labelled).mean()), 3),
        "served_count_mae": round(float(np.abs(served - labelled).mean()), 3),
    }


def band_figures(records: Sequence[PhotoRecord], bands: Sequence[int]) -> dict[str, Any]:
    y = np.array([r.grade for r in records], np.int64)
    counts = np.array([r.count for r in records], np.int64)
    pred = calibration.grades_from_counts(counts, bands)
    labelled = np.array([r.labelled for r in records], np.float64)
    return {
        "bands": [int(b) for b in bands],
        "grade_accuracy": round(float((pred == y).mean()), 4),
        "count_mae": round(float(np.abs(counts - labelled).mean()), 3),
    }


def routing_study(
    selection_probs: np.ndarray,
    selection: Sequence[PhotoRecord],
    report: Sequence[PhotoRecord],
    grader: Grader,
    bands: Sequence[int],
    boundary: int = 2,
) -> dict[str, Any]:
    """Does `uncertain_grade` (top probability < p) catch more wrong grades per case routed than
    `near_grade_boundary` (count within `boundary` of a band edge)? The matched p is chosen on the selection
    part's out-of-fold probabilities so that it routes the share of cases the boundary rule routes there;
    every figure returned is on the report part."""
    from detector.grading import distance_to_boundary

    def near(records: Sequence[PhotoRecord]) -> np.ndarray:
        return np.array([distance_to_boundary(int(r.count), bands) <= boundary for r in records])

    target_share = float(near(selection).mean())
    matched_p = float(np.quantile(selection_probs.max(axis=1), target_share))
    y = np.array([r.grade for r in report], np.int64)
    counts = np.array([r.count for r in report], np.int64)
    band_grade = calibration.grades_from_counts(counts, bands)
    probs = grader.predict_proba(feature_matrix(grader, report, grader.operating_conf))
    top = probs.max(axis=1)
    grader_grade = probs.argmax(axis=1)

    def caught(routed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        wrong = predicted != y
        return {
            "routed_share": round(float(routed.mean()), 4),
            "wrong_grades": int(wrong.sum()),
            "wrong_caught_share": round(float((wrong & routed).sum() / max(wrong.sum(), 1)), 4),
            "wrong_unreviewed_share_of_cases": round(float((wrong & ~routed).mean()), 4),
            "precision": round(float((wrong & routed).sum() / max(routed.sum(), 1)), 4),
        }

    def near_at(records: Sequence[PhotoRecord], b: int) -> np.ndarray:
        return np.array([distance_to_boundary(int(r.count), bands) <= b for r in records])

    rows = {f"near_grade_boundary <={b} (band grade)": caught(near_at(report, b), band_grade) for b in (1, 2, 3, 4)}
    rows |= {
        f"near_grade_boundary <={boundary} (grader grade)": caught(near(report), grader_grade),
        f"uncertain_grade p<{matched_p:.3f} (matched share on selection; grader grade)": caught(
            top < matched_p, grader_grade
        ),
    }
    for p in (0.5, 0.6, 0.7, 0.8):
        rows[f"uncertain_grade p<{p:.2f} (grader grade)"] = caught(top < p, grader_grade)
    return {"matched_p": round(matched_p, 4), "selection_boundary_share": round(target_share, 4), **rows}


def reliability_plot(probs: np.ndarray, y: np.ndarray, path: Path, title: str, bins: int = 10) -> Path:
    """Share graded right against the top probability, per bin (dot size: photos), with grey consistency bars: a
    dot inside its bar is what a calibrated grader would show on that few photos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    centres, accs, sizes = [], [], []
    for b in range(bins):
        members = index == b
        if members.any():
            centres.append(conf[members].mean())
            accs.append(hit[members].mean())
            sizes.append(int(members.sum()))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1)
    # consistency bars (Broecker & Smith, 2007): where a calibrated grader's dot would fall, 5-95%, at this bin size
    rng = np.random.default_rng(0)
    for c, s in zip(centres, sizes, strict=True):
        low, high = np.quantile(rng.binomial(s, c, 4000) / s, [0.05, 0.95])
        ax.plot([c, c], [low, high], color="#cccccc", lw=5, solid_capstyle="butt", zorder=1)
    ax.scatter(centres, accs, s=[12 + 3 * s for s in sizes], color="#4477aa", zorder=3)
    ax.plot(centres, accs, color="#4477aa")
    for c, a, s in zip(centres, accs, sizes, strict=True):
        ax.annotate(str(s), (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xlabel="top grade probability", ylabel="share graded right", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@dataclass
class RefitResult:
    grader: Grader
    bands: tuple[int, int, int]
    summary: dict[str, Any]
    ood: EmbeddingOod | None = None


def ood_figures(ood: EmbeddingOod, parts: dict[str, list[PhotoRecord]]) -> dict[str, Any]:
    """Share of valid photos (ordinary skin photos the network did not train on) the limit would refuse."""
    out: dict[str, Any] = {"limit": ood.limit, **ood.fitted_on}
    for part, records in parts.items():
        d = ood.distances(stack([r.evidence.embedding for r in records]))
        out[f"{part}_refused_share"] = round(float((d > ood.limit).mean()), 4)
        out[f"{part}_refused"] = int((d > ood.limit).sum())
        out[f"{part}_distance_max"] = round(float(d.max()), 3)
    return out


def refit(
    records: Sequence[PhotoRecord],
    card: ModelCard,
    out: Path | None = None,
    *,
    cross_validate: bool = True,
    train_records: Sequence[PhotoRecord] | None = None,
    probe_alpha: float | None = PROBE_ALPHA,
) -> RefitResult:
    """Bands and grader on the selection part, every figure on both parts with its protocol.

    With `train_records` (serving calls on the photos the model trained on) that carry embeddings, the grader's
    linear probe is fitted on them (`PROBE_ALPHA`), and so are the embedding OOD statistics, whose refusal limit
    is chosen on the selection part. Without them the grader reads the detector's evidence alone."""
    parts = split_records(records)
    sel, rep = parts["selection"], parts["report"]
    if len(sel) < 20 or len(rep) < 1:
        raise ValueError(f"too few graded photos to refit (selection {len(sel)}, report {len(rep)})")
    op = card.operating_conf
    sel_y = np.array([r.grade for r in sel], np.int64)
    cal = calibration.calibrate_counts(
        {op: np.array([r.count for r in sel], np.int64)}, [r.labelled for r in sel], sel_y
    )
    # Levels and size bins are the fixed defaults: bins at the fitting photos' own score and size quantiles
    # did worse in 5-fold CV on the selection part (bench/grader_variants.py --grid data).
    levels, size_edges = default_levels(op), list(SIZE_EDGES)
    probe = train_probe(train_records, [*sel, *rep], probe_alpha)
    fit: FitReport = fit_grader(
        with_probe(feature_matrix(levels, sel, op, size_edges), sel, probe),
        sel_y,
        [r.labelled for r in sel],
        operating_conf=op,
        levels=levels,
        size_edges=size_edges,
        fitted_on={"part": "selection", "photos": len(sel), "model_version": card.version}
        | (
            {}
            if probe is None
            else {
                "probe": f"ridge (alpha {probe_alpha}) from z-scored embeddings to log(1 + count), "
                f"{len(train_records or [])} train photos; grade head only"
            }
        ),
        probe=probe,
        count_probe=PROBE_IN_COUNT_HEAD,
    )
    grader = fit.grader
    report_grader = grader_figures(grader, rep)
    rep_y = np.array([r.grade for r in rep], np.int64)
    rep_probs = grader.predict_proba(feature_matrix(grader, rep, op))
    report_grader["bootstrap"] = bootstrap_interval(rep_probs, rep_y)
    summary: dict[str, Any] = {
        "model_version": card.version,
        "operating_conf": op,
        "protocols": {"selection": SELECTION_PROTOCOL, "report": REPORT_PROTOCOL},
        "photos": {"selection": len(sel), "report": len(rep)},
        "selection": {
            "bands (fitted here, in-sample)": {**band_figures(sel, cal.grade_bands)},
            "grader (5-fold out-of-fold)": grader.metrics,
            "mAP50": round(map50(sel, op), 4),
        },
        "report": {
            "bands (fitted on selection)": band_figures(rep, cal.grade_bands),
            "bands (card before this refit; may have been chosen on all valid)": band_figures(rep, card.grade_bands),
            "grader (fitted on selection)": report_grader,
            "mAP50": round(map50(rep, op), 4),
        },
        "routing (report part)": routing_study(fit.oof_probabilities, sel, rep, grader, cal.grade_bands),
    }
    ood = None
    if train_records and all(r.evidence.embedding is not None for r in [*train_records, *sel, *rep]):
        ood = fit_ood(
            stack([r.evidence.embedding for r in train_records]),
            stack([r.evidence.embedding for r in sel]),
            fitted_on={"model_version": card.version, "train": "serving calls on the training photos"},
        )
        summary["embedding OOD (limit chosen on selection)"] = ood_figures(ood, {"selection": sel, "report": rep})
    if cross_validate:
        summary["all valid (5-fold CV)"] = cross_validated_all(records, op, probe=probe)
    grader = replace(grader, metrics={**grader.metrics, **{f"report_{k}": v for k, v in report_grader.items()}})
    if out is not None:
        reliability_plot(
            rep_probs,
            rep_y,
            out / "reliability_report.png",
            f"report part: ECE {expected_calibration_error(rep_probs, rep_y):.3f} (a calibrated grader: "
            f"{report_grader['bootstrap']['ece_if_calibrated_mean_p95'][0]:.3f}), n={len(rep)}",
        )
        reliability_plot(
            fit.oof_probabilities,
            sel_y,
            out / "reliability_selection_oof.png",
            f"selection part, out-of-fold: ECE {grader.metrics['cv_ece']:.3f}, n={len(sel)}",
        )
        (out / "grader_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        grader.save(out / GRADER_FILE)
        if ood is not None:
            ood.save(out / OOD_FILE)
    return RefitResult(grader=grader, bands=cal.grade_bands, summary=summary, ood=ood)


def write_to_model(model_dir: Path, result: RefitResult) -> ModelCard:
    """Store the grader beside the card, name it on the card, and keep the selection-part bands as fallback."""
    model_dir = Path(model_dir)
    result.grader.save(model_dir / GRADER_FILE)
    if result.ood is not None:
        result.ood.save(model_dir / OOD_FILE)
    card = ModelCard.load(model_dir)
    rep = result.summary["report"]["grader (fitted on selection)"]
    updated = replace(
        card,
        grader=GRADER_FILE,
        # statistics of another network's embedding would refuse at random: keep only this refit's
        embedding_ood=OOD_FILE if result.ood is not None else None,
        grade_bands=result.bands,
        metrics={
            **card.metrics,
            "report_grade_accuracy": rep["grade_accuracy"],
            "report_grade_ece": rep["ece"],
            "report_count_mae": rep["count_mae"],
            "report_mAP50": result.summary["report"]["mAP50"],
        },
    )
    updated.save(model_dir)
    return updated


def refit_model_folder(
    model_dir: Path,
    data: Path,
    split: str | None,
    cache_dir: Path,
    threads: int | None = None,
    *,
    train_split: str | None = "train",
    train_every: int = 2,
) -> RefitResult:
    """Training's hook: serve the new model on a labelled split, refit bands + grader, store them with it.

    When `data` has a `train_split`, every `train_every`-th of its photos is served too and the embedding OOD
    statistics are fitted on them (a subsample: the mean and a shrunk covariance need a few hundred photos)."""
    from detector.evaluation import load_labelled_images
    from detector.onnx_runtime import Detector

    detector = Detector.load(model_dir, cache_dir, threads=threads)
    images, _ = load_labelled_images(data, split)
    train_records = None
    if train_split is not None:
        train_images, _ = load_labelled_images(data, train_split)
        if train_images and {i.path for i in train_images} != {i.path for i in images}:
            picked = sorted(train_images, key=lambda item: item.path.name)[::train_every]
            train_records = collect(detector, picked)
    result = refit(collect(detector, images), detector.card, cross_validate=False, train_records=train_records)
    write_to_model(model_dir, result)
    return result
