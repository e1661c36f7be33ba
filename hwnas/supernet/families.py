"""The LLaMA-family models that hwnas builds per-layer (heterogeneous) variants of, by name
only: importing this module imports nothing heavy."""

from __future__ import annotations

PREFIX = "hwnas_"
CAPITALISED = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"}


def model_type(family: str) -> str:
    """`model_type` of a family's heterogeneous variant, e.g. "hwnas_llama"."""
    return PREFIX + family


def config_class_name(family: str) -> str:
    return f"Hwnas{CAPITALISED[family]}Config"


def causal_lm_class_name(family: str) -> str:
    return f"Hwnas{CAPITALISED[family]}ForCausalLM"
