"""One figure style for every paper, and a deterministic save (PDF + PNG, fixed dpi, no dates)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 150


def use_style() -> None:
    """Apply the house figure style (seaborn whitegrid, small fonts, colour-blind palette)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", palette="colorblind")
    plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "svg.hashsalt": "palimpsest"})


def save(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write `stem`.pdf and `stem`.png with stable bytes (no creation date), close `fig`, return paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    pdf, png = stem.with_suffix(".pdf"), stem.with_suffix(".png")
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None}, bbox_inches="tight")
    fig.savefig(png, metadata={"Software": None}, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return [pdf, png]
