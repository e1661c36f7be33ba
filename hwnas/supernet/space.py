"""The search space (per-layer choices) and `SubnetSpec`, the value that names one subnetwork.

A subnet is written as JSON::

    {"layers": [kept base-layer indices, ascending],
     "intermediate_size": [MLP width per kept layer],
     "kv_heads": [KV groups per kept layer]}

Query heads are removed group by group with their KV group, so GQA stays valid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.errors import InputError
from hwnas.safe_io import loads_strict, read_text
from hwnas.supernet.arch import ArchInfo

DEFAULT_WIDTH_FRACTIONS = (0.5, 0.625, 0.75, 0.875, 1.0)
WIDTH_MULTIPLE = 64


@dataclass(frozen=True)
class SubnetSpec:
    layers: tuple[int, ...]
    intermediate_size: tuple[int, ...]
    kv_heads: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(v) for v in self.layers))
        object.__setattr__(self, "intermediate_size",
                           tuple(int(v) for v in self.intermediate_size))
        object.__setattr__(self, "kv_heads", tuple(int(v) for v in self.kv_heads))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, list[int]]:
        return {"layers": list(self.layers), "intermediate_size": list(self.intermediate_size),
                "kv_heads": list(self.kv_heads)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def key(self) -> str:
        """A canonical, stable key: the same subnet always gives the same key."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def is_uniform(self) -> bool:
        return len(set(self.intermediate_size)) <= 1 and len(set(self.kv_heads)) <= 1

    @classmethod
    def from_dict(cls, data: object, source: str = "subnet spec") -> SubnetSpec:
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object with keys 'layers', "
                             f"'intermediate_size' and 'kv_heads', got {type(data).__name__}")
        missing = [k for k in ("layers", "intermediate_size", "kv_heads") if k not in data]
        if missing:
            raise InputError(f"{source}: missing field(s) {', '.join(missing)}; a subnet is "
                             '{"layers": [...], "intermediate_size": [...], "kv_heads": [...]}')
        extra = sorted(set(data) - {"layers", "intermediate_size", "kv_heads"})
        if extra:
            raise InputError(f"{source}: unknown field(s) {', '.join(extra)}; allowed: layers, "
                             "intermediate_size, kv_heads")
        values = {}
        for name in ("layers", "intermediate_size", "kv_heads"):
            v = data[name]
            if not isinstance(v, list) or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in v):
                raise InputError(f"{source}: field '{name}' must be a list of integers, "
                                 f"got {json.dumps(v)[:80]}")
            values[name] = v
        return cls(tuple(values["layers"]), tuple(values["intermediate_size"]),
                   tuple(values["kv_heads"]))

    @classmethod
    def parse(cls, text_or_path: str) -> SubnetSpec:
        """Read a spec from an inline JSON string or from a JSON file path."""
        text = text_or_path.strip()
        source = "subnet spec"
        if not text.startswith("{"):
            path = Path(text_or_path).expanduser()
            if not path.is_file():
                raise InputError(f"subnet spec: '{text_or_path}' is neither inline JSON nor an "
                                 "existing file; pass a JSON object or a path to one")
            source = f"subnet spec {path}"
            text = read_text(path, "subnet spec", max_bytes=1 << 20)
        try:
            data = loads_strict(text, source)
        except InputError as e:
            raise InputError(f"{e}; a subnet is "
                             '{"layers": [...], "intermediate_size": [...], "kv_heads": [...]}'
                             ) from None
        return cls.from_dict(data, source)


