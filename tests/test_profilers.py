"""Profilers: the adaptive timer, the programs (equal to transformers' own forward), and
profile runs with the deterministic fake backend (resume, budget, OOM, crashes)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from conftest import fake_profile_yaml
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from hwnas.errors import InputError
from hwnas.hw_profiles import parse_profile
from hwnas.hw_profiles.schema import TimerSettings
from hwnas.profilers import measure_subnet, profile_layers
from hwnas.profilers.backends import BACKENDS, backend_for
from hwnas.profilers.backends.fake import FakeBackend, FakeSettings
from hwnas.profilers.jobs import plan
from hwnas.profilers.measurement import Measurement, TimingSpec
from hwnas.profilers.programs import build_layer, layer_program, subnet_program
from hwnas.profilers.shape import ModelShape
from hwnas.profilers.timer import measure_group, rel_iqr, time_interleaved
from hwnas.store import Store

FAKE = fake_profile_yaml()


def tiny_config(**kw) -> LlamaConfig:
    base = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=3, vocab_size=256,
                max_position_embeddings=256)
    base.update(kw)
    return LlamaConfig(**base)


@pytest.fixture
def shape() -> ModelShape:
    return ModelShape.from_config(tiny_config(), name="tiny")


@pytest.fixture
def fake_hw():
    return parse_profile(FAKE)


def _store(tmp_path, name="s.sqlite") -> Store:
    return Store(tmp_path / name)


# ---- timer ----------------------------------------------------------------------------------
class Seq:
    """A runnable returning given times, recording the global call order."""

    log: list[str] = []

    def __init__(self, name: str, times) -> None:
        self.name, self.times = name, itertools.cycle(times)

    def time_once(self) -> float:
        Seq.log.append(self.name)
        return float(next(self.times))


def test_timer_converges_and_interleaves():
    Seq.log = []
    s = TimerSettings(warmup_runs=1, min_runs=5, block_s=0.0, target_rel_iqr=0.05)
    out = time_interleaved([Seq("a", [1.0]), Seq("b", [2.0, 2.02])], s)
    assert all(t.complete for t in out)
    assert len(out[0].times_ms) == 5
    assert np.median(out[1].times_ms) == pytest.approx(2.01, abs=0.011)
    timed = Seq.log[2:]  # after one warm-up call each, calls alternate
    assert timed[:6] == ["a", "b"] * 3


def test_timer_blocks_size_to_block_s():
    s = TimerSettings(warmup_runs=1, min_runs=3, block_s=0.01, target_rel_iqr=0.5)
    out = time_interleaved([Seq("a", [1.0])], s)  # 1 ms calls: blocks of 10
    assert len(out[0].times_ms) == 10


def test_noisy_results_are_remeasured_and_kept_flagged():
    s = TimerSettings(warmup_runs=0, min_runs=4, max_runs=8, target_rel_iqr=0.01,
                      noise_threshold=0.1, block_s=0.0, max_remeasure=2)
    got = {}
    out = measure_group([Seq("steady", [1.0]), Seq("noisy", [1.0, 3.0, 1.0, 5.0])], s,
                        on_result=lambda i, t: got.setdefault(i, t))
    assert set(got) == {0, 1}  # the noisy one is reported too, never dropped
    assert out[0].attempts == 1 and out[1].attempts == 3
    assert out[1].rel_iqr > 0.1


def test_timer_stops_at_deadline_without_results():
    class Slow:
        def time_once(self) -> float:
            time.sleep(0.01)
            return 10.0

    s = TimerSettings(warmup_runs=1, min_runs=1000, max_runs=100000, max_time_s=100,
                      block_s=0.0)
    t0 = time.monotonic()
    out = time_interleaved([Slow(), Slow()], s, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - t0 < 0.5
    assert not any(t.complete for t in out)


def test_soft_deadline_finishes_with_what_it_has():
    s = TimerSettings(warmup_runs=0, min_runs=1000, max_runs=100000, max_time_s=100,
                      block_s=0.0, target_rel_iqr=0.001)
    out = time_interleaved([Seq("x", [1.0, 2.0])], s, soft_deadline=time.monotonic())
    assert out[0].complete and len(out[0].times_ms) == 3


def test_rel_iqr():
    assert rel_iqr([1.0]) == float("inf")
    assert rel_iqr([2.0, 2.0, 2.0]) == 0.0


# ---- programs -------------------------------------------------------------------------------
def test_subnet_program_equals_transformers_forward():
    cfg = tiny_config()
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    arch = ModelShape.from_config(cfg).arch
    spec = TimingSpec("subnet", "prefill", 1, 9, 0, "fp32", "torch", "cpu", 1, arch.key())
    prog = subnet_program(model, arch, (2, 2, 2), spec)
    ids = prog.inputs[0]
    with torch.no_grad():
        assert torch.allclose(prog.module(*prog.inputs), model(ids).logits[:, -1:], atol=1e-5)
        cache = DynamicCache(config=cfg)
        model(ids[:, :8], cache=cache)
        past = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        step = prog.module(ids[:, 8:], torch.tensor([[8]]), *past)
    assert torch.allclose(step, model(ids).logits[:, -1:], atol=1e-5)


def test_layer_program_decode_shapes(shape):
    layer = build_layer(shape.arch, shape.layer_config(64, 1))
    spec = TimingSpec("layer", "decode", 2, 1, 24, "fp32", "torch", "cpu", 1,
                      shape.arch.key(), width=64, kv_heads=1)
    prog = layer_program(shape.arch, shape.layer_config(64, 1), layer, spec)
    assert prog.input_names == ("hidden", "cos", "sin", "past_k", "past_v")
    assert prog.inputs[3].shape == (2, 1, 24, shape.arch.head_dim)
    with torch.no_grad():
        assert prog.module(*prog.inputs).shape == (2, 1, 64)
    assert layer.layer.mlp.gate_proj.out_features == 64
    assert layer.layer.self_attn.k_proj.out_features == shape.arch.head_dim


def test_layer_chain_runs_its_copies_in_sequence(shape):
    cfg = shape.layer_config(64, 1)
    spec = TimingSpec("layer", "decode", 1, 1, 12, "fp32", "torch", "cpu", 1,
                      shape.arch.key(), width=64, kv_heads=1)
    layers = [build_layer(shape.arch, cfg, seed=i) for i in range(3)]
    prog = layer_program(shape.arch, cfg, layers, spec)
    assert prog.units == 3
    assert prog.input_names[3:] == ("past_k0", "past_v0", "past_k1", "past_v1",
                                    "past_k2", "past_v2")
    hidden, cos, sin, *past = prog.inputs
    assert not torch.equal(past[0], past[2])  # each copy reads its own past, as in the model
    with torch.no_grad():
        h = hidden
        for i, layer in enumerate(layers):
            h = layer(h, cos, sin, past[2 * i], past[2 * i + 1])
        assert torch.allclose(prog.module(*prog.inputs), h)


def test_chain_length_exceeds_the_cache():
    from hwnas.profilers.programs import MAX_CHAIN, chain_length

    assert chain_length(14 * 2**20, 32 * 2**20, 2.0) == 5  # 5 x 14 MiB >= 64 MiB
    assert chain_length(800 * 2**20, 32 * 2**20, 2.0) == 1  # a 7B layer is cold by itself
    assert chain_length(10, 32 * 2**20, 2.0) == MAX_CHAIN
    assert chain_length(14 * 2**20, 32 * 2**20, 0.0) == 1  # in_context 0: alone


def test_profile_times_layers_in_context(tmp_path, shape, fake_hw):
    """With a cache to exceed, layer records are timed as chains and stored per copy."""
    from hwnas.profilers.programs import chain_length

    layer = build_layer(shape.arch, shape.layer_config(64, 1))
    nbytes = 4 * sum(p.numel() for p in layer.parameters())
    cache = 10 * nbytes
    store = _store(tmp_path)
    profile_layers(fake_hw, shape, store, backend=FakeBackend(FakeSettings(cache_bytes=cache,
                                                                           noise=0.0)))
    alone = _store(tmp_path, "alone.sqlite")
    profile_layers(fake_hw, shape, alone, backend=FakeBackend(FakeSettings(noise=0.0)))
    key = ("decode", 64, 1)

    def record(st):
        return next(Measurement.from_dict(r) for r in st.measurements(kind="layer")
                    if (r["spec"]["phase"], r["spec"]["width"], r["spec"]["kv_heads"]) == key)
    chained, single = record(store), record(alone)
    k = chain_length(nbytes, cache, fake_hw.timer.in_context)
    assert k > 1 and chained.units == k and single.units == 1
    # per copy: one layer's cost with the fake's fixed per-call overhead shared by the k
    # copies (and the hidden input read once, hence not exact)
    overhead = FakeSettings().overhead_ms
    assert chained.median_ms == pytest.approx(single.median_ms - overhead + overhead / k,
                                              rel=0.01)
    assert all(Measurement.from_dict(r).units == 1 for r in store.measurements(kind="embed"))


# ---- plan and profile runs with the fake backend ------------------------------------------
def test_plan_primary_first_and_every_variant(shape, fake_hw):
    groups = plan(fake_hw, shape.arch, shape.space)
    assert [g[0].workload.name for g in groups][:2] == ["prefill@16", "decode@24"]
    n_var = len(shape.space.width_choices) * len(shape.space.kv_choices)
    assert all(len(g) == n_var + 2 for g in groups) and len(groups) == 4


def test_profile_measures_everything_once(tmp_path, shape, fake_hw):
    store = _store(tmp_path)
    calls = []
    s = profile_layers(fake_hw, shape, store, progress=lambda ev: calls.append((ev.done, ev.total)))
    n_var = len(shape.space.width_choices) * len(shape.space.kv_choices)
    assert s.complete and s.measured == s.total == 4 * (n_var + 2)
    assert calls[-1] == (s.total, s.total)
    rows = store.measurements(hw="fake-cpu", model=shape.arch.key())
    assert len(rows) == s.total
    m = Measurement.from_dict(store.measurements(kind="layer")[0])
    assert m.fingerprint["cpu_model"] and len(m.times_ms) >= 3
    choices = {(r["spec"]["width"], r["spec"]["kv_heads"], r["spec"]["phase"],
                r["spec"]["tokens"], r["spec"]["context"])
               for r in store.measurements(kind="layer")}
    assert len(choices) == 4 * n_var
    again = profile_layers(fake_hw, shape, store)
    assert again.measured == 0 and again.already == s.total and again.complete
    assert len(store.measurements()) == s.total


def test_fake_latencies_are_deterministic_and_monotone(tmp_path, shape, fake_hw):
    a, b = _store(tmp_path, "a.sqlite"), _store(tmp_path, "b.sqlite")
    profile_layers(fake_hw, shape, a)
    profile_layers(fake_hw, shape, b)
    med = {r["spec"]["width"]: r["median_ms"] for r in a.measurements(kind="layer")
           if r["spec"]["kv_heads"] == 2 and r["spec"]["tokens"] == 32}
    assert [med[w] for w in sorted(med)] == sorted(med.values())
    pa = {r["spec"]["width"]: r["times_ms"] for r in a.measurements(kind="layer")}
    pb = {r["spec"]["width"]: r["times_ms"] for r in b.measurements(kind="layer")}
    assert pa == pb


def test_oom_is_recorded_and_not_retried(tmp_path, shape, fake_hw):
    store = _store(tmp_path)
    backend = FakeBackend(FakeSettings(oom_above_tokens=30))
    s = profile_layers(fake_hw, shape, store, backend=backend)
    n = len(shape.space.width_choices) * len(shape.space.kv_choices) + 2
    assert len(s.failed) == 2 * n and not s.errors and s.complete  # prefill@32, decode@64
    failed = store.measurements(kind="failed")
    assert len(failed) == 2 * n and failed[0]["error"] == "oom"
    again = profile_layers(fake_hw, shape, store, backend=FakeBackend(FakeSettings()))
    assert again.measured == 0 and not again.failed


def test_crash_is_reported_and_retried(tmp_path, shape, fake_hw):
    store = _store(tmp_path)
    s = profile_layers(fake_hw, shape, store,
                       backend=FakeBackend(FakeSettings(crash_on=("decode@64",))))
    n = len(shape.space.width_choices) * len(shape.space.kv_choices) + 2
    assert len(s.errors) == n and not s.complete and "injected crash" in s.errors[0]
    again = profile_layers(fake_hw, shape, store, backend=FakeBackend())
    assert again.measured == n and again.complete


def test_noisy_target_is_flagged_not_dropped(tmp_path, shape, fake_hw):
    store = _store(tmp_path)
    s = profile_layers(fake_hw, shape, store,
                       backend=FakeBackend(FakeSettings(noise=0.2, noisy_targets=("head",))))
    heads = store.measurements(kind="head")
    assert len(heads) == 4 and all(h["noisy"] for h in heads)
    assert s.noisy >= 4 and all(h["remeasured"] >= 1 for h in heads)


def test_budget_stops_in_time_and_rerun_completes(tmp_path, shape, fake_hw):
    store = _store(tmp_path)
    slow = FakeBackend(FakeSettings(sleep=True, overhead_ms=2.0))
    t0 = time.monotonic()
    s = profile_layers(fake_hw, shape, store, budget_s=0.6, backend=slow)
    assert time.monotonic() - t0 < 0.6 + 0.5
    assert s.measured + s.missing == s.total and s.missing > 0 and not s.complete
    rest = profile_layers(fake_hw, shape, store, backend=FakeBackend())
    assert rest.measured == s.missing and rest.complete
    assert len(store.measurements()) == s.total


def test_pinned_fingerprint_mismatch_needs_force(tmp_path, shape):
    hw = parse_profile(fake_profile_yaml(fingerprint={"cpu_model": "Quantum CPU 9000"}))
    with pytest.raises(InputError, match="pinned to another machine"):
        profile_layers(hw, shape, _store(tmp_path))
    s = profile_layers(hw, shape, _store(tmp_path), force=True)
    assert s.complete and "Quantum CPU 9000" in s.fingerprint_mismatch[0]


def test_impossible_workload_for_the_model(tmp_path, fake_hw):
    short = ModelShape.from_config(tiny_config(max_position_embeddings=32))
    with pytest.raises(InputError, match="decode@64 needs 65 positions.*max_position"):
        profile_layers(fake_hw, short, _store(tmp_path))


def test_llama2_7b_shape_from_config_alone(tmp_path, fake_hw):
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                      num_key_value_heads=32, num_hidden_layers=32, vocab_size=32000,
                      max_position_embeddings=4096)
    shape = ModelShape.from_config(cfg, name="llama2-7b-shape")
    hw = parse_profile(fake_profile_yaml(prefill=(16,), decode=(24,)))
    s = profile_layers(hw, shape, _store(tmp_path))
    assert s.complete and s.measured == 2 * (5 * 32 + 2)  # 5 widths x 32 KV groups
    widths = {r["spec"]["width"] for r in _store(tmp_path).measurements(kind="layer")}
    assert widths == set(shape.space.width_choices) and 11008 in widths


def test_backend_registry_and_missing_library(fake_hw, monkeypatch):
    assert {"torch", "cuda", "onnxruntime", "openvino", "ipex", "fake"} <= set(BACKENDS)
    with pytest.raises(InputError, match="unknown backend 'tensorrt'"):
        BACKENDS.get("tensorrt")
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "intel_extension_for_pytorch" else
                        real(n, *a))
    ipex_hw = parse_profile(fake_profile_yaml(backend="ipex"))
    with pytest.raises(InputError, match="intel-extension-for-pytorch.*not installed.*"
                                         "torch==2.8.0"):
        backend_for(ipex_hw)


def test_missing_backend_library_is_clear(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)
    hw = parse_profile(fake_profile_yaml(backend="onnxruntime"))
    with pytest.raises(InputError, match="'onnxruntime' library.*pip install onnxruntime"):
        backend_for(hw)
    hw = parse_profile(fake_profile_yaml(backend="openvino"))
    with pytest.raises(InputError, match="'openvino' library.*pip install openvino"):
        backend_for(hw)


def test_measure_subnet_with_fake_backend(tmp_path, fake_hw):
    from hwnas.supernet.supernet import Supernet

    torch.manual_seed(0)
    sn = Supernet.from_model(LlamaForCausalLM(tiny_config()).eval(), name="tiny")
    spec = sn.space.uniform(width=64, kv_heads=1, drop=[1])
    store = _store(tmp_path)
    r = measure_subnet(fake_hw, sn, spec, store=store)
    assert set(r.per_workload) == {"prefill@16", "prefill@32", "decode@24", "decode@64"}
    assert r.latency_ms == pytest.approx(r.per_workload["prefill@16"]
                                         + 16 * r.per_workload["decode@24"])
    assert len(store.measurements(kind="subnet")) == 4
    again = measure_subnet(fake_hw, sn, spec, store=store)  # reused, not re-measured
    assert again.latency_ms == r.latency_ms
    prim = measure_subnet(fake_hw, sn, spec, workloads_="primary")
    assert set(prim.per_workload) == {"prefill@16", "decode@24"}
    d = r.to_dict()
    assert d["latency_ms"] == r.latency_ms and "prefill@16" in d["per_workload"]


def test_references_are_prepared_once_per_process_and_bounded(fake_hw, monkeypatch):
    """Each `measure_subnet` call makes its own backend; a real backend's reference chains
    must still be prepared once (an ONNX export is slow), and the process must not keep a
    chain per call (it did: the demo peaked at 7.4 GB)."""
    from hwnas.profilers import subnet as subnet_mod
    from hwnas.profilers.backends.torch_cpu import TorchCPU
    from hwnas.supernet.supernet import Supernet

    assert subnet_mod.backend_identity(TorchCPU()) == subnet_mod.backend_identity(TorchCPU())
    monkeypatch.setattr(subnet_mod, "_REFERENCES", subnet_mod.OrderedDict())
    torch.manual_seed(0)
    sn = Supernet.from_model(LlamaForCausalLM(tiny_config()).eval(), name="tiny")
    specs = [sn.space.uniform(width=64, kv_heads=1, drop=[1]), sn.space.full()]
    backend = FakeBackend()
    measure_subnet(fake_hw, sn, specs[0], workloads_="primary", backend=backend)
    assert backend.prepares == 4  # its two workloads and a reference for each
    measure_subnet(fake_hw, sn, specs[1], workloads_="primary", backend=backend)
    assert backend.prepares == 6  # its two workloads only: the references are reused
    assert len(subnet_mod._REFERENCES) == 2  # one per primary workload
    monkeypatch.setattr(subnet_mod, "REFERENCES_KEPT", 3)
    measure_subnet(fake_hw, sn, specs[0], workloads_="all", backend=backend)
    assert len(subnet_mod._REFERENCES) == 4  # all four workloads at once: none dropped early
    other = FakeBackend()  # a fake instance keeps its own (its noise is seeded per instance)
    measure_subnet(fake_hw, sn, specs[0], workloads_="primary", backend=other)
    assert other.prepares == 4
    assert len(subnet_mod._REFERENCES) == 3  # bounded, the least recently used gone


def test_measure_subnets_times_several_in_one_group(tmp_path, fake_hw, monkeypatch):
    from hwnas.profilers import subnet as subnet_mod
    from hwnas.supernet.supernet import Supernet

    torch.manual_seed(0)
    sn = Supernet.from_model(LlamaForCausalLM(tiny_config()).eval(), name="tiny")
    specs = [sn.space.full(), sn.space.uniform(width=64, kv_heads=1, drop=[1])]
    groups: list[int] = []
    real_group = subnet_mod.measure_group

    def spy(runnables, *a, **k):
        groups.append(len(runnables))
        return real_group(runnables, *a, **k)

    monkeypatch.setattr(subnet_mod, "measure_group", spy)
    both = subnet_mod.measure_subnets(fake_hw, sn, specs, workloads_="primary")
    assert groups == [6]  # 2 subnets x 2 primary workloads + a reference layer per workload
    alone = [measure_subnet(fake_hw, sn, s, workloads_="primary") for s in specs]
    assert [b.subnet_key for b in both] == [s.key() for s in specs]
    assert [b.latency_ms for b in both] == pytest.approx([x.latency_ms for x in alone], rel=0.05)
    assert both[0].latency_ms > both[1].latency_ms  # the fake backend scales with FLOPs


def test_profile_statistic_decides_what_a_subnet_latency_stands_for(tmp_path):
    from hwnas.profilers.subnet import m_name
    from hwnas.supernet.supernet import Supernet

    torch.manual_seed(0)
    sn = Supernet.from_model(LlamaForCausalLM(tiny_config()).eval(), name="tiny")
    spec = sn.space.uniform(width=64, kv_heads=1)
    store = _store(tmp_path)
    median_hw = parse_profile(FAKE)
    min_hw = parse_profile(fake_profile_yaml(timer={"statistic": "min"}))
    assert median_hw.timer.statistic == "median" and min_hw.timer.statistic == "min"
    med = measure_subnet(median_hw, sn, spec, store=store, workloads_="primary")
    low = measure_subnet(min_hw, sn, spec, store=store, workloads_="primary")  # same records
    for m in med.measurements:
        name = m_name(m)
        assert med.per_workload[name] == m.median_ms
        assert low.per_workload[name] == min(m.times_ms) < m.median_ms
    with pytest.raises(InputError, match="statistic"):
        parse_profile(fake_profile_yaml(timer={"statistic": "mean"}))


def test_timing_lock_is_reentrant_and_excludes_other_processes(tmp_path, monkeypatch):
    import fcntl
    import subprocess
    import sys

    from hwnas.profilers.lock import timing_lock

    path = tmp_path / "timing.lock"
    probe = [sys.executable, "-c", "import fcntl,sys; f=open(sys.argv[1],'a'); "
             "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(path)]
    monkeypatch.setenv("HWNAS_TIMING_LOCK", str(path))
    with timing_lock():  # from the environment
        with timing_lock(path):  # the same file again in this process: no self-deadlock
            assert subprocess.run(probe, capture_output=True).returncode != 0  # held
        assert subprocess.run(probe, capture_output=True).returncode != 0  # still held
    assert subprocess.run(probe, capture_output=True).returncode == 0  # released
    monkeypatch.delenv("HWNAS_TIMING_LOCK")
    with timing_lock():  # no file: nothing held
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_each_group_prepares_the_fixed_parts_and_the_reference_first(shape, fake_hw):
    for g in plan(fake_hw, shape.arch, shape.space):
        assert [j.kind for j in g[:2]] == ["embed", "head"]
        assert (g[2].spec.width, g[2].spec.kv_heads) == (max(shape.space.width_choices),
                                                         max(shape.space.kv_choices))
