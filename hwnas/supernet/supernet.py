"""`Supernet`: a base model plus its importance ordering; cuts, measures and exports subnets."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError
from hwnas.paths import sub_dir
from hwnas.supernet.arch import ArchInfo, arch_info
from hwnas.supernet.importance import (
    METHOD,
    Importance,
    block_influence,
    compute_importance,
    identity_importance,
    influence_order,
)
from hwnas.supernet.space import SearchSpace, SubnetSpec
from hwnas.supernet.stats import SubnetStats, subnet_stats

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

IMPORTANCE_FILE = "hwnas_importance.json"  # written next to the weights of a trained model
BI_METHOD = "block-influence-v1"


@dataclass
class Supernet:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase | None  # None: random weights (timing only)
    name: str
    fingerprint: str
    importance: Importance
    space: SearchSpace

    @property
    def arch(self) -> ArchInfo:
        return self.space.arch

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, name: str, dtype: str = "fp32", widths: list[int] | None = None) -> Supernet:
        """A known model, local directory or hub id, with cached activation-aware importance."""
        from hwnas.supernet.models import fingerprint, load_model

        model, tok = load_model(name, dtype)
        fp = fingerprint(name)
        arch = arch_info(model.config)
        imp = dir_importance(name) or cached_importance(model, tok, arch, fp)
        return cls(model, tok, name, fp, imp, SearchSpace.default(arch, widths=widths))

    @classmethod
    def from_model(cls, model: PreTrainedModel,
                   tokenizer: PreTrainedTokenizerBase | None = None, name: str = "custom",
                   importance: Importance | None = None,
                   widths: list[int] | None = None) -> Supernet:
        """Any in-memory model; importance from calibration text when a tokenizer is given."""
        from hwnas.datasets.text import calibration_text

        arch = arch_info(model.config)
        if importance is None:
            importance = (compute_importance(model, tokenizer, arch, calibration_text())
                          if tokenizer is not None else identity_importance(arch))
        fp = _state_fingerprint(model)
        return cls(model.eval(), tokenizer, name, fp, importance,
                   SearchSpace.default(arch, widths=widths))

    @classmethod
    def from_config(cls, config: PretrainedConfig, name: str | None = None,
                    widths: list[int] | None = None) -> Supernet:
        """Random weights of a given shape: enough to time layers (latency ignores weights)."""
        import torch
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
        arch = arch_info(config)
        fp = "random-" + arch.key()
        return cls(model, None, name or f"{arch.family}-shape-{arch.key()}", fp,
                   identity_importance(arch), SearchSpace.default(arch, widths=widths))

    # ---- subnets -----------------------------------------------------------------------
    def validate(self, spec: SubnetSpec) -> SubnetSpec:
        return self.space.validate(spec)

    def extract(self, spec: SubnetSpec, padded: bool = False, repair: str = "none"
                ) -> PreTrainedModel:
        """The subnet as a runnable model; ``repair="ls"`` folds the training-free
        least-squares repair (`hwnas.supernet.repair`, cached per subnet) into its weights."""
        from hwnas.supernet.extract import build
        from hwnas.supernet.repair import apply_deltas, check_mode, repair_deltas

        self.validate(spec)
        if check_mode(repair) == "ls" and padded:
            raise InputError("--repair ls with --padded is not available yet; export the "
                             "repaired subnet without --padded")
        model = build(self.model, self.arch, self.importance, spec, padded=padded)
        if repair == "ls":
            apply_deltas(model, repair_deltas(self, spec))
        return model

    def layer_config(self, width: int, kv_heads: int) -> PretrainedConfig:
        from hwnas.supernet.extract import layer_config

        return layer_config(self.model.config, self.arch, width, kv_heads)

    def stats(self, spec: SubnetSpec, dtype: str = "fp32") -> SubnetStats:
        return subnet_stats(self.arch, self.validate(spec), dtype)

    def layer_order(self) -> tuple[int, ...] | None:
        """Layers from least to most influential: the order the model was trained to drop
        them in (a `--sampler ranked` super-network), else by its block influence on the
        calibration text (cached); None for random weights."""
        if self.importance.layer_order is not None:
            return self.importance.layer_order
        if self.tokenizer is None:
            return None
        return influence_order(cached_block_influence(self.model, self.tokenizer,
                                                      self.fingerprint))


def dir_importance(name: str) -> Importance | None:
    """The importance order a model directory carries (`hwnas supernet train` writes the
    base model's, so a trained super-network is cut exactly as it was trained)."""
    from hwnas.supernet.models import KNOWN_MODELS, resolve

    if name in KNOWN_MODELS:
        return None
    src = resolve(name)
    path = src / IMPORTANCE_FILE if isinstance(src, Path) else None
    return Importance.load(path) if path is not None and path.is_file() else None


def _cache_path(fp: str, method: str) -> tuple[Path, str]:
    """Where a model's `method` result on the calibration text is cached, and the text."""
    from hwnas.datasets.text import calibration_text

    text = calibration_text()
    key = hashlib.sha256(f"{fp}:{method}:{text}".encode()).hexdigest()[:16]
    return sub_dir("importance") / f"{key}.json", text


def cached_importance(model: PreTrainedModel, tok: PreTrainedTokenizerBase, arch: ArchInfo,
                      fp: str) -> Importance:
    path, text = _cache_path(fp, METHOD)
    if path.is_file():
        return Importance.load(path)
    imp = compute_importance(model, tok, arch, text)
    imp.save(path)
    return imp


def cached_block_influence(model: PreTrainedModel, tok: PreTrainedTokenizerBase,
                           fp: str) -> tuple[float, ...]:
    """Each layer's block influence on the calibration text, cached per model fingerprint."""
    path, text = _cache_path(fp, BI_METHOD)
    if path.is_file():
        return tuple(float(v) for v in json.loads(path.read_text())["block_influence"])
    bi = block_influence(model, tok, text)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"method": BI_METHOD, "block_influence": list(bi)}))
    tmp.replace(path)
    return bi


def _state_fingerprint(model: PreTrainedModel) -> str:
    """Identity of an in-memory model: config plus a sample of every tensor."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True,
                                  default=str).encode())
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        h.update(name.encode())
        h.update(flat[:64].float().cpu().numpy().tobytes())
        h.update(str(float(flat.float().sum())).encode())
    return h.hexdigest()[:16]
