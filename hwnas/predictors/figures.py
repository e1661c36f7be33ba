"""PNG figures of a `PredictorReport` (matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hwnas.predictors.report import PredictorReport


def draw_all(report: PredictorReport, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    paths = []
    if report.points:
        paths.append(scatter(report, out_dir / "scatter_primary.png"))
    if report.efficiency:
        paths.append(efficiency(report, out_dir / "sample_efficiency.png"))
    if report.accuracy:
        paths.append(accuracy_scatter(report, out_dir / "accuracy_scatter.png"))
    return paths


def scatter(report: PredictorReport, path: Path) -> Path:
    import matplotlib.pyplot as plt

    names = list(report.points)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        pts = report.points[name]
        y, p = np.array(pts["measured"]), np.array(pts["predicted"])
        lo, hi = min(y.min(), p.min()) * 0.9, max(y.max(), p.max()) * 1.1
        line = np.linspace(lo, hi, 50)
        ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15,
                        label="±10%")
        ax.plot(line, line, color="gray", lw=0.8)
        ax.scatter(y, p, s=10)
        m = report.latency[name]["primary"]
        ax.set_title(f"{name}\nMAPE {m['mape']:.1f}%, ±10%: {m['within_10'] * 100:.0f}%",
                     fontsize=9)
        ax.set_xlabel("measured (ms)")
        ax.set_ylabel("predicted (ms)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{report.hw} / {report.model}: primary metric, held-out subnets")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def efficiency(report: PredictorReport, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name in sorted({r["predictor"] for r in report.efficiency}):
        rows = [r for r in report.efficiency if r["predictor"] == name]
        ns = sorted({r["n_layer_samples"] for r in rows})
        mape = [np.mean([r["mape"] for r in rows if r["n_layer_samples"] == n]) for n in ns]
        w10 = [np.mean([r["within_10"] for r in rows if r["n_layer_samples"] == n]) for n in ns]
        a1.plot(ns, mape, marker="o", label=name)
        a2.plot(ns, np.array(w10) * 100, marker="o", label=name)
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("profiled layer samples")
    a1.set_ylabel("held-out MAPE (%)")
    a2.set_xscale("log")
    a2.set_xlabel("profiled layer samples")
    a2.set_ylabel("held-out within ±10% (%)")
    a2.axhline(95, color="gray", ls="--", lw=0.8)
    a1.legend(fontsize=8)
    fig.suptitle("Sample efficiency (primary metric)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_scatter(report: PredictorReport, path: Path) -> Path:
    import matplotlib.pyplot as plt

    acc = report.accuracy
    if acc is None:
        raise ValueError("the report has no accuracy predictor section to draw")
    pts = acc["points"]
    y = np.array(pts["measured"])
    names = [n for n in pts if n != "measured"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=True):
        ax.scatter(y, pts[name], s=10)
        lo, hi = y.min() - 0.02, y.max() + 0.02
        ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
        m = acc["metrics"][name]
        ax.set_title(f"{name}: Spearman {m['spearman']:.2f}, MAE {m['mae']:.3f}", fontsize=9)
        ax.set_xlabel("measured accuracy")
        ax.set_ylabel("predicted (out of fold)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
