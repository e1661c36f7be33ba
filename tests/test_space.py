"""Search space, subnet spec validation and the integer encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.errors import InputError
from hwnas.supernet import ArchInfo, SearchSpace, SubnetSpec

ARCH = ArchInfo(family="llama", num_layers=30, hidden_size=576, intermediate_size=1536,
                num_q_heads=9, num_kv_heads=3, head_dim=64, vocab_size=49152,
                tie_embeddings=True)
SPACE = SearchSpace.default(ARCH)


def test_default_widths_follow_the_issue():
    assert SPACE.width_choices == (768, 960, 1152, 1344, 1536)
    assert SPACE.kv_choices == (1, 2, 3)
    assert SPACE.full().num_layers == 30


@pytest.mark.parametrize("data, fragment", [
    ({"layers": [], "intermediate_size": [], "kv_heads": []}, "'layers' is empty"),
    ({"layers": [0, 1], "intermediate_size": [768], "kv_heads": [3, 3]}, "length mismatch"),
    ({"layers": [0], "intermediate_size": [700], "kv_heads": [3]}, "not among the choices"),
    ({"layers": [0], "intermediate_size": [768], "kv_heads": [4]}, "kv_heads[0] = 4"),
    ({"layers": [30], "intermediate_size": [768], "kv_heads": [3]}, "unknown layer index 30"),
    ({"layers": [2, 1], "intermediate_size": [768, 768], "kv_heads": [3, 3]}, "ascending"),
])
def test_validation_says_exactly_what_is_wrong(data, fragment):
    with pytest.raises(InputError) as e:
        SPACE.validate(SubnetSpec.from_dict(data))
    assert fragment in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    ('{"layers": [0]', "invalid JSON"),
    ('{"layers": [0], "intermediate_size": [768]}', "missing field(s) kv_heads"),
    ('{"layers": [0.5], "intermediate_size": [768], "kv_heads": [1]}', "list of integers"),
    ('{"layers": [0], "intermediate_size": [768], "kv_heads": [1], "x": 1}', "unknown field"),
    ("no/such/file.json", "neither inline JSON nor an existing file"),
])
def test_parse_errors(text, fragment):
    with pytest.raises(InputError) as e:
        SubnetSpec.parse(text)
    assert fragment in str(e.value)


def test_parse_from_file_and_inline(tmp_path):
    spec = SubnetSpec((0, 3), (768, 1536), (1, 3))
    f = tmp_path / "s.json"
    f.write_text(json.dumps(spec.to_dict()))
    assert SubnetSpec.parse(str(f)) == spec
    assert SubnetSpec.parse(spec.to_json()) == spec
    assert SubnetSpec.parse(spec.to_json()).key() == spec.key()


specs = st.lists(st.booleans(), min_size=30, max_size=30).filter(any).flatmap(
    lambda keep: st.tuples(
        st.just(tuple(i for i, k in enumerate(keep) if k)),
        st.lists(st.sampled_from(SPACE.width_choices), min_size=sum(keep), max_size=sum(keep)),
        st.lists(st.sampled_from(SPACE.kv_choices), min_size=sum(keep), max_size=sum(keep)),
    )).map(lambda t: SubnetSpec(t[0], tuple(t[1]), tuple(t[2])))


@settings(max_examples=200, deadline=None)
@given(specs)
def test_encode_decode_round_trip(spec):
    x = SPACE.encode(spec)
    lo, hi = SPACE.bounds()
    assert x.shape == (SPACE.n_var,) and (x >= lo).all() and (x <= hi).all()
    assert SPACE.decode(x) == spec


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=90, max_size=90))
def test_any_vector_in_bounds_decodes_to_a_valid_spec(genes):
    lo, hi = SPACE.bounds()
    x = np.clip(np.array(genes), lo, hi)
    if not any(x[0::3]):
        with pytest.raises(InputError):
            SPACE.decode(x)
        return
    spec = SPACE.decode(x)
    assert SPACE.validate(spec) is spec
    canon = SPACE.canonical(x)
    assert SPACE.decode(canon) == spec
    assert (SPACE.canonical(canon) == canon).all()


def test_sample_is_deterministic_and_valid():
    a = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    for s in a:
        SPACE.validate(s)


def test_bad_space_choices():
    with pytest.raises(InputError, match="width choices"):
        SearchSpace(ARCH, (0, 768))
    with pytest.raises(InputError, match="KV-group choices"):
        SearchSpace(ARCH, (768,), (0, 4))


def test_graded_sampling_spans_full_to_compressed():
    rng = np.random.default_rng(0)
    assert SPACE.sample_graded(rng, 0.0) == SPACE.full()
    deep = [SPACE.sample_graded(rng, 1.0) for _ in range(20)]
    for s in deep:
        SPACE.validate(s)
    assert np.mean([s.num_layers for s in deep]) < 20
    assert np.mean([np.mean(s.intermediate_size) for s in deep]) < 1000
