"""95% intervals for the shares the benches print (false rejects, catches, refusals), so a figure from 141 photos is
read with the uncertainty it carries, and copies of one photo are not counted as independent photos."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(hits: float, n: float) -> tuple[float, float]:
    """95% Wilson score interval of a proportion; `n` may be an effective size (not an integer) for clustered rows."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = hits / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_interval(outcomes: dict[str, list[bool]]) -> tuple[float, float]:
    """95% interval of the pooled share of True over clusters of correlated rows (a photo's copies, a real photo's
    views): Wilson at the effective sample size that the between-cluster variance of the ratio estimator gives
    (Kish's design effect), between the number of clusters and of rows, so ten copies of one photo count for less
    than ten photos; when every row agrees (none or all refused) nothing tells how alike the copies are, and the
    clusters are counted. Independent rows (one per cluster) get plain Wilson."""
    counts = [(sum(v), len(v)) for v in outcomes.values() if v]
    hits, total = sum(k for k, _ in counts), sum(n for _, n in counts)
    if not total:
        return 0.0, 1.0
    p, clusters = hits / total, len(counts)
    if clusters < 2 or all(n == 1 for _, n in counts):
        return wilson(hits, total)
    variance = clusters / (clusters - 1) * sum((k - p * n) ** 2 for k, n in counts) / (total * total)
    # every cluster alike: spread evenly (as many photos as rows), or all 0 / all 1, where nothing tells how alike a
    # photo's copies are: count the photos
    evenly = total if 0 < p < 1 else clusters
    effective = min(max(p * (1 - p) / variance, clusters), total) if variance > 0 else evenly
    return wilson(p * effective, effective)


def share(clusters: dict[str, list[bool]]) -> float:
    """The pooled share of True over every row of `clusters` (name -> outcomes); 0 without rows."""
    n = sum(len(v) for v in clusters.values())
    return sum(map(sum, clusters.values())) / n if n else 0.0


def share_cell(clusters: dict[str, list[bool]]) -> str:
    """`rate [low-high]` in % of the rows in `clusters` (name -> outcomes), the interval `clustered_interval`'s; "-"
    without rows."""
    if not any(clusters.values()):
        return "-"
    low, high = clustered_interval(clusters)
    return f"{100 * share(clusters):.1f} [{100 * low:.1f}-{100 * high:.1f}]"
