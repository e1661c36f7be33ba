"""Export a subnet as a Hugging Face model directory, and verify the export.

The directory holds safetensors weights, the config, the tokenizer and `hwnas_subnet.json`
(what it was cut from). A uniform spec is a plain Llama/Mistral/Qwen2 directory that stock
transformers loads without hwnas; a heterogeneous one loads with `AutoModelForCausalLM` after
`import hwnas`. `padded=True` writes a stock full-width directory with pruned channels and heads
zeroed: exact and readable by any Llama tool, but as large and as slow as the base model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import hwnas
from hwnas.supernet.space import SubnetSpec
from hwnas.supernet.supernet import Supernet

if TYPE_CHECKING:
    from transformers import PreTrainedModel

SIDECAR = "hwnas_subnet.json"


@dataclass(frozen=True)
class ExportInfo:
    out_dir: str
    model_type: str
    params: int
    stock_loadable: bool  # loads in stock transformers without hwnas
    padded: bool
    max_abs_logit_diff: float | None  # from verification (None when not verified)
    generate_ok: bool | None

    def to_dict(self) -> dict[str, str | int | bool | float | None]:
        return asdict(self)


def export(sn: Supernet, spec: SubnetSpec, out_dir: str | Path, padded: bool = False,
           verify: bool = True, repair: str = "none",
           overwrite: bool = False) -> ExportInfo:
    """Write the export into a fresh temporary folder beside `out_dir`, then move it into
    place (see `hwnas.supernet.outdir`): a crash leaves the earlier export, or the empty
    target, as it was; only hwnas's own files are ever replaced."""
    from hwnas.supernet.outdir import check_target, place, staging_dir

    out_dir = Path(out_dir).expanduser()
    check_target(out_dir, SIDECAR, overwrite)
    model = sn.extract(spec, padded=padded, repair=repair)
    with staging_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        if sn.tokenizer is not None:
            sn.tokenizer.save_pretrained(tmp)
        _pause_for_tests()
        files = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file())
        sidecar = {"hwnas_version": hwnas.__version__, "base_model": sn.name,
                   "base_fingerprint": sn.fingerprint, "subnet": spec.to_dict(),
                   "subnet_key": spec.key(), "importance": sn.importance.method,
                   "padded": padded, "repair": repair, "files": files + [SIDECAR]}
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2))
        place(tmp, out_dir, SIDECAR)
    params = sum(p.numel() for p in model.parameters())
    diff, gen_ok = (verify_export(model, out_dir) if verify else (None, None))
    return ExportInfo(str(out_dir), model.config.model_type, int(params),
                      not model.config.model_type.startswith("hwnas_"), padded, diff, gen_ok)


def _pause_for_tests() -> None:
    """`HWNAS_TEST_EXPORT_PAUSE=FILE`: touch FILE and sleep mid-write (the kill test)."""
    flag = os.environ.get("HWNAS_TEST_EXPORT_PAUSE")
    if flag:
        Path(flag).touch()
        time.sleep(60)


@torch.inference_mode()
def verify_export(model: PreTrainedModel, out_dir: Path, n_tokens: int = 24) -> tuple[float, bool]:
    """Reload `out_dir` with AutoModelForCausalLM; compare logits with `model`; generate."""
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=model.dtype,
                                                    trust_remote_code=False).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (2, n_tokens), generator=g)
    diff = (reloaded(ids).logits.float() - model(ids).logits.float()).abs().max().item()
    out = reloaded.generate(ids[:1, :8], max_new_tokens=4, do_sample=False,
                            pad_token_id=model.config.eos_token_id)
    return float(diff), bool(out.shape[1] == 12)
