"""Bounds relative to the full model (`--min-speedup 1.3`, `--min-smaller 1.2`) made absolute:
the full model's latency from the profile's layer-composed predictor (the very one a run
trains from the same measurements) and its exact parameter count.

When the named run exists already (a resume), its own stored predictor gives the bounds, so
they come out as when it started; for a new run the predictor is trained in a temporary folder
(the run then trains the same one from the same measurements)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hwnas.errors import InputError


def relative_bounds(hw: str, model: str, store: Any, *, min_speedup: float | None = None,
                    min_smaller: float | None = None, seed: int = 0,
                    run: str | None = None) -> tuple[float | None, float | None]:
    """(max_latency_ms, max_params) for a subnet at least `min_speedup` times faster and
    `min_smaller` times smaller than the full model (None where not asked)."""
    for flag, v in (("--min-speedup", min_speedup), ("--min-smaller", min_smaller)):
        if v is not None and not v > 0:
            raise InputError(f"{flag} {v}: give a positive ratio to the full model, e.g. 1.3")
    if min_speedup is None and min_smaller is None:
        return None, None
    from hwnas.predictors.api import resolve_target
    from hwnas.search.evaluators import analytic

    t = resolve_target(hw, model)
    profile = t.hw
    full = t.space.full()
    max_lat = max_params = None
    if min_speedup is not None:
        from hwnas.search.real import latency_bundle
        from hwnas.search.run import latency_dir
        from hwnas.search.surrogates import predicted_latency

        started = run is not None and store.run_config(run) is not None
        with tempfile.TemporaryDirectory() as tmp:
            folder = latency_dir(run) if started and run is not None else Path(tmp)
            bundle = latency_bundle(profile, model, store, folder, seed)
            max_lat = float(predicted_latency(bundle, [full])[0][0]) / min_speedup
    if min_smaller is not None:
        ctx = profile.primary.prefill_tokens + profile.primary.decode_tokens
        max_params = analytic(t.space.arch, full, profile.dtype, ctx)["params"] / min_smaller
    return max_lat, max_params


def tighter(a: float | None, b: float | None) -> float | None:
    """The tighter of two upper bounds (None: unbounded)."""
    return b if a is None else a if b is None else min(a, b)
