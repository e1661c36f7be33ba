"""The device fingerprint: what machine and software produced a number.

`collect_fingerprint(device)` reads the CPU (model, ISA flags, cores, memory, frequency
governor), on CUDA devices the GPU through NVML (name, UUID, driver, clocks, power limit,
throttle reasons), and the library versions plus hwnas's version and git hash. Its `key()`
covers only the identity that decides latency (hardware and library versions, not clocks or
the git hash), so a store stays valid across commits and resumes find their records.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypedDict

from hwnas.errors import InputError

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
LIBRARIES = ("torch", "transformers", "onnxruntime", "openvino", "intel-extension-for-pytorch")
THROTTLE_NAMES = {  # NVML clocks_event / throttle reason bits
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


class Nvml(Protocol):
    """The part of NVML (the `pynvml` module of nvidia-ml-py) that hwnas reads; tests pass a
    fake with these members."""

    NVML_CLOCK_SM: int
    NVML_CLOCK_MEM: int
    NVML_TEMPERATURE_GPU: int
    NVMLError: type[Exception]

    def nvmlInit(self) -> None: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> object: ...
    def nvmlDeviceGetName(self, handle: object) -> str | bytes: ...
    def nvmlDeviceGetUUID(self, handle: object) -> str | bytes: ...
    def nvmlSystemGetDriverVersion(self) -> str | bytes: ...
    def nvmlDeviceGetMemoryInfo(self, handle: object) -> _MemoryInfo: ...
    def nvmlDeviceGetPowerManagementLimit(self, handle: object) -> int: ...
    def nvmlDeviceGetMaxClockInfo(self, handle: object, clock: int) -> int: ...
    def nvmlDeviceGetClockInfo(self, handle: object, clock: int) -> int: ...
    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: object) -> int: ...
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object) -> int: ...


class _MemoryInfo(Protocol):
    @property
    def total(self) -> int: ...


class Clocks(TypedDict):
    sm: int
    mem: int


class GpuState(TypedDict):
    """What changes during a run (`gpu_state`), stored as a measurement's telemetry."""

    clocks_mhz: Clocks
    temperature_c: int
    power_w: float
    throttle_reasons: list[str]


class _CpuInfo(TypedDict):
    model: str
    vendor: str
    isa: tuple[str, ...]


