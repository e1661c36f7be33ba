"""Property tests for the profile parser: valid profiles round-trip; anything else is an
`InputError` naming the source, never another exception."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.errors import InputError
from hwnas.hw_profiles import dump_profile, parse_profile
from hwnas.hw_profiles.schema import BACKEND_DEVICES, BACKEND_DTYPES

lengths = st.integers(min_value=1, max_value=8192)


@st.composite
def valid_profiles(draw):
    backend = draw(st.sampled_from(sorted(BACKEND_DTYPES)))
    kind = draw(st.sampled_from(BACKEND_DEVICES[backend]))
    dtypes = [d for d in BACKEND_DTYPES[backend] if not (d == "int8" and kind != "cpu")]
    prefill_tokens = draw(lengths)
    decode_tokens = draw(st.integers(min_value=0, max_value=512))
    prefill = draw(st.lists(lengths, max_size=4, unique=True))
    contexts = draw(st.lists(lengths, max_size=4, unique=True))
    prefill = list(dict.fromkeys([prefill_tokens, *prefill]))
    ctx = prefill_tokens + decode_tokens // 2
    contexts = list(dict.fromkeys([ctx, *contexts]))
    return {
        "schema_version": 1,
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)),
        "device": kind if kind == "cpu" else f"cuda:{draw(st.integers(0, 7))}",
        "backend": backend, "dtype": draw(st.sampled_from(dtypes)),
        "threads": draw(st.integers(0, 256)), "batch": draw(st.integers(1, 64)),
        "workloads": {"prefill": prefill, "decode": [{"context": c} for c in contexts]},
        "primary": {"prefill_tokens": prefill_tokens, "decode_tokens": decode_tokens},
    }


@settings(max_examples=150, deadline=None)
@given(valid_profiles())
def test_valid_profiles_parse_and_round_trip(data):
    hw = parse_profile(yaml.safe_dump(data))
    assert parse_profile(dump_profile(hw)) == hw
    assert hw.primary_workloads[0] in hw.workloads.names()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_profiles(), st.sampled_from(["name", "device", "backend", "dtype", "threads",
                                          "batch", "workloads", "primary", "timer",
                                          "schema_version", "extra"]), json_values)
def test_any_field_corruption_is_an_input_error(data, field, value):
    data = dict(data)
    data[field] = value
    try:
        hw = parse_profile(yaml.safe_dump(data), source="corrupt.yaml")
    except InputError as e:
        assert str(e).startswith("corrupt.yaml: ")
        return
    assert hw.name  # some corruptions are still valid profiles


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_profile_or_an_input_error(text):
    try:
        parse_profile(text, source="t.yaml")
    except InputError as e:
        assert str(e).startswith("t.yaml: ")
