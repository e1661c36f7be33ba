"""A run's Markdown report: the Pareto set predicted and re-measured against the full model,
the re-measurement agreement, the hypervolume per iteration and the figure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hwnas.search.runs import RunSummary


def _f(v: float | None, d: int = 1) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def quality_keys(summ: RunSummary) -> tuple[str, str | None]:
    """The quality the run steered on (predicted and measured in the tables) and, when that
    is not accuracy, the accuracy its re-measurement also reports (None: none measured)."""
    from hwnas.search.objectives import OBJECTIVES, QUALITY

    ref = summ.reference.best()
    steered = [OBJECTIVES.get(o).key for o in summ.objectives if o in QUALITY]
    q = steered[0] if steered else ("accuracy" if "accuracy" in ref else "perplexity")
    also = "accuracy" if q != "accuracy" and any(
        "accuracy" in (p.measured or {}) for p in summ.pareto) else None
    return q, also


def pareto_table(summ: RunSummary) -> list[str]:
    ref = summ.reference.best()
    q, also = quality_keys(summ)
    extra = f" {also} measured |" if also else ""
    lines = [f"| # | latency predicted (ms) | latency measured (ms) | speed-up | {q} predicted "
             f"| {q} measured |{extra} parameters (M) | smaller | subnet key |",
             "|---|---|---|---|---|---|" + ("---|" if also else "") + "---|---|---|"]
    for i, p in enumerate(summ.pareto, start=1):
        m, pr = p.measured or {}, p.predicted.get("mean", {})
        lat, par = m.get("latency_ms"), m.get("params")
        more = f" {_f(m.get(also), 3)} |" if also else ""
        lines.append(
            f"| {i} | {_f(pr.get('latency_ms'))} | {_f(lat)} | "
            f"{_f(ref.get('latency_ms', 0) / lat if lat else None, 2)}x | "
            f"{_f(pr.get(q), 3)} | {_f(m.get(q), 3)} |{more} {_f((par or 0) / 1e6)} | "
            f"{_f(ref.get('params', 0) / par if par else None, 2)}x | `{p.key}` |")
    more = f" {_f(ref.get(also), 3)} |" if also else ""
    lines.append(f"| full | – | {_f(ref.get('latency_ms'))} | 1.00x | – | "
                 f"{_f(ref.get(q), 3)} |{more} {_f(ref.get('params', 0) / 1e6)} | 1.00x | "
                 "full model |")
    return lines


def markdown(summ: RunSummary, pred: Mapping[str, Any] | None, plot: Path | None,
             settings: Mapping[str, object] | None = None) -> str:
    """`pred`: the demo's profiling and latency-predictor figures (JSON), if any."""
    out = [f"# hwnas: {summ.model} on {summ.hw}", ""]
    if pred is not None:
        lm = pred["latency_metrics"]
        prof = pred["profile"]
        out += ["## Profiling and latency predictor", "",
                f"- layer measurements: {prof['measured']} now, {prof['already']} already "
                f"stored, {prof['missing']} left (re-run to finish)",
                f"- layer-composed XGBoost predictor on {pred['n_holdout']} held-out subnets: "
                f"MAPE {lm['mape']:.1f}%, within ±10%: {lm['within_10'] * 100:.0f}%, "
                f"Spearman {lm['spearman']:.3f}",
                f"- predictor report: `{pred['report_dir']}/report.md`", ""]
    ag = summ.agreement["latency_ms"]
    detail = (summ.reference.measured_detail or {}).get("tasks", {})
    items = ", ".join(f"{k}: {v['n']} items" for k, v in detail.items())
    out += ["## Search", "",
            f"- run `{summ.name}` ({summ.strategy}), objectives "
            f"{', '.join(summ.objectives)}, tasks {', '.join(summ.tasks)}",
            f"- real evaluations: {summ.evals_used} of {summ.evals}",
            "- hypervolume per iteration (fixed normalisation against the full model): "
            + ", ".join(f"{v:.4f}" for v in summ.hypervolume), "",
            "## Pareto set, re-measured on the hardware", "",
            f"Fresh timing of the primary metric; quality re-evaluated on more items ({items})."
            " Predicted latency comes from the profile's layer-composed predictor calibrated "
            "on the run; predicted quality from the run's quality predictor (before the "
            "subnet was evaluated, where it was chosen by the predictors), on the search's "
            f"{summ.config.limit or 'all'} items per task.", ""]
    out += pareto_table(summ)
    if ag.share is not None:
        out += ["", f"Re-measured latency within ±10% of its prediction: "
                    f"{ag.share * 100:.0f}% of {ag.n} subnets."]
    if plot is not None:
        out += ["", f"![Pareto front]({plot})", "", f"Figure: `{plot}`"]
    out += ["", f"Export one: `hwnas export --run {summ.name} --pick K --out DIR`", ""]
    if settings:
        out += ["## Settings", "", "```", *[f"{k}: {v}" for k, v in settings.items()], "```", ""]
    return "\n".join(out)
