"""hwnas: hardware-aware neural architecture search for LLaMA-family LLMs.

Importing hwnas registers its heterogeneous-subnet model class with transformers' Auto
classes (cheap: no weights, no heavy runtime), so that exported heterogeneous subnets load
with ``AutoModelForCausalLM.from_pretrained(dir)`` after ``import hwnas``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from hwnas.errors import HwnasError, InputError  # noqa: E402

__all__ = ["HwnasError", "InputError", "__version__"]


def _register_auto_classes() -> None:
    try:
        from hwnas.supernet.hetero import register_auto_classes
    except ImportError:  # transformers missing: the rest of hwnas still imports
        return
    register_auto_classes()


_register_auto_classes()
