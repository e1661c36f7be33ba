"""What a profile run measures: one `Job` per (thing, workload), grouped by workload.

Each workload group holds every layer variant (MLP width x KV groups of the search space)
and the fixed parts (embedding; final norm + LM head), timed interleaved. The primary
metric's two workloads come first, so a run cut short by its budget still has what search
needs; the rest follow from cheap to dear.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.hw_profiles.schema import HardwareProfile
from hwnas.hw_profiles.workload import Workload
from hwnas.profilers.backends.base import threads_for
from hwnas.profilers.measurement import TimingSpec
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace


@dataclass(frozen=True)
class Job:
    kind: str  # "layer" | "embed" | "head"
    workload: Workload
    spec: TimingSpec


def workloads(hw: HardwareProfile) -> list[Workload]:
    all_w = ([Workload.prefill(n, hw.batch) for n in hw.workloads.prefill]
             + [Workload.decode(d.context, hw.batch) for d in hw.workloads.decode])
    primary = hw.primary_workloads
    first = [w for name in primary for w in all_w if w.name == name]
    rest = sorted((w for w in all_w if w.name not in primary), key=lambda w: w.cost)
    return first + rest


def base_spec(hw: HardwareProfile, arch: ArchInfo, target: str, w: Workload, *,
              width: int | None = None, kv_heads: int | None = None,
              subnet: str | None = None) -> TimingSpec:
    return TimingSpec(target=target, phase=w.phase, batch=hw.batch, tokens=w.tokens,
                      context=w.context, dtype=hw.dtype, backend=hw.backend, device=hw.device,
                      threads=threads_for(hw), arch=arch.key(), width=width, kv_heads=kv_heads,
                      subnet=subnet)


def plan(hw: HardwareProfile, arch: ArchInfo, space: SearchSpace) -> list[list[Job]]:
    """Jobs grouped by workload, in the order they run. In a group the embedding and the
    head come first, then the layers from the full one (the group's reference) down: a
    budget that runs out while a group is being prepared still leaves the parts every
    composed figure needs, and the reference the others are read against."""
    groups = []
    for w in workloads(hw):
        jobs = [Job("embed", w, base_spec(hw, arch, "embed", w)),
                Job("head", w, base_spec(hw, arch, "head", w))]
        jobs += [Job("layer", w, base_spec(hw, arch, "layer", w, width=width, kv_heads=kv))
                 for width in space.width_choices[::-1] for kv in space.kv_choices[::-1]]
        groups.append(jobs)
    return groups
