"""Extraction and export on tiny random models: MHA, GQA, Qwen2 with biases, Mistral."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import FakeTokenizer, tiny_model

import hwnas  # noqa: F401  (registers the per-layer classes with the Auto classes)
from hwnas.datasets.text import calibration_text
from hwnas.supernet import SubnetSpec
from hwnas.supernet.export import export
from hwnas.supernet.importance import compute_importance
from hwnas.supernet.supernet import Supernet


def _supernet(model) -> Supernet:
    sn = Supernet.from_model(model, name="tiny")
    # activation-aware ordering on calibration text, via a character tokenizer
    imp = compute_importance(model, FakeTokenizer(model.config.vocab_size), sn.arch,
                             calibration_text(), seq_len=64, max_sequences=4)
    return Supernet(model, None, "tiny", sn.fingerprint, imp, sn.space)


def _hetero_spec(sn: Supernet) -> SubnetSpec:
    sp = sn.space
    n = sn.arch.num_layers
    layers = tuple(i for i in range(n) if i != 1)
    widths = tuple(sp.width_choices[i % len(sp.width_choices)] for i in range(len(layers)))
    kvs = tuple(sp.kv_choices[-1] if i else sp.kv_choices[0] for i in range(len(layers)))
    return SubnetSpec(layers, widths, kvs)


IDS = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))


def _logits(model, ids=IDS):
    with torch.no_grad():
        return model(ids).logits


def test_full_spec_reproduces_the_base_model(tiny_variant):
    _, model = tiny_variant
    sn = _supernet(model)
    sub = sn.extract(sn.space.full())
    assert torch.equal(_logits(sub), _logits(model))


def test_compact_subnet_equals_zero_padded_base(tiny_variant):
    """Two independent constructions of one subnet: sliced weights vs zeroed weights."""
    _, model = tiny_variant
    sn = _supernet(model)
    for spec in (_hetero_spec(sn), sn.space.uniform(width=sn.space.width_choices[0],
                                                    kv_heads=sn.space.kv_choices[0])):
        compact, padded = sn.extract(spec), sn.extract(spec, padded=True)
        assert (_logits(compact) - _logits(padded)).abs().max() < 1e-5
        n_params = sum(p.numel() for p in compact.parameters())
        assert n_params == sn.stats(spec).params
        assert n_params < sum(p.numel() for p in padded.parameters())


def test_kv_cache_generation_matches_no_cache(tiny_variant):
    _, model = tiny_variant
    sn = _supernet(model)
    sub = sn.extract(_hetero_spec(sn))
    for i, layer in enumerate(sub.model.layers):
        assert layer.self_attn.layer_idx == i
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=1, eos_token_id=None)
    with_cache = sub.generate(IDS[:1], use_cache=True, **kw)
    without = sub.generate(IDS[:1], use_cache=False, **kw)
    assert torch.equal(with_cache, without)


def test_heterogeneous_export_round_trip(tmp_path, tiny_variant):
    name, model = tiny_variant
    sn = _supernet(model)
    spec = _hetero_spec(sn)
    info = export(sn, spec, tmp_path / "out")
    assert not info.stock_loadable and info.model_type.startswith("hwnas_")
    assert info.max_abs_logit_diff is not None and info.max_abs_logit_diff <= 1e-5
    assert info.generate_ok
    from transformers import AutoModelForCausalLM
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert sum(p.numel() for p in reloaded.parameters()) == sn.stats(spec).params
    assert (_logits(reloaded) - _logits(sn.extract(spec))).abs().max() <= 1e-5
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert "per_layer_config" in cfg  # the upstream per-layer format
    side = json.loads((tmp_path / "out" / "hwnas_subnet.json").read_text())
    assert SubnetSpec.from_dict(side["subnet"]) == spec


UNIFORM_LOADER = """
import sys, json, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
ids = torch.tensor(json.loads(sys.argv[2]))
with torch.no_grad():
    print(json.dumps({"hwnas_imported": "hwnas" in sys.modules, "type": type(m).__name__,
                      "logits": m(ids).logits[0, -1, :8].tolist()}))
"""


def test_uniform_export_loads_without_hwnas(tmp_path, tiny_variant):
    name, model = tiny_variant
    sn = _supernet(model)
    spec = sn.space.uniform(width=sn.space.width_choices[1], kv_heads=sn.space.kv_choices[0],
                            drop=[0])
    info = export(sn, spec, tmp_path / "u")
    assert info.stock_loadable
    ids = IDS[:1].tolist()
    out = subprocess.run([sys.executable, "-c", UNIFORM_LOADER, str(tmp_path / "u"),
                          json.dumps(ids)], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not got["hwnas_imported"] and not got["type"].startswith("Hwnas")
    want = _logits(sn.extract(spec), torch.tensor(ids))[0, -1, :8]
    assert np.allclose(got["logits"], want.numpy(), atol=1e-5)


def test_padded_export_is_stock_and_exact(tmp_path):
    model = tiny_model("llama", kv_heads=2)
    sn = _supernet(model)
    spec = _hetero_spec(sn)
    info = export(sn, spec, tmp_path / "p", padded=True)
    assert info.stock_loadable and info.padded and info.max_abs_logit_diff <= 1e-5


def test_importance_is_activation_aware_and_cached(tmp_path):
    model = tiny_model("llama")
    tok = FakeTokenizer()
    a = compute_importance(model, tok, Supernet.from_model(model).arch, calibration_text(),
                           seq_len=64, max_sequences=4)
    b = compute_importance(model, tok, Supernet.from_model(model).arch, "zzzz " * 200,
                           seq_len=64, max_sequences=4)
    assert a.channel_order != b.channel_order  # depends on the text, not only on weights
    assert sorted(a.channel_order[0]) == list(range(model.config.intermediate_size))
    assert sorted(a.group_order[0]) == list(range(model.config.num_key_value_heads))


def test_export_refuses_a_foreign_folder(tmp_path):
    sn = _supernet(tiny_model("llama"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(hwnas.InputError, match="not an hwnas export"):
        export(sn, sn.space.full(), tmp_path / "x")


def test_block_influence_ranks_a_layer_that_does_nothing_lowest(tmp_path):
    from hwnas.supernet.importance import block_influence
    from tests.conftest import save_tiny_model_dir

    sn = Supernet.load(str(save_tiny_model_dir(tmp_path / "m", layers=4)))
    layer = sn.model.model.layers[2]
    with torch.no_grad():  # the residual stream passes layer 2 unchanged
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    text = " ".join(f"word{i % 17} and more{i % 5}" for i in range(400))
    bi = block_influence(sn.model, sn.tokenizer, text, seq_len=32, max_sequences=4)
    assert len(bi) == 4
    assert bi[2] == pytest.approx(0.0, abs=1e-9)
    assert min(b for i, b in enumerate(bi) if i != 2) > 1e-4
