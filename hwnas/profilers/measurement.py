"""What is timed (`TimingSpec`) and what came out (`Measurement`): plain, typed values.

A `TimingSpec` is frozen and hashable; a `Measurement` keeps every raw time and derives its
statistics, like torch.utils.benchmark's `Measurement`. The store key of a measurement is the
hash of spec + fingerprint + protocol version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwnas.errors import InputError

if TYPE_CHECKING:
    from hwnas.store import Record

PROTOCOL_VERSION = 2  # 2: layers timed in context (a chain of copies), not alone

TARGETS = ("layer", "embed", "head", "subnet")
PHASES = ("prefill", "decode")
STATISTICS = ("median", "min")


def pick_ms(median_ms: float, times_ms: Sequence[float], statistic: str) -> float:
    """The latency a record stands for: its median (the default) or, on a machine shared with
    other work, the minimum of its raw runs (the least disturbed one)."""
    if statistic == "median":
        return float(median_ms)
    if statistic == "min":
        return float(min(times_ms))
    raise InputError(f"unknown latency statistic '{statistic}'; use one of "
                     f"{', '.join(STATISTICS)}")


@dataclass(frozen=True)
class TimingSpec:
    """One thing timed under one workload.

    target  "layer" (one decoder layer with `width` and `kv_heads`), "embed" (token embedding),
            "head" (final norm + LM head) or "subnet" (the whole model cut to `subnet`).
    phase   "prefill": `tokens` new tokens with no cache; "decode": `tokens` (usually 1) new
            tokens on a KV cache already holding `context` positions.
    arch    the model shape's key (hash of `ArchInfo`), so a profile of one shape never
            answers for another.
    """

    target: str
    phase: str
    batch: int
    tokens: int
    context: int
    dtype: str
    backend: str
    device: str
    threads: int
    arch: str
    width: int | None = None
    kv_heads: int | None = None
    subnet: str | None = None  # canonical SubnetSpec JSON, for target == "subnet"

    def to_dict(self) -> Record:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Record) -> TimingSpec:
        return cls(**d)

    def key(self, fingerprint_key: str, protocol: int = PROTOCOL_VERSION) -> str:
        blob = json.dumps({"spec": self.to_dict(), "fp": fingerprint_key, "protocol": protocol},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Measurement:
    spec: TimingSpec
    times_ms: tuple[float, ...]
    fingerprint: dict[str, object] = field(default_factory=dict)  # Fingerprint.to_dict() and
    # the backend's telemetry
    protocol: int = PROTOCOL_VERSION
    noise_threshold: float = 0.1  # IQR / median above which the result is flagged noisy
    remeasured: int = 0  # how many times it was re-measured because it was noisy
    units: int = 1  # copies one timed call ran (a layer chain); times_ms are per copy
    interference: dict[str, object] = field(default_factory=dict)  # MachineLoad.to_dict()
    # over the record's timed window
    measured_at: float = 0.0  # time.time() when it was taken (0: not recorded)
    reference: dict[str, object] = field(default_factory=dict)  # whole subnets: the
    # full-width layer (width, kv_heads, units, times_ms) timed in context beside them, in
    # the same group, so a figure can be put on the layer profile's footing
    model_reference: dict[str, object] = field(default_factory=dict)  # whole subnets, where
    # the profile reads them against the whole model (`timer.subnet_reference: model`): the
    # full model (times_ms, stamps) timed beside them in the same group
    stamps: tuple[float, ...] = ()  # per time: when its call started (`time.monotonic()`
    # of the timing process), to pair it with the reference runs beside it (`footing`)
    group: str = ""  # the timed group it came from: stamps pair only within one group

    @property
    def busy(self) -> bool:
        """Taken while other work used the machine beyond the profile's limits."""
        return bool(self.interference.get("busy", False))

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    def value_ms(self, statistic: str = "median") -> float:
        """The latency this record stands for under the profile's `timer.statistic`."""
        return pick_ms(self.median_ms, self.times_ms, statistic)

    @property
    def iqr_ms(self) -> float:
        q1, q3 = np.percentile(self.times_ms, [25, 75])
        return float(q3 - q1)

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def noisy(self) -> bool:
        return self.iqr_ms / max(self.median_ms, 1e-12) > self.noise_threshold

    def to_dict(self) -> Record:
        return {"spec": self.spec.to_dict(), "times_ms": list(self.times_ms),
                "median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "p90_ms": self.p90_ms,
                "noisy": self.noisy, "fingerprint": self.fingerprint,
                "protocol": self.protocol, "noise_threshold": self.noise_threshold,
                "remeasured": self.remeasured, "units": self.units,
                "interference": self.interference, "busy": self.busy,
                "measured_at": self.measured_at, "reference": self.reference,
                "model_reference": self.model_reference,
                "stamps": list(self.stamps), "group": self.group}

    @classmethod
    def from_dict(cls, d: Record) -> Measurement:
        return cls(spec=TimingSpec.from_dict(d["spec"]), times_ms=tuple(d["times_ms"]),
                   fingerprint=d.get("fingerprint", {}), protocol=d["protocol"],
                   noise_threshold=d.get("noise_threshold", 0.1),
                   remeasured=d.get("remeasured", 0), units=d.get("units", 1),
                   interference=d.get("interference", {}),
                   measured_at=d.get("measured_at", 0.0), reference=d.get("reference", {}),
                   model_reference=d.get("model_reference", {}),
                   stamps=tuple(d.get("stamps", ())), group=d.get("group", ""))
