"""`hwnas supernet train` on a tiny random model: loss falls, resume is exact, the overlap
guard refuses contaminated text, the subnet view equals extraction, the output directory
works as --model everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hwnas.errors import InputError
from hwnas.supernet.supernet import Supernet
from hwnas.supernet.train import TrainConfig, train
from hwnas.supernet.train.view import subnet_view
from tests.conftest import save_tiny_model_dir

DOCS = [" ".join(f"The {w} number {i * 13 + j} is written down here." for j in range(30))
        for i, w in enumerate(["red", "green", "blue", "small", "large", "odd"] * 4)]


@pytest.fixture
def tiny_dir(tmp_path):
    return save_tiny_model_dir(tmp_path / "base", heads=4, kv_heads=2, vocab=98, layers=4)


@pytest.fixture
def text_file(tmp_path, monkeypatch):
    """A clean training file, checked against a small overlap index (fast)."""
    import hwnas.datasets.overlap as overlap

    idx = overlap.build_index(["piqa"])
    monkeypatch.setattr(overlap, "evaluation_index", lambda names=None: idx)
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    return f


def _cfg(tiny_dir, out, text_file, **kw):
    base = dict(model=str(tiny_dir), out=str(out), steps=4, seq_len=64, batch=2, lr=3e-3,
                text=str(text_file), band=(1.05, 3.0), bf16="off", save_every=1,
                progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_view_equals_the_extracted_subnet(tiny_dir):
    sn = Supernet.load(str(tiny_dir))
    spec = sn.validate(type(sn.space.full())((0, 2, 3), (64, 128, 64), (1, 2, 1)))
    ids = torch.randint(0, 98, (2, 20))
    with torch.no_grad():
        want = sn.extract(spec)(ids).logits
        with subnet_view(sn.model, sn.arch, sn.importance, spec) as m:
            got = m(ids).logits
        full = sn.model(ids).logits
    assert (got - want).abs().max() < 1e-5
    assert len(sn.model.model.layers) == 4  # restored
    assert (sn.model(ids).logits - full).abs().max() == 0


def test_a_few_steps_lower_the_distillation_loss(tiny_dir, text_file, tmp_path):
    res = train(_cfg(tiny_dir, tmp_path / "o", text_file, steps=12, random_subnets=1))
    losses = json.loads((tmp_path / "o" / "hwnas_supernet.json").read_text())["losses"]
    sub = [d["smallest"] + d["random"] for d in losses]
    assert np.mean(sub[-3:]) < 0.8 * np.mean(sub[:3])
    assert res.steps == 12 and (tmp_path / "o" / "loss_curve.png").is_file()


def test_interrupted_and_resumed_equals_uninterrupted(tiny_dir, text_file, tmp_path):
    train(_cfg(tiny_dir, tmp_path / "a", text_file, steps=4, accum=2))

    def stop_after_two(p):
        if p.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tiny_dir, tmp_path / "b", text_file, steps=4, accum=2, save_every=3),
              progress=stop_after_two)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    train(_cfg(tiny_dir, tmp_path / "b", text_file, steps=4, accum=2, save_every=3),
          resume=True)
    a = load_file(str(tmp_path / "a" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-6
    la = json.loads((tmp_path / "a" / "hwnas_supernet.json").read_text())["losses"]
    lb = json.loads((tmp_path / "b" / "hwnas_supernet.json").read_text())["losses"]
    assert [d["total"] for d in la] == pytest.approx([d["total"] for d in lb], abs=1e-6)


def test_resume_refuses_other_settings_and_fresh_runs_refuse_a_used_folder(
        tiny_dir, text_file, tmp_path):
    train(_cfg(tiny_dir, tmp_path / "o", text_file, steps=1))
    with pytest.raises(InputError, match="pass --resume"):
        train(_cfg(tiny_dir, tmp_path / "o", text_file, steps=2))
    with pytest.raises(InputError, match="lr"):
        train(_cfg(tiny_dir, tmp_path / "o", text_file, steps=2, lr=1e-4), resume=True)


def test_overlap_guard_refuses_a_contaminated_file(tmp_path, monkeypatch, tiny_dir):
    import hwnas.datasets.overlap as overlap
    from hwnas.datasets.tasks import get_task

    idx = overlap.build_index(["piqa"])
    monkeypatch.setattr(overlap, "evaluation_index", lambda names=None: idx)
    item = get_task("piqa").load("validation")[5]
    leaked = item.requests[item.gold][0] + item.requests[item.gold][1]
    f = tmp_path / "leak.txt"
    f.write_text(DOCS[0] + "\n\nSome notes. " + leaked + " More words.\n\n" + DOCS[1])
    with pytest.raises(InputError, match=r"leak.txt#2.*'piqa'"):
        train(_cfg(tiny_dir, tmp_path / "o", f))
    assert idx.find(DOCS[0]) is None


def test_trained_directory_works_as_a_model(tiny_dir, text_file, tmp_path, capsys):
    from hwnas.cli import main

    out = tmp_path / "trained"
    assert main(["supernet", "train", "--model", str(tiny_dir), "--out", str(out),
                 "--steps", "2", "--seq-len", "64", "--batch", "2", "--text", str(text_file),
                 "--band", "1.05,3", "--bf16", "off", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] == 2
    base_imp = json.loads((out / "hwnas_importance.json").read_text())
    assert Supernet.load(str(out)).importance.to_dict() == base_imp
    spec = json.dumps({"layers": [0, 1, 3], "intermediate_size": [64, 128, 64],
                       "kv_heads": [1, 2, 2]})
    assert main(["stats", "--model", str(out), "--subnet", spec, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == 3
    assert main(["export", "--model", str(out), "--subnet", spec, "--out",
                 str(tmp_path / "e"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_logit_diff"] <= 1e-5
    assert main(["evaluate", "--model", str(out), "--subnet", spec, "--tasks", "piqa",
                 "--limit", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"]["piqa"]["n"] == 3


@pytest.mark.parametrize("argv, fragment", [
    (["--steps", "2", "--minutes", "1"], "exactly one of"),
    (["--steps", "2", "--device", "cuda"], "not available yet"),
    (["--steps", "2", "--band", "2,1"], "--band"),
])
def test_bad_train_options_are_one_line_errors(argv, fragment, capsys, tmp_path):
    from hwnas.cli import main

    code = main(["supernet", "train", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
