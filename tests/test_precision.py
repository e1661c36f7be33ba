"""bf16-checked scoring: close calls are re-scored exactly, the mode keys the cache, and the
settings resolve (or fail) clearly."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_model
from test_evaluation import items, make_tokenizer, write_jsonl

from hwnas.datasets.tasks import Item, prepare
from hwnas.errors import InputError
from hwnas.evaluation import cache_key, evaluate, from_model, precision
from hwnas.evaluation.precision import checked_loglikelihoods, close_call, resolve
from hwnas.evaluation.scoring import loglikelihoods
from hwnas.store import Store


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return tiny_model(vocab=320, layers=2)


def two(scores: list[float], lens: tuple[int, int] = (4, 4)) -> tuple[Item, list[float]]:
    return Item((("q", " a"), ("q", " b")), 0, ("a" * lens[0], "b" * lens[1])), scores


def test_close_call_is_relative_to_the_scores_and_follows_the_metric():
    assert close_call("acc", *two([-50.0, -50.3]))  # 0.3 < 1% of 50
    assert not close_call("acc", *two([-50.0, -51.0]))
    assert not close_call("acc", *two([-5.0, -5.3]))  # 0.3 > 1% of 5
    # acc_norm compares per character: -50/10 = -5.0 against -26/5 = -5.2 is not close,
    # although the raw log-likelihoods are 24 nats apart the other way
    item, ll = two([-50.0, -26.0], (10, 5))
    assert close_call("acc_norm", item, [-50.0, -25.04])
    assert not close_call("acc_norm", item, ll)
    assert not close_call("acc", Item((("q", " a"),), 0, ("a",)), [-3.0])  # one choice


def test_every_close_item_is_rescored_exactly_and_only_those(model, tokenizer):
    its = items()
    exact = loglikelihoods(model, tokenizer, its)
    fast = loglikelihoods(model, tokenizer, its, bf16=True)
    assert fast != exact  # bf16 really ran
    for margin, want in ((0.0, fast), (math.inf, exact)):
        got, n = checked_loglikelihoods(model, tokenizer, its, ("acc", "acc_norm"),
                                        batch_tokens=256, margin=margin)
        assert got == want and n == (0 if margin == 0 else len(its))
    got, n = checked_loglikelihoods(model, tokenizer, its, ("acc", "acc_norm"),
                                    batch_tokens=256, margin=0.05)
    close = [any(close_call(m, it, f, 0.05) for m in ("acc", "acc_norm"))
             for it, f in zip(its, fast, strict=True)]
    assert n == sum(close)
    for c, g, e, f in zip(close, got, exact, fast, strict=True):
        assert g == (e if c else f)


def test_resolve_settings(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert resolve("auto", "fp32") == "bf16-checked"
    assert resolve("auto", "bf16") == "exact"
    assert resolve("exact", "fp32") == "exact"
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert resolve("auto", "fp32") == "exact"
    assert resolve("bf16-checked", "fp32") == "bf16-checked"  # asked for: slow but allowed
    with pytest.raises(InputError, match="--precision 'half': choose one of auto, exact"):
        resolve("half", "fp32")
    with pytest.raises(InputError, match="bf16-checked with --dtype bf16.*--precision exact"):
        resolve("bf16-checked", "bf16")


def test_the_mode_keys_the_cache_and_is_recorded(tmp_path, model, tokenizer):
    task = write_jsonl(tmp_path / "mini.jsonl", [
        {"context": "The cat sat on the", "choices": ["mat", "log", "stone"], "gold": 0},
        {"context": "Question: which is heavier?\nAnswer:", "choices": ["a stone", "a feather"],
         "gold": 0}])
    target = from_model(model, tokenizer, "tinyfp")
    chosen = prepare(task)
    assert cache_key(target, chosen) == cache_key(target, chosen, "exact")
    assert cache_key(target, chosen, "bf16-checked") != cache_key(target, chosen)
    with Store(tmp_path / "store.sqlite") as store:
        ex = evaluate(target, None, [task], store=store, precision="exact")[task]
        ch = evaluate(target, None, [task], store=store, precision="bf16-checked")[task]
        assert len(store.evaluations(model="tinyfp", task="mini")) == 2
        again = evaluate(target, None, [task], store=store, precision="bf16-checked")[task]
    assert ex.extra["precision"] == "exact" and "rechecked" not in ex.extra
    assert ch.extra["precision"] == "bf16-checked" and 0 <= ch.extra["rechecked"] <= 2
    assert again.extra["cached"] and again.predictions == ch.predictions


def test_perplexity_tasks_always_score_exactly():
    from hwnas.evaluation.evaluator import task_scoring

    ppl = prepare("heldout_ppl", limit=1)
    assert task_scoring(ppl, "bf16-checked", 512).precision == "exact"
