"""Options that reject unknown names, and evaluation records stored before the rename."""

import json

import pytest

from hwnas.errors import InputError
from hwnas.evaluation.result import EvalResult, score_of
from hwnas.profilers.backends.fake import ENV, FakeSettings
from hwnas.store import Store


def test_fake_settings_reject_unknown_names(monkeypatch):
    assert FakeSettings.from_dict({"seed": 3, "crash_on": ["decode@64"]}) == \
        FakeSettings(seed=3, crash_on=("decode@64",))
    with pytest.raises(InputError, match="unknown setting.*nosie.*known: seed, noise"):
        FakeSettings.from_dict({"nosie": 0.2})
    monkeypatch.setenv(ENV, json.dumps({"overhead": 1.0}))
    with pytest.raises(InputError, match=r"\$HWNAS_FAKE_BACKEND.*overhead"):
        FakeSettings.from_env()


def test_export_filter_rejects_unknown_column(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(InputError, match="no column.*hardware.*columns: key, hw"):
        store.export_table("measurements", tmp_path / "m.csv", hardware="cpu")


def test_old_payload_with_accuracy_still_reads():
    old = {"task": "heldout_ppl", "metric": "perplexity", "accuracy": 21.5, "stderr": 0.1,
           "n": 4, "model": "fp", "subnet": "full", "predictions": [], "golds": [],
           "evaluator_version": 1, "extra": {}}
    r = EvalResult.from_dict(old)
    assert r.score == 21.5 and "accuracy" not in r.to_dict()
    assert score_of(old) == 21.5 and score_of(r.to_dict()) == 21.5
    assert EvalResult.from_dict(r.to_dict()) == r
