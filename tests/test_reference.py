"""Whole subnets are timed beside a reference layer; predictors put their figures on the
layer profile's footing by it."""

from __future__ import annotations

import copy

import pytest
from conftest import fake_profile_yaml

from hwnas.hw_profiles import parse_profile
from hwnas.predictors.data import load_profile_data
from hwnas.profilers.footing import rescaled_ms
from hwnas.profilers import measure_subnet, profile_layers
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
    value, scale = rescaled_ms(rec, "median", reference)
    slow = copy.deepcopy(rec)
    slow["times_ms"] = [2 * t for t in rec["times_ms"]]
    slow["median_ms"] = 2 * rec["median_ms"]
    slow["reference"]["times_ms"] = [2 * t for t in rec["reference"]["times_ms"]]
    value2, scale2 = rescaled_ms(slow, "median", reference)
    assert value2 == pytest.approx(value) and scale2 == pytest.approx(scale / 2)
    assert any(value == pytest.approx(v) for v in before.values())

    off = load_profile_data(store, hw.name, sn.arch.key(), "tiny", rescale=False)
    assert off.speed_scales == ()


def test_a_record_without_reference_is_read_as_stored(setup):
    sn, hw, store = setup
    measure_subnet(hw, sn, sn.space.full(), store=store)
    rec = dict(store.measurements(kind="subnet")[0])
    rec["reference"] = {}
    value, scale = rescaled_ms(rec, "min", {})
    assert scale is None and value == min(rec["times_ms"])