def round_width(value: float, multiple: int = WIDTH_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


@dataclass(frozen=True)
class SearchSpace:
    """Per-layer choices: keep/drop, MLP width from `width_choices`, KV groups 1..max."""

    arch: ArchInfo
    width_choices: tuple[int, ...]
    kv_choices: tuple[int, ...] = field(default=())
    min_layers: int = 1

    def __post_init__(self) -> None:
        widths = tuple(sorted({int(w) for w in self.width_choices}))
        if not widths or widths[0] <= 0 or widths[-1] > self.arch.intermediate_size:
            raise InputError(f"width choices {list(self.width_choices)} must be positive and at "
                             f"most the model's intermediate size {self.arch.intermediate_size}")
        object.__setattr__(self, "width_choices", widths)
        kv = tuple(sorted({int(k) for k in self.kv_choices})) or tuple(
            range(1, self.arch.num_kv_heads + 1))
        if kv[0] < 1 or kv[-1] > self.arch.num_kv_heads:
            raise InputError(f"KV-group choices {list(kv)} must lie in 1.."
                             f"{self.arch.num_kv_heads}")
        object.__setattr__(self, "kv_choices", kv)
        if not 1 <= self.min_layers <= self.arch.num_layers:
            raise InputError(f"min_layers={self.min_layers} must lie in 1..{self.arch.num_layers}")

    @classmethod
    def default(cls, arch: ArchInfo, fractions: Sequence[float] = DEFAULT_WIDTH_FRACTIONS,
                widths: Sequence[int] | None = None) -> SearchSpace:
        if widths is None:
            widths = [arch.intermediate_size if f >= 1.0 else
                      round_width(arch.intermediate_size * f) for f in fractions]
        return cls(arch, tuple(widths))

    # ---- specs -------------------------------------------------------------------------
    def full(self) -> SubnetSpec:
        n = self.arch.num_layers
        return SubnetSpec(tuple(range(n)), (self.width_choices[-1],) * n,
                          (self.kv_choices[-1],) * n)

    def uniform(self, width: int | None = None, kv_heads: int | None = None,
                drop: Sequence[int] = ()) -> SubnetSpec:
        layers = tuple(i for i in range(self.arch.num_layers) if i not in set(drop))
        w = self.width_choices[-1] if width is None else width
        k = self.kv_choices[-1] if kv_heads is None else kv_heads
        spec = SubnetSpec(layers, (w,) * len(layers), (k,) * len(layers))
        self.validate(spec)
        return spec

    def validate(self, spec: SubnetSpec, source: str = "subnet spec") -> SubnetSpec:
        n = self.arch.num_layers
        if not spec.layers:
            raise InputError(f"{source}: 'layers' is empty; keep at least "
                             f"{self.min_layers} of the model's {n} layers")
        if len(spec.layers) < self.min_layers:
            raise InputError(f"{source}: keeps {len(spec.layers)} layers; the space needs at "
                             f"least {self.min_layers}")
        bad = [i for i in spec.layers if not 0 <= i < n]
        if bad:
            raise InputError(f"{source}: unknown layer index {bad[0]} in 'layers'; the model has "
                             f"layers 0..{n - 1}")
        if list(spec.layers) != sorted(set(spec.layers)):
            raise InputError(f"{source}: 'layers' must be ascending without repeats, got "
                             f"{list(spec.layers)}")
        for name, values, choices in (("intermediate_size", spec.intermediate_size,
                                       self.width_choices),
                                      ("kv_heads", spec.kv_heads, self.kv_choices)):
            if len(values) != len(spec.layers):
                raise InputError(f"{source}: length mismatch: '{name}' has {len(values)} values "
                                 f"but 'layers' keeps {len(spec.layers)}; give one per kept "
                                 "layer")
            for pos, v in enumerate(values):
                if v not in choices:
                    raise InputError(f"{source}: {name}[{pos}] = {v} (layer "
                                     f"{spec.layers[pos]}) is not among the choices "
                                     f"{list(choices)}")
        return spec

    def sample(self, rng: np.random.Generator, keep_prob: float = 0.8) -> SubnetSpec:
        while True:
            keep = rng.random(self.arch.num_layers) < keep_prob
            if keep.sum() >= self.min_layers:
                break
        layers = tuple(int(i) for i in np.flatnonzero(keep))
        widths = tuple(int(self.width_choices[j])
                       for j in rng.integers(0, len(self.width_choices), len(layers)))
        kvs = tuple(int(self.kv_choices[j])
                    for j in rng.integers(0, len(self.kv_choices), len(layers)))
        return SubnetSpec(layers, widths, kvs)

    def sample_graded(self, rng: np.random.Generator, level: float,
                      drop_weights: Sequence[float] | None = None) -> SubnetSpec:
        """A subnet at compression `level` in [0, 1] (0: the full model): drops each layer with
        probability level/2 and moves widths and KV groups down by Binomial(choices - 1,
        level). Spreads samples from the full model down to heavily compressed ones.

        With `drop_weights` (one per layer), the number of dropped layers is drawn the same
        way, Binomial(layers, level/2), but which layers go is drawn without replacement in
        proportion to the weights, so layers that matter little are dropped first."""
        n = self.arch.num_layers
        while True:
            if drop_weights is None:
                keep = rng.random(n) >= 0.5 * level
            else:
                p = np.asarray(drop_weights, dtype=float)
                drop = min(int(rng.binomial(n, 0.5 * level)), int((p > 0).sum()))
                keep = np.ones(n, dtype=bool)
                keep[rng.choice(n, size=drop, replace=False, p=p / p.sum())] = False
            if keep.sum() >= self.min_layers:
                break
        return self.graded_subnet(rng, tuple(int(i) for i in np.flatnonzero(keep)), level)

    def graded_subnet(self, rng: np.random.Generator, layers: tuple[int, ...],
                      p: float) -> SubnetSpec:
        """`layers` kept, each one's width and KV groups moved down from the full ones by
        Binomial(choices - 1, p)."""
        nw, nk = len(self.width_choices), len(self.kv_choices)
        widths = tuple(int(self.width_choices[nw - 1 - j])
                       for j in rng.binomial(nw - 1, p, len(layers)))
        kvs = tuple(int(self.kv_choices[nk - 1 - j])
                    for j in rng.binomial(nk - 1, p, len(layers)))
        return SubnetSpec(layers, widths, kvs)

    # ---- integer encoding for pymoo ------------------------------------------------------
    # Three genes per base layer: keep (0/1), width index, KV-choice index. Genes of a dropped
    # layer do not matter; `encode` writes them as the largest choice (canonical form).
    @property
    def n_var(self) -> int:
        return 3 * self.arch.num_layers

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.arch.num_layers
        xl = np.zeros(3 * n, dtype=int)
        xu = np.array([1, len(self.width_choices) - 1, len(self.kv_choices) - 1] * n, dtype=int)
        return xl, xu

    def encode(self, spec: SubnetSpec) -> np.ndarray:
        self.validate(spec)
        n = self.arch.num_layers
        x = np.array([0, len(self.width_choices) - 1, len(self.kv_choices) - 1] * n, dtype=int)
        for layer, w, k in zip(spec.layers, spec.intermediate_size, spec.kv_heads, strict=True):
            x[3 * layer] = 1
            x[3 * layer + 1] = self.width_choices.index(w)
            x[3 * layer + 2] = self.kv_choices.index(k)
        return x

    def decode(self, x: Sequence[int] | np.ndarray) -> SubnetSpec:
        v = np.asarray(x).astype(int).ravel()
        if v.size != self.n_var:
            raise InputError(f"encoding has {v.size} genes; this space needs {self.n_var}")
        lo, hi = self.bounds()
        if (v < lo).any() or (v > hi).any():
            raise InputError("encoding has a gene outside the space's bounds")
        kept = [i for i in range(self.arch.num_layers) if v[3 * i] == 1]
        spec = SubnetSpec(tuple(kept),
                          tuple(self.width_choices[v[3 * i + 1]] for i in kept),
                          tuple(self.kv_choices[v[3 * i + 2]] for i in kept))
        return self.validate(spec)

    def canonical(self, x: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.encode(self.decode(x))

    def to_dict(self) -> dict[str, int | list[int]]:
        return {"num_layers": self.arch.num_layers, "width_choices": list(self.width_choices),
                "kv_choices": list(self.kv_choices), "min_layers": self.min_layers,
                "q_heads_per_kv_group": self.arch.q_per_kv, "n_var": self.n_var,
                "size": self.size()}

    def size(self) -> int:
        """Number of distinct subnets (every non-empty layer subset, any choices)."""
        per_layer = len(self.width_choices) * len(self.kv_choices)
        n = self.arch.num_layers
        from math import comb
        return sum(comb(n, k) * per_layer ** k for k in range(self.min_layers, n + 1))
