"""Predictors: the scikit-learn contract, composition, save/load, refusals, domain flag, CLI."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_predictors_synth import TINY, fill_all, fill_evaluations, fill_layers

from hwnas.errors import InputError
from hwnas.predictors import api, persist
from hwnas.predictors.composed import fit_overhead
from hwnas.predictors.estimators import AccuracyPredictor, LatencyPredictor
from hwnas.predictors.features import subnet_matrix
from hwnas.predictors.persist import FingerprintMismatchWarning
from hwnas.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore::hwnas.predictors.persist.FingerprintMismatchWarning")


def _expected_failed_checks(estimator):
    # Every scikit-learn check applies and passes. The one property that could have clashed,
    # LatencyPredictor's log target (it needs positive latencies), is declared through the
    # `target_tags.positive_only` tag, so the checks draw positive targets for it.
    return {}


@parametrize_with_checks([LatencyPredictor(n_estimators=15, n_members=2),
                          LatencyPredictor(n_estimators=15, n_members=2, log_target=False),
                          AccuracyPredictor(n_estimators=15, n_members=2)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


def test_unfitted_predict_refuses():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        LatencyPredictor().predict(np.ones((2, 3)))


def test_log_target_refuses_non_positive_latency():
    with pytest.raises(ValueError, match="strictly positive"):
        LatencyPredictor(n_estimators=5).fit(np.ones((4, 2)), np.array([1.0, 0.0, 2.0, 3.0]))


def test_in_domain_flags_out_of_range_rows():
    X = np.column_stack([np.linspace(0, 1, 30), np.linspace(10, 20, 30)])
    est = AccuracyPredictor(n_estimators=10, n_members=2).fit(X, X[:, 0])
    flags = est.in_domain(np.array([[0.5, 15.0], [1.5, 15.0], [0.5, 9.0]]))
    assert flags.tolist() == [True, False, False]
    assert est.out_of_domain_features([1.5, 15.0]) == [0]


def test_overhead_model_recovers_per_layer_cost():
    n = np.arange(4, 20, dtype=float)
    composed = 10.0 * n
    measured = composed + 2.0 + 0.5 * n
    oh = fit_overhead(n, composed, measured)
    assert oh.kind in ("layers", "layers_sum")
    assert np.allclose(oh.apply(n, composed), measured, rtol=1e-6)


# ---- against a synthetic store ---------------------------------------------------------------
@pytest.fixture
def env(tmp_path, hwnas_cache):
    from transformers import LlamaConfig

    model_dir = tmp_path / "tiny"
    LlamaConfig(hidden_size=128, intermediate_size=512, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=8, vocab_size=1000,
                tie_word_embeddings=True).save_pretrained(model_dir)
    t = api.resolve_target("cpu-torch-fp32", str(model_dir))
    assert t.arch == TINY
    store = Store(hwnas_cache / "store.sqlite")
    yield t, store
    store.close()


def test_missing_profiling_data_names_the_command(env):
    t, store = env
    with pytest.raises(InputError, match=r"hwnas profile --hw cpu-torch-fp32 --model"):
        api.train(t, store)


def test_train_predict_and_holdout_accuracy(env):
    t, store = env
    fill_all(store, t.hw, n_holdout=20, n_train=8)
    out = api.train(t, store)
    assert out.n_train_subnets == 8
    r = api.report(t, store, n_holdout=20, efficiency=False)
    main = r.latency["xgboost-layers"]["primary"]
    assert r.n_holdout == 20
    assert main["within_10"] >= 0.95 and main["spearman"] >= 0.9
    assert main["mape"] < r.latency["lookup-nearest"]["primary"]["mape"] * 2
    spec = t.space.full()
    row = api.predict(t, [spec])[0]
    lo, hi = row.latency_interval_ms
    assert lo <= row.latency_ms <= hi and row.in_domain
    assert row.accuracy is None and "accuracy" not in row.to_dict()


def test_save_load_round_trip_is_identical(env):
    t, store = env
    fill_all(store, t.hw, n_holdout=5, n_train=6)
    out = api.train(t, store)
    from hwnas.predictors.holdout import holdout_specs, split_subnets
    from hwnas.predictors.train import train_latency
    data = api.profile_data(t, store)
    train_subnets, _ = split_subnets(t.space, data.subnets, 0)
    fresh = train_latency(t.hw.name, t.space, "fp32", t.primary, data, train_subnets)
    loaded = persist.load_latency(persist.latency_dir(t.hw.name, t.arch_key))
    specs = holdout_specs(t.space, 10)
    a, b = fresh.predict(specs), loaded.predict(specs)
    assert np.array_equal(a.primary, b.primary) and np.array_equal(a.low, b.low)
    assert loaded.wholenet is not None and fresh.wholenet is not None
    assert np.array_equal(fresh.wholenet.predict_subnets(specs).primary,
                          loaded.wholenet.predict_subnets(specs).primary)
    side = json.loads((persist.latency_dir(t.hw.name, t.arch_key) / "predictor.json").read_text())
    for field in ("schema_version", "hwnas_version", "feature_names", "hw_profile",
                  "fingerprint", "training_data_hash", "metrics"):
        assert field in side
    assert out.latency_dir is not None and out.to_dict()["latency_dir"]


def test_pickle_is_refused(env, tmp_path):
    t, store = env
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="pickle"):
        persist.load_latency(bad)
    # a pickle disguised under the member file's name is refused too
    fill_all(store, t.hw, n_holdout=0, n_train=0)
    api.train(t, store)
    folder = persist.latency_dir(t.hw.name, t.arch_key)
    (folder / "layers_m0.ubj").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(InputError, match="pickle"):
        persist.load_latency(folder)


def test_fingerprint_mismatch_warns_and_strict_refuses(env):
    t, store = env
    fill_all(store, t.hw, n_holdout=0, n_train=4)
    api.train(t, store)
    folder = persist.latency_dir(t.hw.name, t.arch_key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        persist.load_latency(folder, expected_fingerprint="another-machine")
    assert any(issubclass(w.category, FingerprintMismatchWarning) for w in caught)
    with pytest.raises(InputError, match="fingerprint"):
        persist.load_latency(folder, expected_fingerprint="another-machine", strict=True)
    persist.load_latency(folder, expected_fingerprint="synthetic-machine", strict=True)


def test_domain_flag_for_unprofiled_choice(env):
    t, store = env
    skip = t.space.width_choices[0]
    fill_layers(store, t.hw, skip_width=skip)
    api.train(t, store)
    inside = t.space.uniform(width=t.space.width_choices[-1])
    outside = t.space.uniform(width=skip)
    rows = api.predict(t, [inside, outside])
    assert rows[0].in_domain and not rows[1].in_domain
    assert str(skip) in rows[1].domain_reasons[0]


def test_accuracy_predictor_trains_saves_and_predicts(env):
    t, store = env
    from hwnas.supernet.models import fingerprint
    fill_all(store, t.hw, n_holdout=0, n_train=4)
    fill_evaluations(store, t.space, fingerprint(t.model), n=40)
    out = api.train(t, store)
    assert out.accuracy is not None and out.accuracy.n_subnets == 40
    row = api.predict(t, [t.space.full()])[0]
    assert row.accuracy is not None and 0.4 < row.accuracy < 0.7
    assert row.to_dict()["accuracy_tasks"] == ["arc_easy"]
    assert out.accuracy.dir is not None
    folder = Path(out.accuracy.dir)
    est, meta = persist.load_accuracy(folder)
    assert meta["tasks"] == ["arc_easy"]
    X = subnet_matrix(t.space, [t.space.full()])
    assert est.predict(X)[0] == pytest.approx(row.accuracy)
    with pytest.raises(InputError, match="fingerprint"):
        persist.load_accuracy(folder, "other")


# ---- CLI ----------------------------------------------------------------------------------
def _cli(argv, capsys, monkeypatch):
    import importlib.util

    import hwnas.cli
    # run with the command modules that exist in this tree (others may still be in progress)
    present = tuple(m for m in hwnas.cli.COMMAND_MODULES if importlib.util.find_spec(m))
    monkeypatch.setattr(hwnas.cli, "COMMAND_MODULES", present)
    rc = hwnas.cli.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_unknown_profile_and_model(env, capsys, monkeypatch):
    t, _ = env
    rc, _, err = _cli(["predict", "--hw", "cpu-torch-fp33", "--model", t.model, "--subnet",
                       t.space.full().to_json()], capsys, monkeypatch)
    assert rc == 2 and "unknown hardware profile 'cpu-torch-fp33'" in err
    assert "Did you mean 'cpu-torch-fp32'" in err
    rc, _, err = _cli(["predictors", "train", "--hw", "cpu-torch-fp32", "--model",
                       "no-such-model"], capsys, monkeypatch)
    assert rc == 2 and "no-such-model" in err and "Traceback" not in err


def test_cli_train_predict_report(env, capsys, tmp_path, monkeypatch):
    t, store = env
    fill_all(store, t.hw, n_holdout=12, n_train=6)
    rc, out, err = _cli(["predictors", "train", "--hw", "cpu-torch-fp32", "--model", t.model,
                         "--subnets", "0", "--json"], capsys, monkeypatch)
    assert rc == 0, err
    assert json.loads(out)["n_layer_samples"] > 0
    rc, out, err = _cli(["predict", "--hw", "cpu-torch-fp32", "--model", t.model, "--subnet",
                         t.space.uniform(drop=[3]).to_json(), "--json"], capsys, monkeypatch)
    assert rc == 0, err
    row = json.loads(out)
    assert row["latency_ms"] > 0 and len(row["latency_interval_ms"]) == 2
    rc, out, err = _cli(["predictors", "report", "--hw", "cpu-torch-fp32", "--model", t.model,
                         "--holdout", "12", "--no-roofline", "--out", str(tmp_path / "rep"),
                         "--json"], capsys, monkeypatch)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["n_holdout"] == 12 and "xgboost-layers" in rep["latency"]
    for f in ("report.md", "report.json", "scatter_primary.png", "sample_efficiency.png"):
        assert (tmp_path / "rep" / f).is_file()
    assert "Sample efficiency" in (tmp_path / "rep" / "report.md").read_text()
    rc, _, err = _cli(["predictors", "report", "--hw", "cpu-torch-fp32", "--model", t.model,
                       "--holdout", "12", "--no-roofline", "--no-efficiency", "--task", "piqa",
                       "--out", str(tmp_path / "rep2")], capsys, monkeypatch)
    assert rc == 2 and "no accuracy evaluations" in err and "piqa" in err  # named, not found


def test_cli_report_without_holdout_says_what_to_run(env, capsys, monkeypatch):
    t, store = env
    fill_layers(store, t.hw)
    rc, _, err = _cli(["predictors", "report", "--hw", "cpu-torch-fp32", "--model", t.model,
                       "--no-roofline"], capsys, monkeypatch)
    assert rc == 2 and "--measure" in err


def test_perplexity_tasks_only_when_named(env):
    from hwnas.evaluation.result import EvalResult
    from hwnas.predictors.data import load_accuracy_samples

    t, store = env
    full = t.space.full()
    fill_evaluations(store, t.space, "fp", n=6)
    r = EvalResult(task="heldout_ppl", metric="perplexity", score=20.0, stderr=0.1, n=50,
                   model="fp", subnet=full.key(), extra={"spec": full.to_dict()})
    store.put_evaluation("ppl-full", model="fp", subnet=full.key(), task="heldout_ppl",
                         score=20.0, record=r.to_dict())
    samples, tasks = load_accuracy_samples(store, "fp", full, "m")
    assert tasks == ["arc_easy"] and len(samples) == 6
    samples, tasks = load_accuracy_samples(store, "fp", full, "m", ["heldout_ppl"])
    assert samples[0].accuracy == pytest.approx(np.log(20.0))
    with pytest.raises(InputError, match="mix perplexity"):
        load_accuracy_samples(store, "fp", full, "m", ["heldout_ppl", "arc_easy"])


def test_report_warns_when_measurements_are_noisy(env):
    t, store = env
    fill_all(store, t.hw, n_holdout=8, n_train=4, noise=0.5)
    r = api.report(t, store, n_holdout=8, efficiency=False)
    assert any(n.startswith("WARNING") and "noisy" in n for n in r.notes)
    # no record was flagged busy: the warning does not blame other work on the machine
    noisy = next(n for n in r.notes if "noisy" in n)
    assert "runtime's own" in noisy and "was busy" not in noisy
    from hwnas.predictors.markdown import render
    assert "> WARNING" in render(r)
