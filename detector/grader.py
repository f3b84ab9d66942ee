"""Severity grader: grade probabilities, a lesion-count interval and a continuous score from all the
evidence `Detector.predict` has at hand, not from one thresholded count.

Serving is numpy only. The grader is stored with the model (`grader.json`, named on the card by
`grader`); a model without one grades by the card's count bands (`detector.grading`).

Evidence (`Evidence`) is what predict already computed at its base floor: the fused (served) boxes and
scores, each pass's scores, the flip disagreement and the low-confidence share. Features (`features`)
are a fixed, deterministic function of it:

- log(1 + count) of the fused findings at several confidence levels (multiples of the operating one),
- log(1 + score mass) and the mean score at the operating threshold,
- a size histogram (box side relative to the photo's geometric mean side, log(1 + count) per bin),
- log(1 + |normal - mirrored|) pass counts, flip disagreement, low-confidence share.

Two heads share the standardised features:

- grade: ordinal (cumulative-logit) regression, P(grade <= k) = sigmoid((theta_k - w.x) / T), with the
  temperature T fitted on out-of-fold predictions so that the probabilities are calibrated;
- count: ridge regression of log(1 + labelled count) and an interval from out-of-fold residual
  quantiles (split-conformal style), so `count_interval` covers the labelled count at the stated rate.

Fitting (`fit_grader`) lives here too but uses scipy; only `Grader.predict*` and `features` run in serving.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.findings import Severity
from detector.grading import GRADE_LABELS, grade_from_count
from detector.model_card import in_folder

GRADER_FILE = "grader.json"
N_GRADES = 4
LEVEL_MULTIPLIERS: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0, 6.0)
SIZE_EDGES: tuple[float, ...] = (0.02, 0.035, 0.06)  # box side / sqrt(photo w * h)
FORMAT = 2  # 2: optional linear probe on the embedding; format-1 files (no probe) still load


@dataclass(frozen=True)
class Evidence:
    """What `Detector.predict` has for one photo, cut at its base floor (all in photo pixels)."""

    scores: np.ndarray  # fused (served) scores, (N,)
    boxes: np.ndarray  # fused boxes xyxy, (N, 4)
    normal_scores: np.ndarray  # normal pass scores, (Nn,)
    flipped_scores: np.ndarray  # mirrored pass scores, (Nf,)
    flip_disagreement: float
    low_conf_share: float
    width: int
    height: int
    # Pooled backbone/neck features (`detector.export.add_embedding_output`), mean over tiles and passes;
    # None when the ONNX has no embedding output (exports made before it).
    embedding: np.ndarray | None = None

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat arrays for an `.npz` cache (one photo under `prefix`)."""
        extra = {} if self.embedding is None else {f"{prefix}|e": np.asarray(self.embedding, np.float32)}
        return extra | {
            f"{prefix}|s": np.asarray(self.scores, np.float32),
            f"{prefix}|b": np.asarray(self.boxes, np.float32).reshape(-1, 4),
            f"{prefix}|n": np.asarray(self.normal_scores, np.float32),
            f"{prefix}|f": np.asarray(self.flipped_scores, np.float32),
            f"{prefix}|m": np.asarray(
                [self.flip_disagreement, self.low_conf_share, self.width, self.height], np.float64
            ),
        }

    @classmethod
    def from_arrays(cls, data: Any, prefix: str) -> Evidence:
        meta = np.asarray(data[f"{prefix}|m"], np.float64)
        return cls(
            scores=np.asarray(data[f"{prefix}|s"], np.float32),
            boxes=np.asarray(data[f"{prefix}|b"], np.float32).reshape(-1, 4),
            normal_scores=np.asarray(data[f"{prefix}|n"], np.float32),
            flipped_scores=np.asarray(data[f"{prefix}|f"], np.float32),
            flip_disagreement=float(meta[0]),
            low_conf_share=float(meta[1]),
            width=int(meta[2]),
            height=int(meta[3]),
            embedding=np.asarray(data[f"{prefix}|e"], np.float32) if f"{prefix}|e" in data else None,
        )


def feature_names(levels: Sequence[float], size_edges: Sequence[float] = SIZE_EDGES) -> list[str]:
    names = [f"log_count@{t:g}" for t in levels]
    names += ["log_mass", "mean_score"]
    bins = [0.0, *size_edges, float("inf")]
    names += [f"log_size[{lo:g},{hi:g})" for lo, hi in itertools.pairwise(bins)]
    names += ["log_pass_gap", "flip_disagreement", "low_conf_share"]
    return names


