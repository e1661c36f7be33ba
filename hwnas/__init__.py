"""hwnas: hardware-aware neural architecture search for LLaMA-family LLMs.

Importing hwnas is cheap (no torch, no transformers). It leaves an import hook that registers
hwnas's heterogeneous-subnet model classes with transformers' Auto classes as soon as those
load (`hwnas.supernet.autoregister`), so that exported heterogeneous subnets load with
``AutoModelForCausalLM.from_pretrained(dir)`` after ``import hwnas``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from hwnas.errors import HwnasError, InputError  # noqa: E402
from hwnas.supernet.autoregister import install as _install_auto_registration  # noqa: E402

__all__ = ["HwnasError", "InputError", "__version__"]

_install_auto_registration()
