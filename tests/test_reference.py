"""Whole subnets are timed beside a reference layer; predictors put their figures on the
layer profile's footing by it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import fake_profile_yaml

from hwnas.hw_profiles import parse_profile
from hwnas.predictors.data import load_profile_data
from hwnas.profilers import measure_subnet, profile_layers
from hwnas.profilers.footing import Footing, rescaled_ms
from hwnas.store import Store


@pytest.fixture
def setup(tmp_path, tiny_model_dir):
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.load(str(tiny_model_dir))
    hw = parse_profile(fake_profile_yaml())
    store = Store(tmp_path / "s.sqlite")
    profile_layers(hw, sn, store)
    return sn, hw, store


def test_subnet_records_carry_the_reference_layer(setup):
    sn, hw, store = setup
    measure_subnet(hw, sn, sn.space.full(), store=store)
    rec = store.measurements(kind="subnet")[0]
    ref = rec["reference"]
    assert ref["width"] == max(sn.space.width_choices)
    assert ref["kv_heads"] == max(sn.space.kv_choices) and len(ref["times_ms"]) >= 3
    assert rec["model_reference"] == {}  # the whole model is timed beside only on request
    # the fake backend is deterministic: the reference beside the subnet equals the profile's
    layer = next(r for r in store.measurements(kind="layer")
                 if (r["spec"]["width"], r["spec"]["kv_heads"], r["spec"]["phase"],
                     r["spec"]["tokens"], r["spec"]["context"]) ==
                 (ref["width"], ref["kv_heads"], rec["spec"]["phase"], rec["spec"]["tokens"],
                  rec["spec"]["context"]))
    assert min(ref["times_ms"]) == pytest.approx(min(layer["times_ms"]), rel=0.05)


def test_predictor_data_rescales_a_subnet_measured_on_a_slower_machine(setup):
    sn, hw, store = setup
    measure_subnet(hw, sn, sn.space.full(), store=store)
    data = load_profile_data(store, hw.name, sn.arch.key(), "tiny")
    assert len(data.speed_scales) == len(data.subnets[0].per_workload)
    assert all(abs(s - 1) < 0.05 for s in data.speed_scales)
    before = data.subnets[0].per_workload

    # the same record as if the machine had run at half speed when the subnet was measured
    rec = copy.deepcopy(store.measurements(kind="subnet")[0])
    reference = {(s.workload.name, s.width, s.kv_heads): s.ms for s in data.layers}
    value, scale = rescaled_ms(rec, "median", Footing(reference))
    slow = copy.deepcopy(rec)
    slow["times_ms"] = [2 * t for t in rec["times_ms"]]
    slow["median_ms"] = 2 * rec["median_ms"]
    slow["reference"]["times_ms"] = [2 * t for t in rec["reference"]["times_ms"]]
    value2, scale2 = rescaled_ms(slow, "median", Footing(reference))
    assert value2 == pytest.approx(value) and scale2 == pytest.approx(scale / 2)
    assert any(value == pytest.approx(v) for v in before.values())

    off = load_profile_data(store, hw.name, sn.arch.key(), "tiny", rescale=False)
    assert off.speed_scales == ()


def test_a_record_without_reference_is_read_as_stored(setup):
    sn, hw, store = setup
    measure_subnet(hw, sn, sn.space.full(), store=store)
    rec = dict(store.measurements(kind="subnet")[0])
    rec["reference"] = {}
    value, scale = rescaled_ms(rec, "min", Footing())
    assert scale is None and value == min(rec["times_ms"])


def test_measure_gives_the_figure_at_the_profiles_speed_when_the_store_has_the_profile(setup):
    sn, hw, store = setup
    lat = measure_subnet(hw, sn, sn.space.full(), store=store)
    assert set(lat.speed) == set(lat.per_workload) == set(lat.profile_per_workload)
    # the fake machine runs as fast as when it was profiled
    assert all(abs(s - 1) < 0.1 for s in lat.speed.values())
    assert lat.profile_latency_ms == pytest.approx(lat.latency_ms, rel=0.1)
    assert lat.comparable_ms == lat.profile_latency_ms
    d = lat.to_dict()
    assert d["profile_latency_ms"] == lat.profile_latency_ms and d["speed"] == lat.speed


def test_measure_without_a_profile_gives_the_figure_as_timed(tmp_path, tiny_model_dir):
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.load(str(tiny_model_dir))
    hw = parse_profile(fake_profile_yaml())
    lat = measure_subnet(hw, sn, sn.space.full(), store=Store(tmp_path / "empty.sqlite"))
    assert lat.profile_latency_ms is None and lat.speed == {}
    assert lat.comparable_ms == lat.latency_ms


def test_cli_measure_no_store_still_reads_the_profile_for_its_footing(tiny_model_dir,
                                                                     fake_profile, capsys):
    import json

    from hwnas.cli import main

    fake_profile("fake-cpu")
    full = json.dumps({"layers": [0, 1, 2, 3], "intermediate_size": [128] * 4,
                       "kv_heads": [2] * 4})
    args = ["measure", "--hw", "fake-cpu", "--model", str(tiny_model_dir), "--subnet", full,
            "--no-store"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile_latency_ms"] is None
    assert main(args) == 0
    assert "no layer profile of 'fake-cpu'" in capsys.readouterr().err
    assert main(["profile", "--hw", "fake-cpu", "--model", str(tiny_model_dir)]) == 0
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["profile_latency_ms"] > 0 and set(d["speed"]) == set(d["per_workload"])
    assert main(args) == 0
    out = capsys.readouterr()
    import re

    assert re.search(r"\(\d+\.\d\dx\)", out.out)  # each figure at the profile's speed, with
    # the machine's speed beside it
    assert "compare it with `hwnas predict`" in " ".join(out.err.split())
    assert main(["measure", "--hw", "fake-cpu", "--model", str(tiny_model_dir), "--subnet",
                 full, "--json"]) == 0  # with the store: the new record is kept, nothing else
    capsys.readouterr()


def test_a_profile_that_reads_records_as_timed_gets_figures_as_timed_everywhere(
        setup, tiny_model_dir, fake_profile, capsys):
    """`timer.rescale_subnets: false`: predictors, `measure` and the search's footing all
    read whole subnets as timed, even with a layer profile in the store."""
    import json

    from hwnas.cli import main
    from hwnas.profilers.footing import profile_reference

    sn, hw, store = setup
    assert profile_reference(store, hw, sn.arch.key())  # the default reads the footing
    as_timed = hw.model_copy(update={"timer": hw.timer.model_copy(
        update={"rescale_subnets": False})})
    assert profile_reference(store, as_timed, sn.arch.key()) == Footing()
    lat = measure_subnet(as_timed, sn, sn.space.full(), store=store)
    assert lat.profile_latency_ms is None and lat.speed == {}
    assert lat.comparable_ms == lat.latency_ms
    data = load_profile_data(store, hw.name, sn.arch.key(), "tiny",
                             rescale=as_timed.timer.rescale_subnets)
    assert data.speed_scales == ()

    fake_profile("fake-as-timed", timer={"rescale_subnets": False})
    assert main(["profile", "--hw", "fake-as-timed", "--model", str(tiny_model_dir)]) == 0
    capsys.readouterr()
    args = ["measure", "--hw", "fake-as-timed", "--model", str(tiny_model_dir), "--subnet",
            sn.space.full().to_json(), "--no-store"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile_latency_ms"] is None
    assert main(args) == 0
    assert "reads every figure as timed" in " ".join(capsys.readouterr().err.split())


def test_a_profile_that_reads_subnets_against_the_whole_model_times_it_beside_them(
        tmp_path, tiny_model_dir):
    """`timer.subnet_reference: model`: every subnet group times the full model beside it;
    a record's figure on the footing is its ratio to the full model beside it times the full
    model's figure, which the first records fix."""
    from hwnas.profilers.footing import MODEL_FIGURE_RECORDS, model_figures, profile_reference
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.load(str(tiny_model_dir))
    hw = parse_profile(fake_profile_yaml(timer={"subnet_reference": "model"}))
    store = Store(tmp_path / "s.sqlite")
    profile_layers(hw, sn, store)
    spec = sn.space.sample(np.random.default_rng(0))
    assert spec != sn.space.full()
    lat = measure_subnet(hw, sn, spec, store=store)
    recs = store.measurements(kind="subnet")
    assert recs and all(len(r["model_reference"]["times_ms"]) >= 3 for r in recs)
    assert all(len(r["model_reference"]["stamps"]) == len(r["model_reference"]["times_ms"])
               for r in recs)
    footing = profile_reference(store, hw, sn.arch.key())
    assert set(footing.model) == set(lat.per_workload)
    # the fake machine runs as when it was profiled: the figure on the footing is as timed
    assert lat.profile_latency_ms == pytest.approx(lat.latency_ms, rel=0.1)

    # a machine that ran twice as slow for the subnet and the full model beside it, while the
    # reference layer did not slow down: read against the whole model, the figure holds
    rec = copy.deepcopy(recs[0])
    value, scale = rescaled_ms(rec, "median", footing)
    slow = copy.deepcopy(rec)
    slow["times_ms"] = [2 * t for t in rec["times_ms"]]
    slow["median_ms"] = 2 * rec["median_ms"]
    slow["model_reference"]["times_ms"] = [2 * t for t in rec["model_reference"]["times_ms"]]
    value2, scale2 = rescaled_ms(slow, "median", footing)
    assert value2 == pytest.approx(value) and scale2 == pytest.approx(scale / 2)
    # read against the layer alone (a profile that does not read the model) it would not
    assert rescaled_ms(slow, "median", Footing(footing.layers))[0] == pytest.approx(
        2 * rescaled_ms(rec, "median", Footing(footing.layers))[0], rel=0.01)

    # the first records fix the full model's figure: a later, slower one does not move it
    later = copy.deepcopy(rec)
    later["measured_at"] = rec["measured_at"] + 1
    later["model_reference"]["times_ms"] = [3 * t for t in rec["model_reference"]["times_ms"]]
    first = [copy.deepcopy(rec) for _ in range(MODEL_FIGURE_RECORDS)]
    assert model_figures([*first, later], footing.layers) == model_figures(first,
                                                                           footing.layers)
    assert model_figures([later], footing.layers) != model_figures(first, footing.layers)

    data = load_profile_data(store, hw.name, sn.arch.key(), "tiny",
                             subnet_reference="model")
    assert data.speed_scales and all(abs(s - 1) < 0.1 for s in data.speed_scales)
