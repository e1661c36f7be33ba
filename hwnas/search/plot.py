"""The Pareto-front figure of a run (PNG): every real evaluation, the re-measured Pareto set
and the full model, on the run's first two objectives (latency and accuracy by default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.search.objectives import objectives
from hwnas.search.state import RunState

if TYPE_CHECKING:
    from hwnas.search.runs import RunSummary

LABEL = {"accuracy": "accuracy", "gold_prob": "gold-choice probability",
         "latency_ms": "latency (ms, primary metric)",
         "params": "parameters (M)", "memory_bytes": "memory (MB)", "perplexity": "perplexity"}
SCALE = {"params": 1e-6, "memory_bytes": 1e-6}


def _axes(names: list[str]) -> tuple[str, str]:
    keys = [o.key for o in objectives(names)]
    quality = [k for k in keys if k in ("accuracy", "gold_prob", "perplexity")]
    cost = [k for k in keys if k not in ("accuracy", "gold_prob", "perplexity")]
    if quality and cost:
        return cost[0], quality[0]
    return keys[0], keys[1]


def pareto_png(state: RunState, summary: RunSummary, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = _axes(summary.objectives)
    sx, sy = SCALE.get(x, 1.0), SCALE.get(y, 1.0)
    fig, ax = plt.subplots(figsize=(7, 5))
    pts = [r.measured.values for r in state.evals.values()]
    ax.scatter([p[x] * sx for p in pts], [p[y] * sy for p in pts], s=14, c="0.7",
               label=f"real evaluations during the search ({len(pts)})")
    front = [p.measured for p in summary.pareto if p.measured]
    if front:
        ax.plot([m[x] * sx for m in front], [m[y] * sy for m in front],
                "o-", c="tab:blue", label="Pareto set, re-measured")
        for i, m in enumerate(front, start=1):
            ax.annotate(str(i), (m[x] * sx, m[y] * sy),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
    ref = summary.reference.best()
    if ref:
        ax.scatter([ref[x] * sx], [ref[y] * sy], marker="*", s=220, c="tab:red", zorder=5,
                   label="full model")
    ax.set_xlabel(LABEL.get(x, x))
    ax.set_ylabel(LABEL.get(y, y))
    ax.set_title(f"{summary.name}\n{summary.model} on {summary.hw} "
                 f"({', '.join(summary.tasks)}; {summary.evals_used} real evaluations)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
