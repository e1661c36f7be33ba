"""Synthetic store records for the predictor tests, in the exact layout the profilers and the
evaluation write: kind "layer" / "embed" / "head" / "subnet", hw column = profile name, model
column = arch key, payload = `Measurement.to_dict()`; evaluations as `EvalResult.to_dict()`
with the spec JSON in `extra["spec"]`.

The ground truth is a known function (fixed overhead + FLOPs / peak + bytes / bandwidth, and a
per-layer composition overhead), with multiplicative noise, so tests can check that the
predictors recover it.
"""

from __future__ import annotations

import numpy as np

from hwnas.evaluation.result import EvalResult
from hwnas.hw_profiles.workload import Workload
from hwnas.predictors import holdout as ho
from hwnas.profilers.measurement import Measurement, TimingSpec
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import layer_cost

TINY = ArchInfo(family="llama", num_layers=8, hidden_size=128, intermediate_size=512,
                num_q_heads=4, num_kv_heads=2, head_dim=32, vocab_size=1000,
                tie_embeddings=True)
FP = {"key": "synthetic-machine", "cpu_model": "synthetic"}


def workloads(hw) -> list[Workload]:
    out = [Workload("prefill", n, 0, hw.batch) for n in hw.workloads.prefill]
    return out + [Workload("decode", 1, d.context, hw.batch) for d in hw.workloads.decode]


def true_layer_ms(arch: ArchInfo, w: int, k: int, wl: Workload) -> float:
    c = layer_cost(arch, w, k, wl.tokens, wl.context, wl.batch)
    base = 0.30 if wl.phase == "prefill" else 0.15
    return base + c.flops / 20e9 + c.bytes / 8e9


def true_fixed_ms(arch: ArchInfo, wl: Workload) -> tuple[float, float]:
    return 0.05, 0.1 + 2.0 * wl.tokens * arch.vocab_size * arch.hidden_size / 20e9


def true_subnet_ms(arch: ArchInfo, spec: SubnetSpec, wl: Workload) -> float:
    layers = sum(true_layer_ms(arch, w, k, wl)
                 for w, k in zip(spec.intermediate_size, spec.kv_heads, strict=True))
    return layers + sum(true_fixed_ms(arch, wl)) + 0.4 + 0.03 * spec.num_layers


def _put(store, hw, arch, target, wl, ms, rng, noise, **extra) -> None:
    spec = TimingSpec(target=target, phase=wl.phase, batch=wl.batch, tokens=wl.tokens,
                      context=wl.context, dtype=hw.dtype, backend=hw.backend, device=hw.device,
                      threads=hw.threads, arch=arch.key(), **extra)
    times = tuple(float(ms * f) for f in np.exp(rng.normal(0, noise, 7)))
    m = Measurement(spec, times, fingerprint=FP)
    store.put_measurement(spec.key(FP["key"]), hw=hw.name, model=arch.key(), kind=target,
                          median_ms=m.median_ms, noisy=m.noisy, record=m.to_dict())


def fill_layers(store, hw, arch: ArchInfo = TINY, noise: float = 0.02, seed: int = 0,
                skip_width: int | None = None) -> SearchSpace:
    rng = np.random.default_rng(seed)
    space = SearchSpace.default(arch)
    for wl in workloads(hw):
        for w in space.width_choices:
            if w == skip_width:
                continue
            for k in space.kv_choices:
                _put(store, hw, arch, "layer", wl, true_layer_ms(arch, w, k, wl), rng, noise,
                     width=w, kv_heads=k)
        emb, head = true_fixed_ms(arch, wl)
        _put(store, hw, arch, "embed", wl, emb, rng, noise)
        _put(store, hw, arch, "head", wl, head, rng, noise)
    return space


def fill_subnets(store, hw, specs: list[SubnetSpec], arch: ArchInfo = TINY,
                 noise: float = 0.01, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    p = hw.primary
    for wl in (Workload("prefill", p.prefill_tokens, 0, hw.batch),
               Workload("decode", 1, p.decode_context, hw.batch)):
        for s in specs:
            _put(store, hw, arch, "subnet", wl, true_subnet_ms(arch, s, wl), rng, noise,
                 subnet=s.to_json())


def fill_all(store, hw, n_holdout: int = 20, n_train: int = 8, **kw) -> SearchSpace:
    space = fill_layers(store, hw, **kw)
    fill_subnets(store, hw, ho.holdout_specs(space, n_holdout) + ho.train_subnet_specs(space,
                                                                                        n_train))
    return space


def true_accuracy(space: SearchSpace, spec: SubnetSpec) -> float:
    frac_layers = spec.num_layers / space.arch.num_layers
    frac_w = float(np.mean(spec.intermediate_size)) / space.arch.intermediate_size
    frac_k = float(np.mean(spec.kv_heads)) / space.arch.num_kv_heads
    return 0.25 + 0.3 * frac_layers ** 2 * (0.5 + 0.3 * frac_w + 0.2 * frac_k)


def fill_evaluations(store, space: SearchSpace, model_fp: str, n: int = 40,
                     task: str = "arc_easy", seed: int = 3) -> list[SubnetSpec]:
    rng = np.random.default_rng(seed)
    specs = [ho.sample_across(space, rng) for _ in range(n)]
    for s in specs:
        acc = true_accuracy(space, s) + rng.normal(0, 0.005)
        r = EvalResult(task=task, metric="acc", score=float(acc), stderr=0.01, n=200,
                       model=model_fp, subnet=s.key(), extra={"spec": s.to_json()})
        store.put_evaluation(f"{model_fp}-{s.key()}-{task}", model=model_fp, subnet=s.key(),
                             task=task, score=r.score, record=r.to_dict())
    return specs


def test_synthetic_truth_is_monotone_in_width() -> None:
    wl = Workload("prefill", 128, 0)
    assert true_layer_ms(TINY, 256, 2, wl) < true_layer_ms(TINY, 512, 2, wl)
