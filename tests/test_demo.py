"""`hwnas demo --quick` end to end with tiny/fake components: the profilers' fake backend,
a config-only tiny model and the synthetic evaluator. Re-running it resumes from the store."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config


@pytest.mark.filterwarnings("ignore::hwnas.predictors.persist.FingerprintMismatchWarning")
def test_quick_demo_runs_end_to_end_and_resumes(tmp_path, capsys, fake_profile):
    from hwnas.cli import main
    from hwnas.store import open_store

    fake_profile("fake-demo", prefill=(16,), decode=(24,))
    tiny_config(layers=6, intermediate=256).save_pretrained(tmp_path / "tiny")
    argv = ["demo", "--quick", "--hw", "fake-demo", "--model", str(tmp_path / "tiny"),
            "--evaluator", "fake", "--tasks", "t", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    s = out["summary"]
    assert s["status"] == "done" and s["evals_used"] == 10 and s["hw"] == "fake-demo"
    assert s["pareto"] and all(p["measured"] for p in s["pareto"])
    report = open(out["report"]).read()
    assert "Pareto set, re-measured" in report and "held-out subnets" in report
    assert out["plot"].endswith(".png") and open(out["plot"], "rb").read(4) == b"\x89PNG"
    with open_store() as store:
        n_events = len(store.events(out["run"]))
        n_meas = len(store.measurement_keys())
    assert main(argv) == 0  # a second run continues from the store: nothing new
    again = json.loads(capsys.readouterr().out)
    assert again["summary"]["pareto"] == s["pareto"]
    with open_store() as store:
        assert len(store.events(out["run"])) == n_events
        assert len(store.measurement_keys()) == n_meas
    assert main(["runs", "list", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [out["run"]]
    assert main(["runs", "show", out["run"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["hw"] == "fake-demo" and shown["hypervolume"] == s["hypervolume"]
    assert set(shown["pareto"][0]["measured"]) >= {"latency_ms", "accuracy", "params"}
    assert shown["reference"]["measured"]["latency_ms"] > 0


def test_cli_errors_are_one_line(capsys):
    from hwnas.cli import main

    assert main(["search", "--objectives", "accuracy,latncy", "--evaluator", "fake"]) == 2
    err = capsys.readouterr().err
    assert "unknown objective 'latncy'. Did you mean 'latency'" in err and "Traceback" not in err
    assert main(["search", "--evals", "3", "--evaluator", "fake"]) == 2
    assert "smaller than the initial population (8)" in capsys.readouterr().err
    assert main(["search", "--min-smaller", "-1", "--evaluator", "fake"]) == 2
    assert "--min-smaller -1.0: give a positive ratio" in capsys.readouterr().err
    assert main(["runs", "show", "nope"]) == 2
    assert "no run named 'nope'" in capsys.readouterr().err


def test_demo_objectives_name_their_own_run():
    import dataclasses

    from hwnas.pipeline.demo import DemoSettings

    s = DemoSettings()
    assert s.objectives == ("perplexity", "latency")  # the default since 2026-12-07
    acc = dataclasses.replace(s, objectives=("accuracy", "latency"))
    assert s.run_name().endswith("-full-perplexity+latency")
    assert acc.run_name().endswith("-full-accuracy+latency")  # never the default's run
    assert acc.search_config().objectives == ("accuracy", "latency")
    quick = dataclasses.replace(DemoSettings.quick(), objectives=("accuracy", "latency"))
    assert quick.run_name().endswith("-quick-accuracy+latency")
