"""What else the machine is doing while we time: read it, wait for quiet, record it.

A `Snapshot` reads the kernel's counters (`/proc/stat`: CPU time of the whole machine,
steal; `/proc/loadavg`: runnable tasks; `getrusage`: this process's own CPU time). Two
snapshots give a `MachineLoad` over the window between them:

- `others_cores`: CPU time used by everything but this process, in cores (1.0 = one core
  busy the whole window): the interference that matters when we use the cores ourselves;
- `steal`: the share of CPU time the hypervisor gave to other guests;
- `runnable`: tasks ready to run at the end of the window besides ours;
- `load1`: the kernel's one-minute load average (for the reader; it lags).

`Quiet` applies a profile's `interference` settings before a timed group: it probes the
machine for `probe_s`, and while the machine is busy it waits (re-probing, saying why) up to
`max_wait_s`; then, by `on_busy`, it goes on with the group flagged (`wait`, `proceed`) or
raises `BusyMachine` (`refuse`). Every record carries the readings over its own window, so a
figure taken on a busy machine is never stored silently.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

from hwnas.errors import TryLater
from hwnas.hw_profiles.schema import InterferenceSettings


class BusyMachine(TryLater):
    """The machine stayed busier than the profile allows for longer than it may wait."""


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    busy_s: float  # CPU time of the whole machine, not idle / iowait / steal (seconds)
    total_s: float  # all CPU time, steal included
    steal_s: float
    self_s: float  # this process's CPU time (every thread)
    running: int  # runnable tasks now (/proc/loadavg), this process's own included
    load1: float


class LoadDict(TypedDict):
    window_s: float
    others_cores: float
    steal: float
    runnable: int
    load1: float
    busy: bool
    reasons: list[str]


@dataclass(frozen=True)
class MachineLoad:
    window_s: float
    others_cores: float
    steal: float
    runnable: int
    load1: float

    def reasons(self, s: InterferenceSettings, timing: bool = False) -> list[str]:
        """Why this window counts as busy under `s` (empty: quiet). `timing`: a window in
        which we timed on every core, where other work gets less CPU than it would take on
        an idle machine (its limit is `max_others_cores_timing`)."""
        out = []
        limit = s.max_others_cores_timing if timing else s.max_others_cores
        if self.others_cores > limit:
            out.append(f"other processes used {self.others_cores:.2f} cores (limit "
                       f"{limit:g}{' while timing' if timing else ''})")
        if self.steal > s.max_steal:
            out.append(f"the hypervisor stole {self.steal:.0%} of CPU time (limit "
                       f"{s.max_steal:.0%})")
        return out

    def to_dict(self, s: InterferenceSettings, timing: bool = True) -> LoadDict:
        """As a record stores it (a timed window by default)."""
        why = self.reasons(s, timing)
        d = asdict(self)
        return {"window_s": round(d["window_s"], 3),
                "others_cores": round(d["others_cores"], 3), "steal": round(d["steal"], 4),
                "runnable": self.runnable, "load1": self.load1, "busy": bool(why),
                "reasons": why}

    @classmethod
    def between(cls, a: Snapshot, b: Snapshot, own_threads: int = 1) -> MachineLoad:
        window = max(b.at - a.at, 1e-6)
        total = max(b.total_s - a.total_s, 1e-9)
        others = max(0.0, (b.busy_s - a.busy_s) - (b.self_s - a.self_s))
        return cls(window_s=window, others_cores=others / window,
                   steal=max(0.0, b.steal_s - a.steal_s) / total,
                   runnable=max(0, b.running - own_threads), load1=b.load1)


Reader = Callable[[], Snapshot]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_proc(root: Path = Path("/proc")) -> Snapshot:
    """The counters from /proc (Linux). Elsewhere: only this process's own time."""
    busy = total = steal = 0.0
    running, load1 = 0, 0.0
    try:
        fields = (root / "stat").read_text().splitlines()[0].split()[1:]
        v = [float(x) / _TICK for x in fields[:8]] + [0.0] * max(0, 8 - len(fields))
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        busy = user + nice + system + irq + softirq
        total = busy + idle + iowait + steal
        parts = (root / "loadavg").read_text().split()
        load1, running = float(parts[0]), int(parts[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return Snapshot(time.monotonic(), busy, total, steal, ru.ru_utime + ru.ru_stime, running,
                    load1)


def _stderr(msg: str) -> None:
    print(f"hwnas: {msg}", file=sys.stderr, flush=True)


_SHARED: dict[InterferenceSettings, Quiet] = {}


def quiet_for(settings: InterferenceSettings) -> Quiet:
    """This process's `Quiet` for `settings`: one command's groups and subnets share its
    waiting budget (`max_wait_s` is for the whole command, not for each timed group)."""
    if settings not in _SHARED:
        _SHARED[settings] = Quiet(settings)
    return _SHARED[settings]


class Quiet:
    """The profile's interference policy for one run: check before each group, read after.

    `say` receives the waiting messages (default: standard error; a call may pass its own);
    `reader` and `sleep` are for tests (a faked busy machine)."""

    def __init__(self, settings: InterferenceSettings, say: Callable[[str], None] | None = None,
                 reader: Reader = read_proc, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings, self.say, self.reader, self.sleep = settings, say, reader, sleep
        self.waited_s = 0.0

    def probe(self) -> MachineLoad:
        a = self.reader()
        self.sleep(self.settings.probe_s)
        return MachineLoad.between(a, self.reader())

    def before_group(self, what: str,
                     say: Callable[[str], None] | None = None) -> MachineLoad | None:
        """Probe; while busy, wait up to `max_wait_s` (overall for the run). Returns the last
        probe (None without probing); raises `BusyMachine` under `on_busy: refuse`."""
        s = self.settings
        tell = say or self.say or _stderr
        if s.probe_s <= 0:
            return None
        load = self.probe()
        why = load.reasons(s)
        if not why or s.on_busy == "proceed":
            return load
        waited = 0.0
        while why and self.waited_s < s.max_wait_s:
            tell(f"machine busy before {what}: {'; '.join(why)}; waiting (waited "
                 f"{self.waited_s:.0f} of {s.max_wait_s:g} s)")
            pause = min(s.retry_s, s.max_wait_s - self.waited_s)
            self.sleep(pause)
            load = self.probe()
            self.waited_s += pause + s.probe_s
            waited += pause + s.probe_s
            why = load.reasons(s)
        if why and s.on_busy == "refuse":
            raise BusyMachine(
                f"the machine stayed busy for {self.waited_s:.0f} s before {what}: "
                f"{'; '.join(why)}. Stop the other work and run again (what was measured is "
                "kept), or let it time anyway with --on-busy proceed (records are flagged "
                "busy)")
        if why:
            tell(f"machine still busy after waiting {waited:.0f} s; going on with {what}: "
                 "its records are flagged busy")
        return load

