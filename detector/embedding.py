"""Out-of-distribution statistics of the detector's own embedding (issue 12), stored with each model.

The embedding is the network's pooled backbone/neck features (`detector.export.add_embedding_output`). A photo
whose embedding is far from the training photos' (Mahalanobis distance under a shrinkage covariance fitted on
`train`) is something the detector never learned to read: the pipeline refuses it as `not_skin_photo` rather
than counting and grading it. The limit is chosen on valid's selection part (photos the network did not train
on), so it says how far ordinary unseen skin photos land.

Serving is numpy only: `EmbeddingOod.distance` is one matrix-vector product. Fitting lives here too (numpy).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.model_card import in_folder

OOD_FILE = "embedding_ood.npz"
FORMAT = 1


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage covariance (towards a scaled identity) and the shrinkage used.

    More dimensions (640) than a few hundred photos can pin down: the plain covariance is singular, the
    shrunk one is well conditioned and its inverse stable. Same estimator as sklearn's, in numpy.
    """
    x = np.asarray(x, np.float64)
    n, d = x.shape
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / n
    mu = float(np.trace(cov)) / d
    delta = float(((cov - mu * np.eye(d)) ** 2).sum()) / d
    x2 = xc**2
    beta_sum = float((x2.T @ x2).sum()) / n - float((cov**2).sum())
    beta = min(max(beta_sum / (n * d), 0.0), delta)
    shrinkage = 0.0 if delta == 0 else beta / delta
    return (1.0 - shrinkage) * cov + shrinkage * mu * np.eye(d), shrinkage


@dataclass(frozen=True)
class EmbeddingOod:
    """Mean and precision (inverse shrunk covariance) of training embeddings, and the refusal limit."""

    mean: np.ndarray  # (d,)
    precision: np.ndarray  # (d, d)
    limit: float  # Mahalanobis distance above which a photo is out of distribution
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.mean.shape[0]
        if self.mean.ndim != 1 or self.precision.shape != (d, d):
            raise ValueError(f"embedding statistics: mean {self.mean.shape} and precision {self.precision.shape}")
        if not self.limit > 0:
            raise ValueError("embedding limit must be positive")

    @property
    def dims(self) -> int:
        return int(self.mean.shape[0])

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of (n, d) embeddings."""
        diff = np.atleast_2d(np.asarray(embeddings, np.float64)) - self.mean
        if diff.shape[1] != self.dims:
            raise ValueError(f"embedding has {diff.shape[1]} values, statistics {self.dims}")
        return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", diff, self.precision, diff), 0.0, None))

    def distance(self, embedding: np.ndarray) -> float:
        return float(self.distances(embedding)[0])

    def is_out(self, embedding: np.ndarray) -> bool:
        return self.distance(embedding) > self.limit

    def save(self, path: Path) -> Path:
        path = in_folder(path, OOD_FILE)
        meta = {"format": FORMAT, "limit": self.limit, "fitted_on": self.fitted_on}
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            mean=self.mean.astype(np.float64),
            precision=self.precision.astype(np.float32),  # halves the file; distances agree to ~1e-5
            meta=np.asarray(json.dumps(meta)),
        )
        path.write_bytes(buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: Path) -> EmbeddingOod:
        path = in_folder(path, OOD_FILE)
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if int(meta.get("format", 0)) != FORMAT:
                raise ValueError(f"{path}: unsupported embedding statistics format {meta.get('format')}")
            precision = np.asarray(data["precision"], np.float64)
            return cls(np.asarray(data["mean"], np.float64), precision, float(meta["limit"]), meta["fitted_on"])


def fit_ood(
    train: np.ndarray,
    selection: np.ndarray,
    *,
    quantile: float = 0.995,
    fitted_on: dict[str, Any] | None = None,
) -> EmbeddingOod:
    """Statistics on the training photos' embeddings; the limit at `quantile` of the selection photos' distances.

    The quantile is taken with method "higher" (an observed distance), so at most 1 - quantile of the selection
    photos would be refused: with 142 photos and 0.995 that is the largest one, i.e. none refused.
    """
    train = np.asarray(train, np.float64)
    cov, shrinkage = ledoit_wolf(train)
    mean = train.mean(axis=0)
    precision = np.linalg.inv(cov)
    precision = (precision + precision.T) / 2.0
    probe = EmbeddingOod(mean, precision, 1.0)
    selected = probe.distances(selection)
    limit = float(np.quantile(selected, quantile, method="higher"))
    train_d = probe.distances(train)
    info = {
        **(fitted_on or {}),
        "train_photos": len(train),
        "selection_photos": len(selection),
        "shrinkage": round(shrinkage, 5),
        "limit_rule": f"{quantile:g} quantile (higher) of selection-part distances",
        "train_distance_median": round(float(np.median(train_d)), 3),
        "selection_distance_median": round(float(np.median(selected)), 3),
    }
    # rounded up, so the stored limit never refuses the selection photo it was read from
    return EmbeddingOod(mean, precision, float(np.ceil(limit * 1e4) / 1e4), info)


def stack(embeddings: Sequence[np.ndarray | None]) -> np.ndarray:
    """(n, d) from per-photo embeddings; refuses missing ones (statistics need them all)."""
    if any(e is None for e in embeddings):
        raise ValueError("some photos have no embedding: export the model with the embedding output")
    return np.vstack([np.asarray(e, np.float64) for e in embeddings])  # type: ignore[arg-type]
