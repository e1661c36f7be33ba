"""The whole predictor pipeline through the real profilers with their deterministic fake
backend: profile layers, measure held-out and training subnets with `measure_subnet`, train,
report and predict. No timing hardware involved."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from hwnas.pipeline.measure import ensure_subnets
from hwnas.predictors import api
from hwnas.predictors import holdout as ho
from hwnas.store import Store


@pytest.fixture
def setup(tmp_path, hwnas_cache, fake_profile):
    from hwnas.supernet.supernet import Supernet

    fake_profile("fake-pred")
    config = LlamaConfig(hidden_size=64, intermediate_size=256, num_attention_heads=4,
                         num_key_value_heads=2, num_hidden_layers=6, vocab_size=256,
                         max_position_embeddings=256)
    config.save_pretrained(tmp_path / "tiny")
    sn = Supernet.from_config(config, name="tiny")
    t = api.resolve_target("fake-pred", str(tmp_path / "tiny"))
    assert t.arch_key == sn.arch.key()
    store = Store(hwnas_cache / "store.sqlite")
    yield t, sn, store
    store.close()


@pytest.mark.filterwarnings("ignore::hwnas.predictors.persist.FingerprintMismatchWarning")
def test_fake_backend_pipeline(setup):
    from hwnas.profilers import profile_layers

    t, sn, store = setup
    summary = profile_layers(t.hw, sn, store)
    assert summary.complete
    specs = ho.holdout_specs(t.space, 12) + ho.train_subnet_specs(t.space, 6)
    assert ensure_subnets(t, store, specs, supernet=sn) == 18
    assert ensure_subnets(t, store, specs, supernet=sn) == 0  # resumes: nothing left
    out = api.train(t, store)
    assert out.n_train_subnets == 6
    r = api.report(t, store, n_holdout=12, efficiency=False)
    main = r.latency["xgboost-layers"]["primary"]
    assert r.n_holdout == 12
    assert main["mape"] < 10.0 and main["spearman"] > 0.8
    row = api.predict(t, [t.space.full()])[0]
    assert row.latency_ms > 0 and row.in_domain
    latency = api.latency_function(t)  # what `supernet train --hw` samples its band by
    assert latency(t.space.full()) == pytest.approx(row.latency_ms)
    assert latency(t.space.uniform(width=t.space.width_choices[0])) < row.latency_ms
