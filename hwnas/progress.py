"""`ProgressEvent`: the one value that long work reports as it goes, and `Progress`, the
callback that receives it. The library only emits events; the CLI turns them into bars and
lines (nothing here prints)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` units of `stage` (0 total: not known yet); `what` names the current
    unit (a layer variant, a task, a subnet); `info` carries stage-specific figures (a search
    iteration's hypervolume, an evaluation's values)."""

    stage: str
    done: int = 0
    total: int = 0
    what: str = ""
    info: Mapping[str, object] = field(default_factory=dict)


Progress = Callable[[ProgressEvent], None]
