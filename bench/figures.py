"""The one way the bench scripts write a figure (docs/figures/ and friends)."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: Path, dpi: int = 100) -> Path:  # fig: a matplotlib Figure (imported lazily by callers)
    """Lay `fig` out, write it to `path` (its folder made), close it and say where: scripts that draw several
    figures in one run must not keep them all in memory."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"wrote {path}")
    return path
