"""`detect()`: write a hardware profile for the machine this runs on."""

from __future__ import annotations

import re
from pathlib import Path

from hwnas.hw_profiles.fingerprint import Fingerprint, collect_fingerprint
from hwnas.hw_profiles.schema import HardwareProfile


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "machine"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def detect(name: str | None = None, device: str | None = None, backend: str = "torch",
           dtype: str | None = None, fp: Fingerprint | None = None) -> HardwareProfile:
    """A profile for this machine: its device, every usable core, and a pinned fingerprint
    (CPU model and ISA flags; GPU name on CUDA) so it is not used by mistake elsewhere."""
    if device is None:
        device = "cuda:0" if _cuda_available() else "cpu"
    fp = fp or collect_fingerprint(device)
    on_gpu = device.startswith("cuda")
    if dtype is None:
        dtype = "bf16" if on_gpu else "fp32"
    what = fp.gpu_name if on_gpu else fp.cpu_model
    name = name or f"detected-{_slug(what)}-{backend}-{dtype}"
    pinned: dict[str, object] = ({"gpu_name": fp.gpu_name} if on_gpu else
                                 {"cpu_model": fp.cpu_model, "isa": list(fp.isa),
                                  "logical_cores": fp.logical_cores})
    return HardwareProfile.model_validate({
        "schema_version": 1, "name": name,
        "description": f"Detected on {what} ({fp.logical_cores} logical cores, "
                       f"{fp.memory_gib} GiB); backend {backend}, {dtype}.",
        "device": device, "backend": backend, "dtype": dtype,
        "threads": 0 if on_gpu else fp.usable_cores, "batch": 1,
        "workloads": {"prefill": [32, 128, 512],
                      "decode": [{"context": 144}, {"context": 512}, {"context": 2048}]},
        "primary": {"prefill_tokens": 128, "decode_tokens": 32},
        "fingerprint": pinned,
    })


def write_profile(profile: HardwareProfile, path: Path | None = None) -> Path:
    """Write to `path`, or into the user profile folder where `load_profile` finds it."""
    from hwnas.hw_profiles.loader import dump_profile, user_dir

    target = path or user_dir() / f"{profile.name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(dump_profile(profile))
    tmp.replace(target)
    return target
