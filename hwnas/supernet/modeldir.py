"""Check a model folder before transformers reads it, and keep transformers off the network
when the hub cannot be reached.

A local folder is read by hwnas first: `config.json` must be strict UTF-8 JSON (no duplicate
keys), an object with a `model_type` that transformers or hwnas itself knows, and without
`auto_map` (which would make transformers offer to run the folder's own Python code). Weights
and a tokenizer are checked for before loading, so a missing one is a one-line error that says
so. Every transformers load passes `trust_remote_code=False` (`LOAD_KW`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hwnas.errors import InputError
from hwnas.safe_io import read_json_object

LOAD_KW: dict[str, Any] = {"trust_remote_code": False}
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json",
                "*.gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_HUB_REACHABLE: dict[str, bool] = {}


def check_config(folder: Path) -> dict[str, Any]:
    """The folder's config.json, refused when transformers could not load it without running
    the folder's code."""
    path = folder / "config.json"
    data = read_json_object(path, "model config")
    if "auto_map" in data:
        raise InputError(f"model config {path}: field 'auto_map' asks to run Python code from "
                         "the model folder, which hwnas never does; use a folder whose "
                         "model_type transformers knows (llama, mistral, qwen2)")
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise InputError(f"model config {path}: field 'model_type' is missing or not text "
                         f"(got {model_type!r}); a LLaMA-family config says e.g. "
                         '"model_type": "llama"')
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise InputError(f"model config {path}: field 'model_type' is {model_type[:60]!r}, "
                         "which transformers does not know; hwnas loads LLaMA-family models "
                         "(llama, mistral, qwen2) and never runs a folder's own code")
    return data


def check_weights(folder: Path) -> None:
    if not any(any(folder.glob(g)) for g in WEIGHT_GLOBS):
        raise InputError(f"model folder {folder}: no weights (*.safetensors or *.bin); give a "
                         "complete Hugging Face model folder, e.g. one written by "
                         "save_pretrained() or `hwnas export`")


def has_tokenizer(folder: Path) -> bool:
    return any((folder / f).is_file() for f in TOKENIZER_FILES)


def check_tokenizer(folder: Path) -> None:
    if not has_tokenizer(folder):
        raise InputError(f"model folder {folder}: no tokenizer (tokenizer.json, "
                         "tokenizer.model or vocab.json); save the tokenizer into the folder "
                         "(tokenizer.save_pretrained(folder))")


def hub_kwargs(source: Path | str) -> dict[str, Any]:
    """`trust_remote_code=False`, plus `local_files_only=True` for a hub id when the hub is
    unreachable (checked once per process), so an offline run fails fast instead of retrying."""
    if isinstance(source, Path) or not hub_unreachable():
        return dict(LOAD_KW)
    return {**LOAD_KW, "local_files_only": True}


def hub_unreachable(timeout_s: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return False  # the proxy decides; transformers goes through it
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    if host not in _HUB_REACHABLE:
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
            _HUB_REACHABLE[host] = True
        except OSError:
            _HUB_REACHABLE[host] = False
    return not _HUB_REACHABLE[host]


def hub_error(name: str, e: Exception) -> InputError:
    """One line for a hub id that cannot be loaded."""
    first = " ".join(str(e).split())[:200]
    if hub_unreachable():
        return InputError(f"model '{name}': the Hugging Face hub is unreachable and this id is "
                          "not in the local HF cache; pass a local model folder instead, or "
                          "connect and run once to fill the cache")
    return InputError(f"model '{name}': cannot load it ({first}); check the id, or pass a "
                      "local model folder")