def probe_names(dims: int) -> list[str]:
    return [f"probe_{i}" for i in range(dims)]


def probe_features(embedding: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Linear probe inputs: the embedding projected on the grader's stored directions (PCA axes or fitted maps)."""
    components = np.asarray(components, np.float64).reshape(-1, len(mean))
    e = np.asarray(embedding, np.float64).ravel()
    if e.shape[0] != len(mean):
        raise ValueError(f"embedding has {e.shape[0]} values, the grader's probe expects {len(mean)}")
    return components @ (e - np.asarray(mean, np.float64))


def fit_probe_basis(embeddings: np.ndarray, dims: int, *, standardise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of the first `dims` principal axes of these embeddings (numpy SVD).

    With `standardise` each channel is z-scored first (folded into the components), so channels with large
    activations do not decide the axes alone. Signs are fixed (largest loading positive): deterministic."""
    x = np.asarray(embeddings, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) if standardise else np.ones(x.shape[1])
    scale = np.where(scale > 1e-9, scale, 1.0)
    _, _, vt = np.linalg.svd((x - mean) / scale, full_matrices=False)
    axes = vt[:dims]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return mean, (axes * signs[:, None]) / scale[None, :]


def fit_probe_map(embeddings: np.ndarray, target: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """A supervised probe direction: ridge from the z-scored embedding to `target` (e.g. log(1 + labelled count)),
    returned as (mean, 1 x d components) so that `probe_features` gives the ridge prediction minus its intercept."""
    x = np.asarray(embeddings, np.float64)
    target = np.asarray(target, np.float64)
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    z = (x - mean) / sd
    n, d = z.shape
    w = np.linalg.solve(z.T @ z / n + alpha * np.eye(d), z.T @ (target - target.mean()) / n)
    return mean, (w / sd)[None, :]


def default_levels(operating_conf: float) -> list[float]:
    return [round(min(0.95, operating_conf * m), 4) for m in LEVEL_MULTIPLIERS]


def features(
    evidence: Evidence, *, operating_conf: float, levels: Sequence[float], size_edges: Sequence[float] = SIZE_EDGES
) -> np.ndarray:
    """The grader's feature vector for one photo: deterministic, float64, order = `feature_names`."""
    scores = np.asarray(evidence.scores, np.float64)
    kept = scores >= operating_conf
    out = [np.log1p(np.count_nonzero(scores >= t)) for t in levels]
    out.append(np.log1p(scores[kept].sum()))
    out.append(float(scores[kept].mean()) if kept.any() else 0.0)
    boxes = np.asarray(evidence.boxes, np.float64).reshape(-1, 4)[kept]
    side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    side = side / max(np.sqrt(float(evidence.width) * float(evidence.height)), 1.0)
    bins = np.digitize(side, np.asarray(size_edges, np.float64))
    out.extend(np.log1p(np.bincount(bins, minlength=len(size_edges) + 1)).tolist())
    n_normal = np.count_nonzero(np.asarray(evidence.normal_scores) >= operating_conf)
    n_flipped = np.count_nonzero(np.asarray(evidence.flipped_scores) >= operating_conf)
    out.append(np.log1p(abs(int(n_normal) - int(n_flipped))))
    out.append(float(evidence.flip_disagreement))
    out.append(float(evidence.low_conf_share))
    return np.asarray(out, dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def ordinal_probabilities(latent: np.ndarray, cutpoints: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(n, 4) grade probabilities of a cumulative-logit model; rows sum to 1."""
    z = np.asarray(latent, np.float64).reshape(-1, 1)
    cumulative = _sigmoid((np.asarray(cutpoints, np.float64)[None, :] - z) / temperature)
    cumulative = np.concatenate([np.zeros((len(z), 1)), cumulative, np.ones((len(z), 1))], axis=1)
    probs = np.clip(np.diff(cumulative, axis=1), 0.0, None)
    return probs / probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class GradeEstimate:
    grade: int
    probabilities: tuple[float, float, float, float]
    count_interval: tuple[int, int]
    count_estimate: float
    score: float


@dataclass(frozen=True)
class Grader:
    """A fitted grader: standardisation, ordinal grade head, count head. JSON round-trips exactly."""

    operating_conf: float
    levels: list[float]
    size_edges: list[float]
    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    cutpoints: list[float]
    temperature: float
    count_weights: list[float]
    count_intercept: float
    count_residual_quantiles: list[float]  # (low, high) residual quantiles in log(1 + count)
    count_coverage: float
    fitted_on: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # linear probe on the embedding: features += probe_components @ (embedding - probe_mean); empty: no probe
    probe_mean: list[float] = field(default_factory=list)
    probe_components: list[list[float]] = field(default_factory=list)
    format: int = FORMAT

    def __post_init__(self) -> None:
        d = len(self.feature_names)
        expected = feature_names(self.levels, self.size_edges) + probe_names(len(self.probe_components))
        if self.feature_names != expected:
            raise ValueError("grader feature names do not match its levels, size edges and probe")
        if any(len(row) != len(self.probe_mean) for row in self.probe_components):
            raise ValueError("grader probe components do not match its probe mean")
        if not (len(self.mean) == len(self.scale) == len(self.weights) == len(self.count_weights) == d):
            raise ValueError("grader parameter lengths do not match its features")
        if len(self.cutpoints) != N_GRADES - 1 or list(self.cutpoints) != sorted(self.cutpoints):
            raise ValueError("grader cutpoints must be three ascending numbers")
        if self.temperature <= 0:
            raise ValueError("grader temperature must be positive")

    # serving -----------------------------------------------------------------------------------
    @property
    def has_probe(self) -> bool:
        return bool(self.probe_components)

    def features(self, evidence: Evidence) -> np.ndarray:
        base = features(evidence, operating_conf=self.operating_conf, levels=self.levels, size_edges=self.size_edges)
        if not self.has_probe:
            return base
        if evidence.embedding is None:
            # an ONNX without the embedding output: the probe columns sit at the fitting photos' mean, where
            # their standardised value is 0 and they move nothing
            return np.concatenate([base, np.asarray(self.mean[len(base) :], np.float64)])
        probe = probe_features(evidence.embedding, np.asarray(self.probe_mean), np.asarray(self.probe_components))
        return np.concatenate([base, probe])

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(np.asarray(x, np.float64)) - np.asarray(self.mean)) / np.asarray(self.scale)

    def latent(self, x: np.ndarray) -> np.ndarray:
        return self._standardise(x) @ np.asarray(self.weights)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 4) calibrated grade probabilities from (n, d) feature rows."""
        return ordinal_probabilities(self.latent(x), np.asarray(self.cutpoints), self.temperature)

    def predict_log_count(self, x: np.ndarray) -> np.ndarray:
        return self._standardise(x) @ np.asarray(self.count_weights) + self.count_intercept

    def estimate(self, evidence: Evidence) -> GradeEstimate:
        x = self.features(evidence)
        probs = self.predict_proba(x)[0]
        log_count = float(self.predict_log_count(x)[0])
        low_q, high_q = self.count_residual_quantiles
        low = max(0, int(np.floor(np.expm1(max(log_count + low_q, 0.0)))))
        high = max(low, int(np.ceil(np.expm1(max(log_count + high_q, 0.0)))))
        rounded = tuple(round(float(p), 4) for p in probs)
        return GradeEstimate(
            grade=int(np.argmax(probs)),
            probabilities=rounded,  # type: ignore[arg-type]
            count_interval=(low, high),
            count_estimate=round(float(np.expm1(max(log_count, 0.0))), 1),
            score=round(float(np.dot(probs, np.arange(N_GRADES))), 3),
        )

    # storage -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grader:
        if int(data.get("format", FORMAT)) not in (1, FORMAT):
            raise ValueError(f"unsupported grader format {data.get('format')}")
        return cls(**{**data, "format": FORMAT})

    def save(self, path: Path) -> Path:
        path = in_folder(path, GRADER_FILE)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Grader:
        path = in_folder(path, GRADER_FILE)
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def severity_from(grader: Grader | None, evidence: Evidence, count: int, bands: Sequence[int]) -> Severity:
    """The served severity: the grader's when the model has one, else the count bands'."""
    if grader is None:
        return grade_from_count(count, bands)
    est = grader.estimate(evidence)
    return Severity(
        grade=est.grade,
        label=GRADE_LABELS[est.grade],
        probabilities=est.probabilities,
        count_interval=est.count_interval,
        score=est.score,
    )


# fitting (not on the serving path) ------------------------------------------------------------


def _ordinal_nll(params: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (+ L2 on w) and its gradient; cutpoints theta_0 + cumsum(exp(a))."""
    d = x.shape[1]
    w, t0, a = params[:d], params[d], params[d + 1 :]
    theta = np.concatenate([[t0], t0 + np.cumsum(np.exp(a))])
    z = x @ w
    n = len(y)
    upper = np.where(y < N_GRADES - 1, theta[np.minimum(y, N_GRADES - 2)] - z, np.inf)
    lower = np.where(y > 0, theta[np.maximum(y - 1, 0)] - z, -np.inf)
    su, sl = _sigmoid(upper), _sigmoid(lower)
    p = np.clip(su - sl, 1e-12, None)
    nll = -np.log(p).sum() / n + 0.5 * l2 * float(w @ w)
    # d p / d upper = su (1 - su), d p / d lower = -sl (1 - sl)
    du = np.where(np.isfinite(upper), su * (1 - su), 0.0) / p
    dl = np.where(np.isfinite(lower), sl * (1 - sl), 0.0) / p
    # d nll / d z = (du - dl) / n  (since upper and lower both carry -z)
    gz = (du - dl) / n
    grad_w = x.T @ gz + l2 * w
    g_theta = np.zeros(N_GRADES - 1)
    np.add.at(g_theta, np.minimum(y, N_GRADES - 2)[y < N_GRADES - 1], -du[y < N_GRADES - 1] / n)
    np.add.at(g_theta, np.maximum(y - 1, 0)[y > 0], dl[y > 0] / n)
    # theta_k = t0 + sum_{j<k} exp(a_j)
    grad_t0 = g_theta.sum()
    grad_a = np.array([g_theta[k + 1 :].sum() * np.exp(a[k]) for k in range(len(a))])
    return float(nll), np.concatenate([grad_w, [grad_t0], grad_a])


def fit_ordinal(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights, cutpoints) of an L2 cumulative-logit model on standardised features."""
    from scipy.optimize import minimize

    y = np.asarray(y, np.int64)
    d = x.shape[1]
    init = np.concatenate([np.zeros(d), [-1.0], np.zeros(N_GRADES - 2)])
    result = minimize(_ordinal_nll, init, args=(x, y, l2), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    params = result.x
    w, t0, a = params[:d], params[d], params[d + 1 :]
    return w, np.concatenate([[t0], t0 + np.cumsum(np.exp(a))])


def fit_temperature(latent: np.ndarray, cutpoints_per_row: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of out-of-fold predictions (rows may come from different folds)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, np.int64)

    def nll(log_t: float) -> float:
        t = float(np.exp(log_t))
        probs = np.vstack([ordinal_probabilities(latent[i : i + 1], cutpoints_per_row[i], t) for i in range(len(y))])
        return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.2), np.log(5.0)), method="bounded")
    return float(np.exp(result.x))


def fit_ridge(x: np.ndarray, target: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    n, d = x.shape
    mean_t = float(target.mean())
    w = np.linalg.solve(x.T @ x / n + l2 * np.eye(d), x.T @ (target - mean_t) / n)
    return w, mean_t


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: sum over confidence bins of |accuracy - confidence| weighted by bin share."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y, np.int64)
    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(hit[members].mean() - conf[members].mean())
    return float(ece)


def calibrated_ece(probs: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
    """ECE that a *perfectly calibrated* grader with these very probabilities would show: (mean, 95th percentile).

    Consistency resampling (Broecker & Smith, 2007): draw each photo's grade from its own predicted distribution
    and score it. ECE is biased upward on few photos; on ~140 photos this floor is itself several hundredths, so
    an observed ECE below its 95th percentile is what calibration would look like at that size.
    """
    probs = np.asarray(probs, np.float64)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(probs, axis=1)
    scores = []
    for _ in range(draws):
        u = rng.random((len(probs), 1)) * cumulative[:, -1:]
        drawn = np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)
        scores.append(expected_calibration_error(probs, drawn, bins))
    return float(np.mean(scores)), float(np.quantile(scores, 0.95))


@dataclass(frozen=True)
class FitReport:
    grader: Grader
    oof_probabilities: np.ndarray  # (n, 4) out-of-fold, temperature applied
    oof_log_count: np.ndarray  # (n,)
    chosen_l2: float


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Stratified fold indices (deterministic)."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for g in range(N_GRADES):
        members = rng.permutation(np.flatnonzero(y == g))
        for i, m in enumerate(members):
            folds[(i + offset) % k].append(int(m))
        offset += len(members)
    return [np.asarray(sorted(f), np.int64) for f in folds]


def fit_grader(
    x: np.ndarray,
    grades: Sequence[int],
    labelled_counts: Sequence[int],
    *,
    operating_conf: float,
    levels: Sequence[float],
    size_edges: Sequence[float] = SIZE_EDGES,
    l2_grid: Sequence[float] = (0.003, 0.01, 0.03, 0.1, 0.3),
    coverage: float = 0.8,
    folds: int = 5,
    seed: int = 0,
    fitted_on: dict[str, Any] | None = None,
    probe: tuple[np.ndarray, np.ndarray] | None = None,
    count_probe: bool = True,
) -> FitReport:
    """Fit both heads on these photos; L2 and temperature chosen by k-fold CV within them.

    With `probe` (mean, components), the last len(components) columns of `x` are the probe's features
    (`probe_features`) and the probe is stored with the grader; `count_probe=False` keeps the probe out of the
    count head (its weights there are 0)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(grades, np.int64)
    log_count = np.log1p(np.asarray(labelled_counts, np.float64))
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    xs = (x - mean) / scale
    n_count = x.shape[1] - (len(np.atleast_2d(probe[1])) if probe is not None and not count_probe else 0)

    def fit_count(rows: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
        cw, ci = fit_ridge(xs[rows][:, :n_count], log_count[rows], l2)
        return np.concatenate([cw, np.zeros(x.shape[1] - n_count)]), ci

    fold_index = stratified_folds(y, folds, seed)

    def oof(l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        latent = np.zeros(len(y))
        cuts = np.zeros((len(y), N_GRADES - 1))
        pred_count = np.zeros(len(y))
        for held in fold_index:
            train = np.setdiff1d(np.arange(len(y)), held)
            w, theta = fit_ordinal(xs[train], y[train], l2)
            latent[held] = xs[held] @ w
            cuts[held] = theta
            cw, ci = fit_count(train, l2)
            pred_count[held] = xs[held] @ cw + ci
        return latent, cuts, pred_count

    best: tuple[float, float] | None = None
    cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for l2 in l2_grid:
        cache[l2] = oof(l2)
        latent, cuts, _ = cache[l2]
        probs = np.vstack([ordinal_probabilities(latent[i : i + 1], cuts[i]) for i in range(len(y))])
        nll = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
        if best is None or nll < best[1]:
            best = (l2, nll)
    assert best is not None
    l2 = best[0]
    latent, cuts, pred_count = cache[l2]
    temperature = fit_temperature(latent, cuts, y)
    oof_probs = np.vstack([ordinal_probabilities(latent[i : i + 1], cuts[i], temperature) for i in range(len(y))])
    residual = log_count - pred_count
    tail = (1.0 - coverage) / 2.0
    quantiles = [float(np.quantile(residual, tail)), float(np.quantile(residual, 1.0 - tail))]

    w, theta = fit_ordinal(xs, y, l2)
    cw, ci = fit_count(np.arange(len(y)), l2)
    oof_grade = oof_probs.argmax(axis=1)
    low = np.floor(np.expm1(np.clip(pred_count + quantiles[0], 0, None)))
    high = np.ceil(np.expm1(np.clip(pred_count + quantiles[1], 0, None)))
    counts = np.asarray(labelled_counts, np.float64)
    metrics = {
        "protocol": f"{folds}-fold CV within the fitting photos (out-of-fold)",
        "photos": len(y),
        "l2": l2,
        "temperature": round(temperature, 4),
        "cv_grade_accuracy": round(float((oof_grade == y).mean()), 4),
        "cv_ece": round(expected_calibration_error(oof_probs, y), 4),
        "cv_count_mae": round(float(np.abs(np.expm1(pred_count) - counts).mean()), 3),
        "cv_count_interval_coverage": round(float(((counts >= low) & (counts <= high)).mean()), 4),
    }
    grader = Grader(
        operating_conf=float(operating_conf),
        levels=[float(v) for v in levels],
        size_edges=[float(v) for v in size_edges],
        feature_names=feature_names(levels, size_edges) + probe_names(0 if probe is None else len(probe[1])),
        mean=[float(v) for v in mean],
        scale=[float(v) for v in scale],
        weights=[float(v) for v in w],
        cutpoints=[float(v) for v in theta],
        temperature=float(temperature),
        count_weights=[float(v) for v in cw],
        count_intercept=float(ci),
        count_residual_quantiles=quantiles,
        count_coverage=coverage,
        fitted_on=dict(fitted_on or {}),
        metrics=metrics,
        probe_mean=[] if probe is None else [float(v) for v in probe[0]],
        probe_components=[] if probe is None else [[float(v) for v in row] for row in np.atleast_2d(probe[1])],
    )
    return FitReport(grader=grader, oof_probabilities=oof_probs, oof_log_count=pred_count, chosen_l2=l2)
