"""Compare grader variants by 5-fold CV inside valid's selection part only (no report-part figure is printed).

    .venv/bin/python bench/grader_variants.py --evidence var/grader/evidence-valid.npz
    .venv/bin/python bench/grader_variants.py --evidence var/grader/evidence-valid-emb.npz \
        --probe --train-evidence var/grader/evidence-train-emb.npz

`--probe` judges the linear probe on the embedding (issue 11) by nested CV: every outer fold runs the whole
`fit_grader` procedure (its own inner CV for L2 and temperature) on the other selection folds, with the probe's
directions fitted on those folds (PCA) or on the train photos (PCA, or ridge maps to the labelled count / grade),
and is judged on the held fold. Repeated over two fold seeds.

Reads the cache written by `skintrouble evaluate --refit-grader --evidence ...`; no network run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detector import calibration
from detector.grader import (
    N_GRADES,
    SIZE_EDGES,
    default_levels,
    expected_calibration_error,
    feature_names,
    fit_ordinal,
    fit_ridge,
    fit_temperature,
    ordinal_probabilities,
)
from detector.grader_fit import PhotoRecord, feature_matrix, load_records, split_records


def evidence_grid(records: Sequence[PhotoRecord], op: float) -> tuple[list[float], list[float]]:
    """Confidence levels and size-bin edges from the fitting photos' own findings at the operating threshold:
    levels at the 0/25/50/75/90% quantiles of their scores, size edges at the quartiles of their box sides
    (relative to the photo), so every feature varies for this detector whatever its score scale."""
    scores = np.concatenate([np.asarray(r.evidence.scores, np.float64) for r in records])
    kept = scores[scores >= op]
    sides = []
    for r in records:
        ev = r.evidence
        b = np.asarray(ev.boxes, np.float64).reshape(-1, 4)[np.asarray(ev.scores) >= op]
        sides.append(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])) / max(np.sqrt(ev.width * ev.height), 1.0))
    side = np.concatenate(sides) if sides else np.zeros(0)
    if len(kept) < 20 or len(side) < 20:
        return default_levels(op), list(SIZE_EDGES)
    levels = [float(op)] + [round(float(q), 4) for q in np.quantile(kept, [0.25, 0.5, 0.75, 0.9])]
    edges = [round(float(q), 4) for q in np.quantile(side, [0.25, 0.5, 0.75])]
    if len(set(levels)) < len(levels) or len(set(edges)) < len(edges):
        return default_levels(op), list(SIZE_EDGES)
    return levels, edges


def folds_of(y: np.ndarray, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    from detector.grader import stratified_folds

    return stratified_folds(y, k, seed)


def ordinal_cv(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    latent = np.zeros(len(y))
    cuts = np.zeros((len(y), N_GRADES - 1))
    for held in folds_of(y):
        train = np.setdiff1d(np.arange(len(y)), held)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w, theta = fit_ordinal((x[train] - mu) / sd, y[train], l2)
        latent[held] = ((x[held] - mu) / sd) @ w
        cuts[held] = theta
    t = fit_temperature(latent, cuts, y)
    return np.vstack([ordinal_probabilities(latent[i : i + 1], cuts[i], t) for i in range(len(y))])


def ldl_cv(x: np.ndarray, y: np.ndarray, counts: np.ndarray, l2: float) -> np.ndarray:
    """Grade = band of a log-normal predictive count; true-count bands fitted on the training folds."""
    from scipy.stats import norm

    target = np.log1p(counts)
    out = np.zeros((len(y), N_GRADES))
    for held in folds_of(y):
        train = np.setdiff1d(np.arange(len(y)), held)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w, c = fit_ridge((x[train] - mu) / sd, target[train], l2)
        # residual spread from an inner CV would be cleaner; in-fold residuals inflated by sqrt(n/(n-d))
        resid = target[train] - ((x[train] - mu) / sd @ w + c)
        sigma = resid.std() * np.sqrt(len(train) / max(len(train) - x.shape[1], 1))
        bands, _ = calibration.best_bands(counts[train], y[train])
        edges = np.log1p(np.asarray(bands) + 0.5)
        pred = (x[held] - mu) / sd @ w + c
        cdf = norm.cdf((edges[None, :] - pred[:, None]) / sigma)
        cdf = np.concatenate([np.zeros((len(held), 1)), cdf, np.ones((len(held), 1))], axis=1)
        out[held] = np.diff(cdf, axis=1)
    return out


def fit_joint(x: np.ndarray, y: np.ndarray, target: np.ndarray, l2: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Shared latent z = w.x: ordinal grade NLL on z plus lam * Gaussian NLL of log(1 + count) ~ N(a + b z, s)."""
    from scipy.optimize import minimize

    from detector.grader import _ordinal_nll

    d = x.shape[1]

    def loss(params: np.ndarray) -> float:
        grade_part, _ = _ordinal_nll(params[: d + 3], x, y, l2)
        a, b, log_s = params[d + 3 :]
        z = x @ params[:d]
        resid = target - (a + b * z)
        count_part = float(np.mean(0.5 * (resid / np.exp(log_s)) ** 2 + log_s))
        return grade_part + lam * count_part

    init = np.concatenate([np.zeros(d), [-1.0, 0.0, 0.0], [target.mean(), 0.0, 0.0]])
    res = minimize(loss, init, method="L-BFGS-B", options={"maxiter": 3000})
    w, t0, a = res.x[:d], res.x[d], res.x[d + 1 : d + 3]
    return w, np.concatenate([[t0], t0 + np.cumsum(np.exp(a))])