@dataclass(frozen=True)
class Fingerprint:
    cpu_model: str
    cpu_vendor: str
    isa: tuple[str, ...]
    logical_cores: int
    usable_cores: int
    memory_gib: float
    governor: str
    machine: str
    versions: dict[str, str] = field(default_factory=dict)
    hwnas_version: str = ""
    git_hash: str = ""
    gpu: dict[str, object] = field(default_factory=dict)  # gpu_info(): identity and state

    @property
    def gpu_name(self) -> str:
        return str(self.gpu.get("name", ""))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["isa"] = list(self.isa)
        d["key"] = self.key()
        return d

    def identity(self, libraries: Sequence[str] | None = None) -> dict[str, object]:
        """What decides latency: hardware, and the versions of `libraries` (default all)."""
        versions = (self.versions if libraries is None else
                    {k: v for k, v in self.versions.items() if k in libraries})
        return {"cpu_model": self.cpu_model, "isa": list(self.isa),
                "logical_cores": self.logical_cores, "machine": self.machine,
                "memory_gib": round(self.memory_gib), "versions": versions,
                "gpu_name": self.gpu_name}

    def key(self, libraries: Sequence[str] | None = None) -> str:
        """Stable across commits, clocks and runs: the store key of a measurement uses it."""
        blob = json.dumps(self.identity(libraries), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def value(self, field_name: str) -> object:
        """A pinnable field: any top-level field, `gpu_<x>` for GPU fields, or a library."""
        if field_name == "gpu_name":
            return self.gpu_name
        if field_name.startswith("gpu_") and field_name[4:] in self.gpu:
            return self.gpu[field_name[4:]]
        if field_name in self.versions:
            return self.versions[field_name]
        if field_name in self.__dataclass_fields__:
            return getattr(self, field_name)
        raise KeyError(field_name)


def pinnable_fields() -> list[str]:
    return ["cpu_model", "cpu_vendor", "isa", "logical_cores", "usable_cores", "memory_gib",
            "governor", "machine", "gpu_name", "gpu_uuid", "gpu_driver", "gpu_memory_gib",
            *LIBRARIES]


def mismatches(pinned: Mapping[str, object], fp: Fingerprint) -> list[str]:
    """Human-readable differences between a profile's pinned fields and this machine.

    Strings match when the pinned text is contained in the machine's value (so
    "AMD EPYC" pins every EPYC model name); lists when every pinned item is present;
    numbers when equal."""
    out = []
    for name, want in pinned.items():
        try:
            have = fp.value(name)
        except KeyError:
            out.append(f"'{name}' is not a fingerprint field (pinnable: "
                       f"{', '.join(pinnable_fields())})")
            continue
        if isinstance(want, list):
            pool = have if isinstance(have, (str, list, tuple, set)) else ()
            missing = [w for w in want if w not in pool]
            if missing:
                out.append(f"{name}: needs {missing}, this machine has {list(pool)}")
        elif isinstance(want, str):
            if want.lower() not in str(have).lower():
                out.append(f"{name}: pinned '{want}', this machine has '{have}'")
        elif want != have:
            out.append(f"{name}: pinned {want!r}, this machine has {have!r}")
    return out


def check_pinned(profile_name: str, pinned: Mapping[str, object], fp: Fingerprint,
                 force: bool = False) -> list[str]:
    """Raise when the machine does not match the profile's pin (unless `force`)."""
    diffs = mismatches(pinned, fp)
    if diffs and not force:
        raise InputError(f"hardware profile '{profile_name}' is pinned to another machine: "
                         + "; ".join(diffs) + ". Use a profile for this machine "
                         "(`hwnas hw detect`) or pass --force to measure anyway")
    return diffs


def collect_fingerprint(device: str = "cpu", nvml: Nvml | None = None) -> Fingerprint:
    cpu = _cpu_info()
    gpu = gpu_info(device, nvml) if device.startswith("cuda") else {}
    return Fingerprint(
        cpu_model=cpu["model"], cpu_vendor=cpu["vendor"], isa=cpu["isa"],
        logical_cores=os.cpu_count() or 1, usable_cores=_usable_cores(),
        memory_gib=_memory_gib(), governor=_governor(), machine=platform.machine(),
        versions=library_versions(), hwnas_version=_version("hwnas"), git_hash=git_hash(),
        gpu=gpu)


_SIZE_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


def cpu_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The largest cache the kernel lists for cpu0 (the last level; shared), 0 when unknown."""
    best = 0
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    for d in entries:
        try:
            text = (d / "size").read_text().strip()
        except OSError:
            continue
        unit = _SIZE_UNITS.get(text[-1:].upper(), 1)
        digits = text.rstrip("KMGkmg")
        if digits.isdigit():
            best = max(best, int(digits) * unit)
    return best


def _cpu_info() -> _CpuInfo:
    model, vendor, flags = "", "unknown", set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name" and not model:
            model = val
        elif key == "vendor_id":
            vendor = val
        elif key in ("flags", "Features") and not flags:
            flags = set(val.split())
    return {"model": model or platform.processor() or "unknown", "vendor": vendor,
            "isa": tuple(f for f in ISA_FLAGS if f in flags)}


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _governor() -> str:
    p = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return p.read_text().strip()
    except OSError:
        return "unavailable (no cpufreq; e.g. a VM)"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def library_versions() -> dict[str, str]:
    return {lib: v for lib in LIBRARIES if (v := _version(lib))}


def git_hash() -> str:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    h = out.stdout.strip()
    return f"{h}+dirty" if h and dirty.stdout.strip() else h


def gpu_info(device: str, nvml: Nvml | None = None) -> dict[str, object]:
    """Static identity and current state of the GPU behind `device`, through NVML."""
    index = int(device.split(":")[1]) if ":" in device else 0
    nv = nvml if nvml is not None else _import_nvml()
    try:
        nv.nvmlInit()
        h = nv.nvmlDeviceGetHandleByIndex(index)
        info: dict[str, object] = {
            "name": _text(nv.nvmlDeviceGetName(h)),
            "uuid": _text(nv.nvmlDeviceGetUUID(h)),
            "driver": _text(nv.nvmlSystemGetDriverVersion()),
            "memory_gib": round(nv.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
            "power_limit_w": nv.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,
            "max_clocks_mhz": {"sm": nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM),
                               "mem": nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM)},
        }
        info.update(gpu_state(nv, h))
        return info
    except nv.NVMLError as e:
        raise InputError(f"device '{device}': NVML cannot read the GPU ({e}); is the NVIDIA "
                         "driver loaded and the index right?") from None


def gpu_state(nv: Nvml, handle: object) -> GpuState:
    """What changes during a run: clocks, temperature, power and throttle reasons."""
    reasons = nv.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
    return {"clocks_mhz": {"sm": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM),
                           "mem": nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_MEM)},
            "temperature_c": nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU),
            "power_w": nv.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            "throttle_reasons": throttle_names(int(reasons))}


def throttle_names(bits: int) -> list[str]:
    return [name for bit, name in THROTTLE_NAMES.items() if bits & bit]


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _import_nvml() -> Nvml:
    try:
        import pynvml
    except ImportError:
        from hwnas.errors import MissingDependencyError
        raise MissingDependencyError("nvidia-ml-py", "GPU telemetry (NVML)",
                                     "pip install nvidia-ml-py") from None
    return pynvml
