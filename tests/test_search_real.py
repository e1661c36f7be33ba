"""The real evaluator path without the real model: a tiny saved model with a tokenizer, the
profilers' deterministic fake backend, a JSONL task. Real `evaluate`, `measure_subnet`,
layer-composed predictor, caching in the store."""

from __future__ import annotations

import json

import pytest
from conftest import save_tiny_model_dir

from hwnas.errors import InputError
from hwnas.search import SearchConfig, search
from hwnas.search.runs import summary
from hwnas.store import Store


@pytest.fixture
def setup(tmp_path, hwnas_cache, fake_profile):
    from hwnas.supernet.supernet import Supernet

    fake_profile("fake-search", prefill=(16,), decode=(24,))
    model_dir = save_tiny_model_dir(tmp_path / "tiny", layers=4, intermediate=256)
    task = tmp_path / "qa.jsonl"
    task.write_text("\n".join(json.dumps({"context": f"Q{i}: {i} + {i} =", "choices":
                                          [f" {2 * i}", f" {2 * i + 1}", " x"], "gold": 0})
                              for i in range(12)))
    sn = Supernet.load(str(model_dir))
    store = Store(hwnas_cache / "store.sqlite")
    yield sn, store, str(model_dir), str(task)
    store.close()


def cfg(model, task, **kw):
    base = dict(hw="fake-search", model=model, tasks=(task,), evals=8, init=4, batch=2,
                limit=6, final_limit=None, final_max=2, inner_pop=12, inner_gens=4,
                objectives=("accuracy", "latency"))  # the JSONL task's own accuracy
    return SearchConfig(**{**base, **kw})


@pytest.mark.filterwarnings("ignore::hwnas.predictors.persist.FingerprintMismatchWarning")
def test_real_evaluator_path(setup):
    from hwnas.profilers import profile_layers

    sn, store, model, task = setup
    with pytest.raises(InputError, match=r"run `hwnas profile --hw fake-search"):
        search(cfg(model, task), store, "early", supernet=sn)
    profile_layers("fake-search", sn, store)
    name, st = search(cfg(model, task), store, "r", supernet=sn)
    s = summary(store, name)
    assert s.status == "done" and s.evals_used == 8
    ref = s.reference.measured
    assert ref is not None
    assert ref["accuracy"] >= 0 and ref["latency_ms"] > 0
    start = st.reference.values  # the search's reference carries the tasks' chance level
    assert start["accuracy_chance"] == pytest.approx(1 / 3)  # three choices per item
    (detail,) = (s.reference.measured_detail or {})["tasks"].values()
    assert detail["n"] == 12  # the final re-evaluation: all items
    for p in s.pareto:
        assert p.measured is not None and p.measured["latency_ms"] > 0
        assert "latency_ms" in p.predicted["mean"]
    assert s.agreement["latency_ms"].n == len(s.pareto)
    subnet_timings = store.measurements(hw="fake-search", kind="subnet")
    assert len(subnet_timings) >= 8  # every real evaluation timed (primary workloads)
    n_evals = len(store.evaluations())
    # another run costs evaluations and timings only for subnets the store has not seen
    seen = {p["key"] for _, k, p in store.events("r") if k == "eval"}
    search(cfg(model, task, final_max=0), store, "again", supernet=sn)
    new = {p["key"] for _, k, p in store.events("again") if k == "eval"} - seen
    assert len(store.evaluations()) == n_evals + len(new)
    assert len(store.measurements(hw="fake-search", kind="subnet")) == (
        len(subnet_timings) + 2 * len(new))  # two primary workloads each
    # predicted latency in the loop: the composed predictor; the final set is still timed
    name, _ = search(cfg(model, task, latency="predicted", seed=1), store, "pred", supernet=sn)
    evs = [p for _, k, p in store.events(name) if k == "eval"]
    assert {e["measured"]["detail"]["latency"]["source"] for e in evs} == {
        "layer-composed predictor"}
    fin = summary(store, name).pareto
    assert all((p.measured_detail or {})["latency"]["source"] == "measured" for p in fin)


def test_latency_none_searches_quality_against_size_without_a_profile(setup):
    sn, store, model, task = setup  # nothing profiled for this hardware profile
    with pytest.raises(InputError, match="--latency none: the latency objective"):
        search(cfg(model, task, latency="none"), store, "bad", supernet=sn)
    name, st = search(cfg(model, task, latency="none", objectives=("accuracy", "params")),
                      store, "size", supernet=sn)
    assert st.used == 8 and "latency_ms" not in st.reference.values
    assert all("latency_ms" not in r.measured.values and r.measured.values["params"] > 0
               for r in st.evals.values())
    s = summary(store, name)
    assert s.status == "done" and s.pareto
    assert all(p.measured is not None and "latency_ms" not in p.measured for p in s.pareto)
    assert not store.measurements(hw="fake-search", kind="subnet")  # nothing was timed


