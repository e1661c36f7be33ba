"""Issue 2 acceptance on the real embedded model (SmolLM2-135M): export round trips."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import hwnas  # noqa: F401
from hwnas.cli import main
from hwnas.supernet import SubnetSpec
from hwnas.supernet.export import export

pytestmark = pytest.mark.slow

HETERO = SubnetSpec(
    layers=tuple(i for i in range(30) if i not in (11, 14, 17, 20)),
    intermediate_size=tuple([1536, 1344, 1152, 960, 768] * 5 + [1536]),
    kv_heads=tuple([3] * 12 + [2] + [3] * 13),
)


def _ids():
    return torch.randint(100, 40000, (2, 40), generator=torch.Generator().manual_seed(3))


def _stats_params(spec: SubnetSpec, capsys) -> int:
    assert main(["stats", "--model", "smollm2-135m", "--subnet", spec.to_json(), "--json"]) == 0
    return int(json.loads(capsys.readouterr().out)["params"])


def test_full_spec_reproduces_base_logits(real_supernet):
    sn = real_supernet
    with torch.no_grad():
        diff = (sn.extract(sn.space.full())(_ids()).logits - sn.model(_ids()).logits).abs().max()
    assert diff.item() == 0.0


def test_heterogeneous_export_round_trip(real_supernet, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    sn = real_supernet
    info = export(sn, HETERO, tmp_path / "hetero")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hetero").eval()
    n_params = sum(p.numel() for p in reloaded.parameters())
    assert n_params == _stats_params(HETERO, capsys) == info.params
    with torch.no_grad():
        diff = (reloaded(_ids()).logits - sn.extract(HETERO)(_ids()).logits).abs().max().item()
    assert diff <= 1e-4
    out = reloaded.generate(_ids()[:1, :10], max_new_tokens=8, do_sample=False)
    assert out.shape == (1, 18)


LOADER = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
tok = AutoTokenizer.from_pretrained(sys.argv[1])
ids = tok("The capital of France is", return_tensors="pt").input_ids
out = m.generate(ids, max_new_tokens=5, do_sample=False)
print(json.dumps({"hwnas": "hwnas" in sys.modules, "class": type(m).__name__,
                  "params": sum(p.numel() for p in m.parameters()),
                  "new_tokens": out.shape[1] - ids.shape[1]}))
"""


def test_uniform_export_loads_in_stock_transformers(real_supernet, tmp_path, capsys):
    sn = real_supernet
    spec = sn.space.uniform(width=1152, drop=range(12, 18))
    info = export(sn, spec, tmp_path / "uniform")
    assert info.stock_loadable and info.max_abs_logit_diff <= 1e-4
    res = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "uniform")],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got == {"hwnas": False, "class": "LlamaForCausalLM",
                   "params": _stats_params(spec, capsys), "new_tokens": 5}
