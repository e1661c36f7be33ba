"""The hardware-profile schema: frozen pydantic models, validated on load.

A profile is a YAML file (see `builtin/`)::

    schema_version: 1
    name: cpu-torch-fp32
    description: ...
    device: cpu            # cpu | cuda | cuda:N
    backend: torch         # torch | onnxruntime | openvino | ipex | fake
    dtype: fp32            # fp32 | bf16 | fp16 | int8
    threads: 2             # 0 = every core the process may use
    batch: 1
    workloads:
      prefill: [32, 128, 512]           # prompt lengths, no cache
      decode:                           # one new token on a KV cache of `context` positions
        - {context: 144}
    primary: {prefill_tokens: 128, decode_tokens: 32}
    fingerprint: {cpu_model: "AMD EPYC"}  # optional pin, checked against the machine
    timer: {statistic: min}               # optional, see TimerSettings

The primary metric (milliseconds), used by predictors and search, is::

    latency_ms = prefill(primary.prefill_tokens)
               + primary.decode_tokens * decode(context = prefill_tokens + decode_tokens // 2)

so every profile's workloads must contain those two workloads. Each workload's figure is the
median of its timed runs, or their minimum with `timer.statistic: min` (the shipped CPU
profiles, for a machine shared with other work).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

BACKENDS = ("torch", "onnxruntime", "openvino", "ipex", "fake")
DTYPES = ("fp32", "bf16", "fp16", "int8")
# Which (backend, dtype) and (backend, device kind) pairs hwnas can really run.
BACKEND_DTYPES = {
    "torch": ("fp32", "bf16", "fp16", "int8"),
    "onnxruntime": ("fp32",),
    "openvino": ("fp32", "bf16"),
    "ipex": ("fp32", "bf16"),
    "fake": DTYPES,
}
BACKEND_DEVICES = {
    "torch": ("cpu", "cuda"),
    "onnxruntime": ("cpu",),
    "openvino": ("cpu",),
    "ipex": ("cpu",),
    "fake": ("cpu", "cuda"),
}
DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_TOKENS = 1 << 20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: Any) -> Any:
        """`threads: true` is not 1: a boolean where a number belongs is refused (pydantic's
        lax mode would take it)."""
        ann = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool) and ann is not bool and ann in (int, float):
            raise ValueError(f"expected a number, got the boolean {str(v).lower()}")
        if isinstance(v, list | tuple) and ann in (tuple[int, ...],) and any(
                isinstance(x, bool) for x in v):
            raise ValueError("expected numbers, got a boolean")
        return v


class DecodeWorkload(_Frozen):
    """`tokens` new tokens (one decode step) on a KV cache already holding `context` positions."""

    context: int = Field(ge=1, le=MAX_TOKENS)
    tokens: Literal[1] = 1

    @property
    def name(self) -> str:
        return f"decode@{self.context}"


class Workloads(_Frozen):
    prefill: tuple[int, ...] = Field(min_length=1)
    decode: tuple[DecodeWorkload, ...] = Field(min_length=1)

    @field_validator("prefill")
    @classmethod
    def _prefill_positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for n in v:
            if not 1 <= n <= MAX_TOKENS:
                raise ValueError(f"prefill length {n} must lie in 1..{MAX_TOKENS}")
        if len(set(v)) != len(v):
            raise ValueError(f"prefill lengths {list(v)} repeat a value")
        return v

    @field_validator("decode")
    @classmethod
    def _decode_unique(cls, v: tuple[DecodeWorkload, ...]) -> tuple[DecodeWorkload, ...]:
        ctx = [w.context for w in v]
        if len(set(ctx)) != len(ctx):
            raise ValueError(f"decode contexts {ctx} repeat a value")
        return v

    def names(self) -> list[str]:
        return [f"prefill@{n}" for n in self.prefill] + [w.name for w in self.decode]


class PrimaryMetric(_Frozen):
    prefill_tokens: int = Field(ge=1, le=MAX_TOKENS)
    decode_tokens: int = Field(ge=0, le=MAX_TOKENS)

    @property
    def decode_context(self) -> int:
        return self.prefill_tokens + self.decode_tokens // 2

    def compose(self, prefill_ms: float, decode_ms: float) -> float:
        """The primary metric from the prefill time and one decode step's time."""
        return prefill_ms + self.decode_tokens * decode_ms

    def describe(self) -> str:
        return (f"prefill {self.prefill_tokens} + {self.decode_tokens} x decode@"
                f"{self.decode_context} (ms)")


