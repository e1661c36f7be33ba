"""`EvalTarget`: what an evaluation scores, named without loading it.

A target carries its identity (model fingerprint, subnet key, dtype), which keys the cache,
and a loader that builds the runnable model and tokenizer only when some task is not cached
yet. Targets come from a `Supernet` and a `SubnetSpec` (in memory), an exported or any other
Hugging Face model directory, or an already loaded model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from hwnas.supernet.space import SubnetSpec
    from hwnas.supernet.supernet import Supernet

FULL = "full"
DTYPES = ("fp32", "bf16", "fp16")

Loaded = tuple["PreTrainedModel", "PreTrainedTokenizerBase"]
"""A runnable causal LM and its tokenizer."""


@dataclass(frozen=True)
class EvalTarget:
    fingerprint: str
    subnet: str  # SubnetSpec key, or "full" for the whole model
    dtype: str
    load: Callable[[], Loaded] = field(compare=False, repr=False)
    spec: dict[str, list[int]] | None = None  # the subnet's JSON (SubnetSpec.to_dict()), for
    # records


def _dtype_name(model: nn.Module) -> str:
    import torch

    dtype = next(model.parameters()).dtype
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
        dtype, str(dtype).removeprefix("torch."))


def subnet_key(spec: SubnetSpec, repair: str = "none") -> str:
    """A subnet's cache identity: its key, plus the repair (mode and settings) when its cut
    weights are repaired, so that repaired and plain results never share a record."""
    if repair == "none":
        return spec.key()
    from hwnas.supernet.repair import RepairConfig, check_mode

    return f"{spec.key()}+{check_mode(repair)}-{RepairConfig().key()}"


def from_supernet(sn: Supernet, spec: SubnetSpec | None = None, repair: str = "none"
                  ) -> EvalTarget:
    """The base model (spec None) or one subnet of a `Supernet`, extracted on first use
    (with ``repair="ls"``, its cut weights repaired; see `hwnas.supernet.repair`)."""
    tok = sn.tokenizer
    if tok is None:
        raise InputError(f"supernet '{sn.name}' has no tokenizer; accuracy evaluation needs "
                         "one (build it with Supernet.from_model(model, tokenizer))")
    if spec is None:
        return EvalTarget(sn.fingerprint, FULL, _dtype_name(sn.model), lambda: (sn.model, tok))
    valid = sn.validate(spec)
    return EvalTarget(sn.fingerprint, subnet_key(valid, repair), _dtype_name(sn.model),
                      lambda: (sn.extract(valid, repair=repair), tok), spec=valid.to_dict())


def from_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fingerprint: str,
               subnet: str = FULL) -> EvalTarget:
    """An already loaded Hugging Face causal LM; the caller names its identity."""
    return EvalTarget(fingerprint, subnet, _dtype_name(model), lambda: (model.eval(), tokenizer))


def from_dir(path: str | Path, dtype: str = "fp32", tokenizer_from: str | None = None
             ) -> EvalTarget:
    """A model directory (e.g. from `hwnas export`), loaded with AutoModelForCausalLM; its
    `hwnas_subnet.json` sidecar, when present, names the subnet."""
    from hwnas.supernet.models import fingerprint

    d = Path(path).expanduser()
    if not (d / "config.json").is_file():
        raise InputError(f"--dir {d}: not a model directory (no config.json); give a folder "
                         "written by `hwnas export` or any Hugging Face model folder")
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    from hwnas.safe_io import read_json_object
    from hwnas.supernet.modeldir import LOAD_KW, check_config, check_weights, has_tokenizer

    check_config(d)
    check_weights(d)
    sidecar = d / "hwnas_subnet.json"
    subnet, spec = FULL, None
    if sidecar.is_file():
        meta = read_json_object(sidecar, "export sidecar")
        subnet, spec = str(meta.get("subnet_key", FULL)), meta.get("subnet")
        if not isinstance(spec, dict | None):
            raise InputError(f"export sidecar {sidecar}: field 'subnet' is not an object; "
                             "export the model again with `hwnas export`")
    if not has_tokenizer(d) and tokenizer_from is None:
        raise InputError(f"--dir {d}: the folder has no tokenizer; pass --model NAME to use "
                         "that model's tokenizer")

    def load() -> Loaded:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        try:
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch_dtype[dtype],
                                                         **LOAD_KW).eval()
            if has_tokenizer(d):
                return model, AutoTokenizer.from_pretrained(d, **LOAD_KW)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"--dir {d}: transformers cannot load the folder "
                             f"({' '.join(str(e).split())[:160]}); check its config, weights "
                             "and tokenizer") from None
        if tokenizer_from is None:
            raise InputError(f"--dir {d}: the folder has no tokenizer; pass --model NAME to "
                             "use that model's tokenizer")
        return model, load_model_tokenizer(tokenizer_from)

    return EvalTarget(fingerprint(str(d)), subnet, dtype, load, spec=spec)


def load_model_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    from hwnas.supernet.modeldir import check_tokenizer, hub_kwargs
    from hwnas.supernet.models import resolve

    src = resolve(name)
    if isinstance(src, Path):
        check_tokenizer(src)
    return AutoTokenizer.from_pretrained(src, **hub_kwargs(src))


def from_name(model: str, spec: SubnetSpec | None = None, dtype: str = "fp32",
              repair: str = "none") -> EvalTarget:
    """A known model, local directory or hub id, whole (spec None) or one subnet. Nothing is
    loaded until a task misses the cache; then the `Supernet` is built and the subnet cut."""
    from hwnas.supernet.models import fingerprint

    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")

    def load() -> Loaded:
        from hwnas.supernet.models import load_model

        if spec is None:
            return load_model(model, dtype)
        from hwnas.supernet.supernet import Supernet

        sn = Supernet.load(model, dtype=dtype)
        if sn.tokenizer is None:
            raise InputError(f"model '{model}' has no tokenizer; accuracy evaluation needs one")
        return sn.extract(spec, repair=repair), sn.tokenizer

    subnet = FULL if spec is None else subnet_key(spec, repair)
    return EvalTarget(fingerprint(model), subnet, dtype, load,
                      spec=None if spec is None else spec.to_dict())
