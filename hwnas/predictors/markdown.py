"""Render a `PredictorReport` as Markdown."""

from __future__ import annotations

from hwnas.predictors.report import MAIN, AccuracyReport, EfficiencyRow, PredictorReport


def _fmt(v: float, pct: bool = False) -> str:
    if v != v:  # nan
        return "n/a"
    return f"{v * 100:.1f}%" if pct else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def latency_table(report: PredictorReport, target: str) -> list[str]:
    lines = ["| predictor | MAPE % | RMSE ms | within ±5% | within ±10% | Spearman | Kendall |",
             "|---|---|---|---|---|---|---|"]
    ranked = sorted(report.latency.items(), key=lambda kv: kv[1][target]["mape"])
    for name, m in ranked:
        t = m[target]
        lines.append(f"| {name} | {_fmt(t['mape'])} | {_fmt(t['rmse'])} | "
                     f"{_fmt(t['within_5'], True)} | {_fmt(t['within_10'], True)} | "
                     f"{_fmt(t['spearman'])} | {_fmt(t['kendall'])} |")
    return lines


def render(r: PredictorReport) -> str:
    p = r.primary
    primary = (f"prefill {p['prefill']['tokens']} tokens + {p['decode_tokens']} x decode at "
               f"context {p['decode']['context']}")
    out = [f"# Predictor accuracy report: `{r.hw}` / `{r.model}`", "",
           f"- primary metric: {primary} (ms)",
           f"- trained on {r.n_layer_samples} layer measurements and {r.n_train_subnets} "
           "whole-subnet measurements (composition overhead, whole-network predictors)",
           f"- held out: {r.n_holdout} random whole subnets measured for real, never used in "
           "training", ""]
    out += [f"> {n}" for n in r.notes if n.startswith("WARNING")]
    out += [""] if any(n.startswith("WARNING") for n in r.notes) else []
    for target, title in (("primary", "Primary metric"),
                          (f"prefill@{p['prefill']['tokens']}", "Prefill"),
                          (f"decode@{p['decode']['context']}", "Decode step")):
        if r.latency and target in next(iter(r.latency.values())):
            out += [f"## {title} (held-out)", "", *latency_table(r, target), ""]
    if MAIN in r.latency:
        m = r.latency[MAIN]["primary"]
        best, best_mape = r.best_baseline()
        out += [f"- `{MAIN}` 90% interval coverage on held-out: "
                f"{_fmt(m.get('interval_coverage', float('nan')), True)}; in-domain share "
                f"{_fmt(m.get('in_domain_share', float('nan')), True)}",
                f"- best baseline on MAPE: `{best}` ({_fmt(best_mape)}%) against "
                f"`{MAIN}` ({_fmt(m['mape'])}%)", ""]
    out += _efficiency(r.efficiency)
    out += _accuracy(r.accuracy)
    if r.notes:
        out += ["## Notes", "", *[f"- {n}" for n in r.notes], ""]
    if r.figures:
        out += ["## Figures", "", *[f"![{f}]({f})" for f in r.figures], ""]
    return "\n".join(out)


def _efficiency(rows: list[EfficiencyRow]) -> list[str]:
    if not rows:
        return []
    out = ["## Sample efficiency (primary metric, held-out; mean over random subsets)", "",
           "| predictor | layer samples | timed profiling s | MAPE % | within ±10% | Spearman |",
           "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, float], list[EfficiencyRow]] = {}
    for row in rows:
        groups.setdefault((row["predictor"], row["n_layer_samples"]), []).append(row)
    for (name, n), g in sorted(groups.items()):
        timed_s = sum(x["timed_s"] for x in g) / len(g)
        mape = sum(x["mape"] for x in g) / len(g)
        within_10 = sum(x["within_10"] for x in g) / len(g)
        spearman = sum(x["spearman"] for x in g) / len(g)
        out.append(f"| {name} | {int(n)} | {timed_s:.1f} | {_fmt(mape)} | "
                   f"{_fmt(within_10, True)} | {_fmt(spearman)} |")
    return out + [""]


def _accuracy(acc: AccuracyReport | None) -> list[str]:
    if not acc:
        return []
    out = ["## Accuracy predictor (5-fold out-of-fold predictions on evaluated subnets)", "",
           f"- tasks: {', '.join(acc['tasks'])}; {acc['n_subnets']} evaluated subnets; "
           f"accuracy range {acc['target_range'][0]:.3f}..{acc['target_range'][1]:.3f}", "",
           "| predictor | MAE | RMSE | Spearman | Kendall |", "|---|---|---|---|---|"]
    for name, m in acc["metrics"].items():
        out.append(f"| {name} | {m['mae']:.4f} | {m['rmse']:.4f} | {_fmt(m['spearman'])} | "
                   f"{_fmt(m['kendall'])} |")
    return out + [""]