class TimerSettings(_Frozen):
    """How long and how hard the adaptive timer tries (see hwnas.profilers.timer)."""

    warmup_runs: int = Field(default=2, ge=0, le=1000)
    min_runs: int = Field(default=7, ge=3, le=100000)
    max_runs: int = Field(default=200, ge=3, le=1000000)
    target_rel_iqr: float = Field(default=0.03, gt=0, le=1)
    noise_threshold: float = Field(default=0.1, gt=0, le=10)
    max_time_s: float = Field(default=1.0, gt=0, le=3600)
    # a whole-subnet record's own time budget: one call is a whole model, so it needs longer
    # than a layer record for as many runs to read against the reference (5 `measure`
    # commands of the full model spread by 7.6% with 1 s, benchmarks/bench_cross_process.py)
    subnet_time_s: float = Field(default=3.0, gt=0, le=3600)
    block_s: float = Field(default=0.02, ge=0, le=60)
    max_remeasure: int = Field(default=1, ge=0, le=10)
    # which statistic of a record's runs stands for its latency everywhere (predictors, search,
    # re-measurement): "median", or "min" on a machine shared with other work, where the
    # least disturbed run is the reproducible figure
    statistic: Literal["median", "min"] = "median"
    # a layer record is timed in context: a chain of copies with distinct weights, each
    # feeding the next, whose weights together exceed this many times the device's
    # last-level cache, so each layer starts with its weights cold as inside the model (one
    # layer called alone keeps them cached: measured 45-52% fast at decode@144 on SmolLM2,
    # benchmarks/bench_layer_context.py); 0 times each layer alone
    in_context: float = Field(default=2.0, ge=0, le=64)
    max_chain: int = Field(default=8, ge=1, le=256)  # at most this many copies (each ONNX
    # export and each call grows with the chain)
    # every group times the full-width layer (a reference) beside its records, in every round;
    # each record is read run by run against the reference's runs at that moment, and whole
    # subnets are put on the layer profile's footing by it (`hwnas.profilers.footing`). A
    # shared VM's speed drifts by 10-40% within a minute; on one fresh cache this took the
    # held-out primary MAPE from 6.9% to 2.1% (benchmarks/bench_footing.py). false: read
    # every record as timed
    rescale_subnets: bool = True
    # what whole-subnet records are read against: "layer", the reference layer above (its
    # figure in the layer profile is the footing); "model", the full model timed beside every
    # subnet at each workload, its figure on the footing taken from the store's first
    # records (`hwnas.profilers.footing.model_figures`). A whole model and a layer chain can
    # feel the machine differently: OpenVINO's decode step here (50 held-out subnets, quiet:
    # 74% within +-10% against the layer, 100% against the full model). It costs one more
    # export (ONNX backends) and about twice the timing of every subnet group.
    subnet_reference: Literal["layer", "model"] = "layer"

    @model_validator(mode="after")
    def _runs_order(self) -> TimerSettings:
        if self.min_runs > self.max_runs:
            raise ValueError(f"min_runs={self.min_runs} is above max_runs={self.max_runs}")
        return self


class InterferenceSettings(_Frozen):
    """What counts as a busy machine and what to do then (see hwnas.profilers.interference)."""

    probe_s: float = Field(default=0.5, ge=0, le=60)  # read the machine this long before each
    # timed group; 0: no check before (records still carry their readings)
    max_others_cores: float = Field(default=0.25, ge=0, le=4096)  # CPU use of other processes
    # (cores; an idle machine reads about 0.01)
    max_others_cores_timing: float = Field(default=0.1, ge=0, le=4096)  # the same over a
    # record's timed window, where other work gets less CPU while we use every core (a
    # 30%-duty load read 0.28-0.32 cores between groups and 0.20 while timing; quiet 0.03)
    max_steal: float = Field(default=0.05, ge=0, le=1)  # share of CPU time stolen (VMs)
    on_busy: Literal["wait", "refuse", "proceed"] = "wait"  # wait: up to max_wait_s, then
    # time flagged; refuse: up to max_wait_s, then stop with an error; proceed: time flagged
    max_wait_s: float = Field(default=120.0, ge=0, le=86400)  # in all, for one run
    retry_s: float = Field(default=5.0, gt=0, le=3600)


class HardwareProfile(_Frozen):
    schema_version: Literal[1]
    name: str
    description: str = ""
    device: str = "cpu"
    backend: str = "torch"
    dtype: str = "fp32"
    threads: int = Field(default=0, ge=0, le=4096)
    batch: int = Field(default=1, ge=1, le=4096)
    workloads: Workloads
    primary: PrimaryMetric
    fingerprint: dict[str, object] = Field(default_factory=dict)  # pinned fields (YAML values)
    timer: TimerSettings = Field(default_factory=TimerSettings)
    interference: InterferenceSettings = Field(default_factory=InterferenceSettings)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"name '{v}' must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not DEVICE_RE.match(v):
            raise ValueError(f"device '{v}' is not one of: cpu, cuda, cuda:N")
        return "cuda:0" if v == "cuda" else v

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"backend '{v}' is not one of: {', '.join(BACKENDS)}")
        return v

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"dtype '{v}' is not one of: {', '.join(DTYPES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> HardwareProfile:
        if self.device_kind not in BACKEND_DEVICES[self.backend]:
            raise ValueError(f"backend '{self.backend}' cannot run on device '{self.device}'; "
                             f"it runs on: {', '.join(BACKEND_DEVICES[self.backend])}")
        if self.dtype not in BACKEND_DTYPES[self.backend]:
            raise ValueError(f"backend '{self.backend}' does not run dtype '{self.dtype}'; "
                             f"allowed: {', '.join(BACKEND_DTYPES[self.backend])}")
        if self.dtype == "int8" and self.device_kind != "cpu":
            raise ValueError("dtype 'int8' (dynamic quantization) runs on device 'cpu' only")
        p = self.primary
        if p.prefill_tokens not in self.workloads.prefill:
            raise ValueError(f"primary.prefill_tokens={p.prefill_tokens} is not among "
                             f"workloads.prefill {list(self.workloads.prefill)}; add it there")
        if p.decode_tokens and p.decode_context not in [w.context for w in self.workloads.decode]:
            raise ValueError(f"the primary metric needs decode at context {p.decode_context} "
                             f"(= prefill_tokens + decode_tokens // 2), which is not among "
                             f"workloads.decode; add '{{context: {p.decode_context}}}' there")
        return self

    @property
    def device_kind(self) -> str:
        return self.device.split(":")[0]

    @property
    def primary_workloads(self) -> tuple[str, str]:
        return f"prefill@{self.primary.prefill_tokens}", f"decode@{self.primary.decode_context}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
