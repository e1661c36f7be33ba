"""Write a `PredictorReport` to a folder: report.md, report.json and the PNG figures."""

from __future__ import annotations

import json
from pathlib import Path

from hwnas.predictors.markdown import render
from hwnas.predictors.report import PredictorReport


def write_report(report: PredictorReport, out_dir: Path) -> list[Path]:
    from hwnas.predictors import figures

    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = figures.draw_all(report, out_dir)
    report.figures = [p.name for p in pngs]
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    (out_dir / "report.md").write_text(render(report))
    return [out_dir / "report.md", out_dir / "report.json", *pngs]