def joint_cv(x: np.ndarray, y: np.ndarray, counts: np.ndarray, l2: float, lam: float) -> np.ndarray:
    latent = np.zeros(len(y))
    cuts = np.zeros((len(y), N_GRADES - 1))
    for held in folds_of(y):
        train = np.setdiff1d(np.arange(len(y)), held)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w, theta = fit_joint((x[train] - mu) / sd, y[train], np.log1p(counts[train]), l2, lam)
        latent[held] = ((x[held] - mu) / sd) @ w
        cuts[held] = theta
    t = fit_temperature(latent, cuts, y)
    return np.vstack([ordinal_probabilities(latent[i : i + 1], cuts[i], t) for i in range(len(y))])


def show(name: str, probs: np.ndarray, y: np.ndarray) -> None:
    acc = (probs.argmax(1) == y).mean()
    nll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()
    print(f"{name:55s} acc {acc:.3f}  nll {nll:.3f}  ece {expected_calibration_error(probs, y):.3f}")


def train_ridge_map(embeddings: np.ndarray, target: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One probe direction: ridge from the z-scored embedding to `target`, as (mean, 1 x d components)."""
    mean, sd = embeddings.mean(0), embeddings.std(0) + 1e-9
    z = (embeddings - mean) / sd
    n, d = z.shape
    w = np.linalg.solve(z.T @ z / n + alpha * np.eye(d), z.T @ (target - target.mean()) / n)
    return mean, (w / sd)[None, :]


def probe_variants(
    sel: Sequence[PhotoRecord],
    train: Sequence[PhotoRecord] | None,
    op: float,
    seeds: Sequence[int] = (0, 1),
    only: str = "",
) -> None:
    """Nested selection-part CV of fit_grader with and without probe features (see the module docstring)."""
    from detector.embedding import stack
    from detector.grader import fit_grader, fit_probe_basis, probe_features

    levels = default_levels(op)
    y = np.array([r.grade for r in sel], np.int64)
    counts = np.array([r.labelled for r in sel], np.float64)
    base = feature_matrix(levels, sel, op)
    emb = stack([r.evidence.embedding for r in sel])
    variants: dict[str, object] = {"none": None}
    for k in (1, 2, 4, 8, 16):
        variants[f"pca-selection z k={k}"] = ("sel", k, True)
    for k in (2, 4, 8):
        variants[f"pca-selection raw k={k}"] = ("sel", k, False)
    if train is not None:
        temb = stack([r.evidence.embedding for r in train])
        tcount = np.log1p(np.array([r.labelled for r in train], np.float64))
        tgrade = np.array([r.grade for r in train], np.float64)
        for k in (2, 4, 8, 16):
            variants[f"pca-train z k={k}"] = fit_probe_basis(temb, k, standardise=True)
        for alpha in (0.1, 1.0, 10.0):
            variants[f"ridge-train log-count a={alpha:g}"] = train_ridge_map(temb, tcount, alpha)
            variants[f"ridge-train grade a={alpha:g}"] = train_ridge_map(temb, tgrade, alpha)
        # the probe in the grade head only (the count head on the detector's evidence)
        for alpha in (0.001, 0.003, 0.01, 0.03, 0.1):
            variants[f"grade-only ridge-train log-count a={alpha:g}"] = train_ridge_map(temb, tcount, alpha)
    print(f"{'variant (nested 5-fold CV on selection, seeds ' + str(list(seeds)) + ')':45s}   acc    nll    ece   mae")
    for name, spec in variants.items():
        if only and not name.startswith(only):
            continue
        accs, nlls, eces, maes = [], [], [], []
        for seed in seeds:
            probs = np.zeros((len(y), N_GRADES))
            est = np.zeros(len(y))
            for held in folds_of(y, 5, seed + 100):
                fit_rows = np.setdiff1d(np.arange(len(y)), held)
                if spec is None:
                    probe = None
                elif isinstance(spec, tuple) and isinstance(spec[0], str):
                    probe = fit_probe_basis(emb[fit_rows], int(spec[1]), standardise=bool(spec[2]))  # type: ignore[misc]
                else:
                    probe = spec  # type: ignore[assignment]
                if probe is None:
                    x = base
                else:
                    x = np.hstack([base, np.vstack([probe_features(e, probe[0], probe[1]) for e in emb])])
                fit = fit_grader(
                    x[fit_rows],
                    y[fit_rows],
                    counts[fit_rows],
                    operating_conf=op,
                    levels=levels,
                    probe=probe,
                    count_probe=not name.startswith("grade-only"),
                )
                probs[held] = fit.grader.predict_proba(x[held])
                est[held] = np.expm1(np.clip(fit.grader.predict_log_count(x[held]), 0, None))
            accs.append((probs.argmax(1) == y).mean())
            nlls.append(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
            eces.append(expected_calibration_error(probs, y))
            maes.append(np.abs(est - counts).mean())
        print(
            f"{name:45s} {np.mean(accs):.3f}  {np.mean(nlls):.3f}  {np.mean(eces):.3f}  {np.mean(maes):.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evidence", type=Path, required=True)
    parser.add_argument("--op", type=float, default=0.05)
    parser.add_argument("--probe", action="store_true", help="the embedding probe variants (nested CV)")
    parser.add_argument(
        "--train-evidence", type=Path, help="with --probe: train photos' cache, for train-fitted probes"
    )
    parser.add_argument("--only", default="", help="with --probe: only variants whose name starts with this")
    parser.add_argument("--joint", action="store_true", help="only the shared-latent count + grade model")
    parser.add_argument("--grid", choices=["data", "default"], default="data", help="levels/size edges")
    args = parser.parse_args()
    records, _ = load_records(args.evidence)
    sel = split_records(records)["selection"]
    if args.probe:
        train = load_records(args.train_evidence)[0] if args.train_evidence else None
        probe_variants(sel, [r for r in train if r.grade is not None] if train else None, args.op, only=args.only)
        return
    y = np.array([r.grade for r in sel])
    counts = np.array([r.labelled for r in sel])
    if args.grid == "data":
        levels, edges = evidence_grid(sel, args.op)
    else:
        levels, edges = default_levels(args.op), list(SIZE_EDGES)
    print(f"levels {levels} size edges {edges}")
    x = feature_matrix(levels, sel, args.op, edges)
    names = feature_names(levels, edges)
    served = np.array([r.count for r in sel])
    # bands baseline, CV
    correct = 0
    for held in folds_of(y):
        train = np.setdiff1d(np.arange(len(y)), held)
        cal = calibration.calibrate_counts({args.op: served[train]}, counts[train], y[train])
        correct += int((calibration.grades_from_counts(served[held], cal.grade_bands) == y[held]).sum())
    print(f"{'bands on served count (CV)':55s} acc {correct / len(y):.3f}")
    subsets = {
        "all": list(range(len(names))),
        "count@op": [0],
        "counts at levels": list(range(len(levels))),
        "counts + mass + mean": list(range(len(levels) + 2)),
        "counts + sizes": list(range(len(levels))) + [i for i, n in enumerate(names) if n.startswith("log_size")],
        "counts + flip": [*list(range(len(levels))), len(names) - 3, len(names) - 2, len(names) - 1],
    }
    if args.joint:
        for l2 in (0.01, 0.1):
            for lam in (0.3, 1.0, 3.0):
                show(f"joint all l2={l2} lam={lam}", joint_cv(x, y, counts, l2, lam), y)
        return
    for l2 in (0.01, 0.1, 1.0):
        for label, cols in subsets.items():
            show(f"ordinal {label} l2={l2}", ordinal_cv(x[:, cols], y, l2), y)
            show(f"ldl {label} l2={l2}", ldl_cv(x[:, cols], y, counts, l2), y)


if __name__ == "__main__":
    main()