def test_gold_prob_objective_is_scored_on_the_same_items(setup):
    sn, store, model, task = setup
    name, st = search(cfg(model, task, latency="none", objectives=("gold_prob", "params"),
                          final_max=0), store, "gold", supernet=sn)
    ref = st.reference.values
    assert 0 < ref["gold_prob"] < 1 and ref["gold_prob_chance"] == pytest.approx(1 / 3)
    for r in st.evals.values():
        (t,) = r.measured.detail["tasks"].values()
        assert t["n"] == 6 and 0 < r.measured.values["gold_prob"] < 1
    with pytest.raises(InputError, match="not accuracy and gold_prob"):
        search(cfg(model, task, objectives=("accuracy", "gold_prob")), store, "two")


def test_unknown_task_is_refused_before_loading(setup):
    sn, store, model, task = setup
    with pytest.raises(InputError, match="unknown task 'piqaa'"):
        search(cfg(model, "piqaa"), store, "bad")


@pytest.mark.filterwarnings("ignore::hwnas.predictors.persist.FingerprintMismatchWarning")
def test_relative_bounds_follow_the_full_model(setup, tmp_path):
    from hwnas.hw_profiles import load_profile
    from hwnas.profilers import profile_layers
    from hwnas.search.evaluators import analytic
    from hwnas.search.real import latency_bundle
    from hwnas.search.relative import relative_bounds, tighter
    from hwnas.search.surrogates import predicted_latency

    sn, store, model, task = setup
    assert relative_bounds("fake-search", model, store) == (None, None)
    with pytest.raises(InputError, match=r"--min-speedup 0.0: give a positive ratio"):
        relative_bounds("fake-search", model, store, min_speedup=0.0)
    profile_layers("fake-search", sn, store)
    lat, params = relative_bounds("fake-search", model, store, min_speedup=1.3, min_smaller=1.2)
    full = sn.space.full()
    sn_dir = tmp_path / "relative-check"
    bundle = latency_bundle(load_profile("fake-search"), model, store, sn_dir, 0)
    assert lat == pytest.approx(predicted_latency(bundle, [full])[0][0] / 1.3)
    assert params == pytest.approx(analytic(sn.arch, full, "fp32", 32)["params"] / 1.2)
    assert sn_dir.is_dir()
    assert tighter(None, 5.0) == 5.0 and tighter(3.0, 5.0) == 3.0 and tighter(None, None) is None
    # a search with those bounds keeps its Pareto set inside them
    from hwnas.search import Constraints

    name, _ = search(cfg(model, task, latency="predicted",
                         constraints=Constraints(lat, params)), store, "rel", supernet=sn)
    for p in summary(store, name).pareto:
        assert p.measured is not None and p.measured["params"] <= params
    # resuming a run: the bounds come from the run's own stored predictor
    from hwnas.search.run import latency_dir

    again, _ = relative_bounds("fake-search", model, store, min_speedup=1.3, run=name)
    own = latency_bundle(load_profile("fake-search"), model, store, latency_dir(name), 0)
    assert again == pytest.approx(predicted_latency(own, [full])[0][0] / 1.3)


def test_perplexity_objective_steers_on_held_out_text_and_reports_accuracy(setup):
    from hwnas.search.report import pareto_table

    sn, store, model, task = setup
    name, st = search(cfg(model, task, latency="none", objectives=("perplexity", "params"),
                          limit=2), store, "ppl", supernet=sn)
    for r in st.evals.values():  # the search evaluates only the perplexity objective's text
        assert set(r.measured.detail["tasks"]) == {"heldout_ppl"}
        assert r.measured.values["perplexity"] > 1 and "accuracy" not in r.measured.values
        assert r.measured.detail["tasks"]["heldout_ppl"]["n"] == 2
    s = summary(store, name)
    assert s.status == "done" and s.pareto
    for p in s.pareto:  # the re-measurement reports the run's task as well
        assert p.measured is not None and {"accuracy", "perplexity"} <= set(p.measured)
        assert set((p.measured_detail or {})["tasks"]) == {task, "heldout_ppl"}
    head = pareto_table(s)[0]
    assert "perplexity predicted" in head and "accuracy measured" in head


def test_one_evaluation_is_a_batch_of_one_and_a_failed_job_raises(setup, monkeypatch):
    import numpy as np

    from hwnas.errors import HwnasError
    from hwnas.executors import Failure
    from hwnas.hw_profiles import load_profile
    from hwnas.search import spread
    from hwnas.search.real import RealEvaluator

    sn, store, model, task = setup
    ev = RealEvaluator(sn, load_profile("fake-search"), cfg(model, task), store, None)
    spec = sn.space.sample(np.random.default_rng(3))
    one = ev.evaluate(spec)
    (batch,) = ev.evaluate_batch([spec])  # from the store now: the same records
    assert not isinstance(batch, Failure)
    assert one.values == batch.values and one.values["latency_ms"] > 0
    assert one.detail["latency"]["source"] == "measured"
    for kind, error in (("input", InputError), ("error", HwnasError)):
        monkeypatch.setattr(spread, "evaluate_batch",
                            lambda ev, specs, k=kind: [Failure(k, "Boom", "no luck")])
        with pytest.raises(error, match=f"evaluating {spec.key()} failed .Boom: no luck") as got:
            ev.evaluate(spec)
        assert type(got.value) is error
