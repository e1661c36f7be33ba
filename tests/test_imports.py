"""`import hwnas` stays light, and the per-layer classes still reach the Auto classes, whatever
the order in which hwnas and transformers are imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_hwnas_imports_no_torch_and_no_transformers():
    got = _run("import sys, json, hwnas\n"
               "print(json.dumps({m: m in sys.modules for m in "
               "('torch', 'transformers', 'numpy')}))")
    assert got == {"torch": False, "transformers": False, "numpy": False}


LOOKUP = """
import json
from transformers.models.auto import configuration_auto as ca, modeling_auto as ma
out = {}
for fam in ("llama", "mistral", "qwen2"):
    cfg = ca.CONFIG_MAPPING["hwnas_" + fam]
    out[fam] = [cfg.__name__, cfg.model_type, ma.MODEL_FOR_CAUSAL_LM_MAPPING[cfg].__name__]
print(json.dumps(out))
"""


@pytest.mark.parametrize("before,after", [
    ("import hwnas", "from transformers import AutoModelForCausalLM"),
    ("import hwnas", "from transformers import AutoConfig"),
    ("import hwnas", "import transformers.models.auto.modeling_auto"),
    ("from transformers import AutoModelForCausalLM", "import hwnas"),
    ("from transformers import AutoConfig", "import hwnas"),
])
def test_auto_classes_find_the_per_layer_classes(before, after):
    got = _run(f"{before}\n{after}\n{LOOKUP}")
    for fam, cap in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2")):
        assert got[fam] == [f"Hwnas{cap}Config", f"hwnas_{fam}", f"Hwnas{cap}ForCausalLM"]
