"""Checkpoints that let `--resume` continue exactly: weights and optimiser moments as
safetensors, step counters, data cursor, RNG states and loss history as JSON. A checkpoint
is written into a temporary folder and renamed into place, so a crash never leaves half a
checkpoint; the previous one is kept until the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CKPT = "checkpoint"
STATE_VERSION = 1


@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    cursor: int = 0
    numpy_rng: dict[str, Any] = field(default_factory=dict)
    # one per optimiser step: total, full, smallest, random (None: not trained that step), lr
    losses: list[dict[str, float | None]] = field(default_factory=list)


def write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained parameters (all of them, or only the adapters of a `--lora` run: the
    frozen weights are the base model's, loaded again on resume)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters()
            if p.requires_grad}


def save(out: Path, model: nn.Module, opt: torch.optim.Optimizer, state: TrainState,
         identity: str, config: dict[str, Any]) -> Path:
    target = out / CKPT
    tmp = out / (CKPT + ".tmp")
    old = out / (CKPT + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(_params(model), str(tmp / "model.safetensors"))
    osd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for idx, st in osd["state"].items():
        for key, v in st.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                tensors[f"{idx}.{key}"] = v.cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = float(v)
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"version": STATE_VERSION, "identity": identity, "config": config,
            "param_groups": osd["param_groups"], "scalars": scalars,
            "state": state.__dict__}
    (tmp / "state.json").write_text(json.dumps(meta))
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old.exists():
        shutil.rmtree(old)
    return target


def find(out: Path) -> Path | None:
    for name in (CKPT, CKPT + ".old"):
        p = out / name
        if (p / "state.json").is_file():
            return p
    return None


def read_meta(ckpt: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((ckpt / "state.json").read_text())
    return meta


def load(ckpt: Path, model: nn.Module, opt: torch.optim.Optimizer) -> TrainState:
    meta = read_meta(ckpt)
    weights = load_file(str(ckpt / "model.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if unexpected or (set(missing) & names):
        raise RuntimeError(f"checkpoint {ckpt} does not fit the model: missing "
                           f"{sorted(set(missing) & names)[:3]}, unexpected {unexpected[:3]}")
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key == "rng.torch":
            continue
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    for idx, sc in meta["scalars"].items():
        for name, v in sc.items():
            state.setdefault(int(idx), {})[name] = torch.tensor(v)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return TrainState(**meta["state"])
