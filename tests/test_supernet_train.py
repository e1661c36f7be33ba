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


@pytest.fixture
def peaked_dir(tmp_path):
    """A tiny model whose weights are scaled up tenfold: its next-token distributions are
    peaked, so its subnets start far from it (mean KL about 1.4 nats; a tiny model at its
    initial scale predicts nearly uniform distributions, 0.006 nats apart)."""
    from tests.conftest import char_tokenizer, tiny_model

    model = tiny_model(heads=4, kv_heads=2, vocab=98, layers=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(10.0)
    path = tmp_path / "peaked"
    model.save_pretrained(path)
    char_tokenizer().save_pretrained(path)
    return path


def _subnet_gap(base_dir, model_dir, n=6):
    """Mean KL from the base model to `n` fixed random subnets of `model_dir`, on text that
    is not in the training file."""
    from hwnas.supernet.train.loop import kd_loss, teacher_targets

    base, sn = Supernet.load(str(base_dir)), Supernet.load(str(model_dir))
    ids = base.tokenizer("A purple number 4 is kept here, and the grey one 97 is not.",
                         return_tensors="pt").input_ids
    rng = np.random.default_rng(0)
    specs = [base.space.sample(rng) for _ in range(n)]
    with torch.no_grad():
        target = teacher_targets(base.model(ids).logits, 1.0)
        return float(np.mean([float(kd_loss(sn.extract(s)(ids).logits, target)) for s in specs]))


def test_a_few_steps_lower_the_distillation_loss(peaked_dir, text_file, tmp_path):
    res = train(_cfg(peaked_dir, tmp_path / "o", text_file, steps=12, random_subnets=1,
                     sampler="uniform"))
    before, after = _subnet_gap(peaked_dir, peaked_dir), _subnet_gap(peaked_dir, tmp_path / "o")
    assert after < 0.9 * before  # measured 1.37 -> 1.13
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
    (["--steps", "2", "--device", "tpu"], "--device tpu"),
    (["--steps", "2", "--hw", "cpu-torch-fp32"], "--hw: no trained latency predictor"),
    (["--steps", "2", "--device", "cuda:99"], "--device cuda:99"),
    (["--steps", "2", "--band", "2,1"], "--band"),
    (["--steps", "2", "--schedule", "linear"], "--schedule"),
    (["--steps", "2", "--snapshot-minutes", "ten"], "--snapshot-minutes"),
    (["--steps", "2", "--snapshot-minutes", "0"], "--snapshot-minutes"),
])
def test_bad_train_options_are_one_line_errors(argv, fragment, capsys, tmp_path):
    from hwnas.cli import main

    code = main(["supernet", "train", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_kd_loss_is_the_kl_divergence_with_its_gradient():
    import torch.nn.functional as F

    from hwnas.supernet.train.loop import kd_loss, teacher_targets

    g = torch.Generator().manual_seed(0)
    s = (torch.randn(2, 5, 50, generator=g) * 3).requires_grad_(True)
    t = torch.randn(2, 5, 50, generator=g) * 3
    for temp in (1.0, 2.0):
        want = F.kl_div(F.log_softmax(s / temp, -1), F.log_softmax(t / temp, -1),
                        log_target=True, reduction="none").sum(-1).mean() * temp ** 2
        got = kd_loss(s, teacher_targets(t, temp))
        assert float(got) == pytest.approx(float(want), rel=1e-5)
        gw, = torch.autograd.grad(want, s)
        gg, = torch.autograd.grad(got, s)
        assert (gw - gg).abs().max() < 1e-6
    assert float(kd_loss(t, teacher_targets(t, 1.0))) == pytest.approx(0.0, abs=1e-5)


def test_cosine_schedule_warms_up_then_decays_to_the_floor_at_the_budget():
    cfg = TrainConfig(model="m", out="o", steps=100, lr=1e-3, warmup=10, schedule="cosine",
                      min_lr_ratio=0.1)
    lrs = [cfg.learning_rate(s, 0, 0.0) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[100] == pytest.approx(1e-4)
    assert lrs[55] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.55))))
    by_time = TrainConfig(model="m", out="o", minutes=10, lr=1e-3, schedule="cosine")
    assert by_time.learning_rate(5, 0, 300.0) == pytest.approx(0.55e-3)
    assert TrainConfig(model="m", out="o", steps=5, lr=2e-3).learning_rate(3, 0, 0) == 2e-3


def test_snapshot_is_a_model_directory_published_mid_run(tiny_dir, text_file, tmp_path,
                                                         monkeypatch):
    import hwnas.supernet.train.loop as loop
    from hwnas.supernet.train.loop import snapshot_dir

    clock = iter(range(0, 10_000, 30))  # every perf_counter call advances 30 s
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
    out = tmp_path / "o"
    train(_cfg(tiny_dir, out, text_file, steps=6, snapshot_minutes=(1.0,)))
    snap = out / snapshot_dir(1.0)
    info = json.loads((snap / "hwnas_supernet.json").read_text())
    assert 0 < info["steps"] < 6 and info["seconds"] >= 60
    sn = Supernet.load(str(snap))
    assert sn.importance.to_dict() == Supernet.load(str(out)).importance.to_dict()
    ids = torch.randint(0, 98, (1, 12))
    with torch.no_grad():
        assert (sn.model(ids).logits - Supernet.load(str(out)).model(ids).logits).abs().max() > 0


def test_allocator_setting_is_idempotent_and_harmless():
    from hwnas.supernet.train.allocator import reuse_freed_memory

    first = reuse_freed_memory()
    assert reuse_freed_memory() == first
    x = torch.ones(64, 1024, 1024)  # 256 MB, above the default mmap threshold
    assert float(x.sum()) == 64 * 1024 * 1024


def test_influence_sampler_drops_low_influence_layers_first():
    from hwnas.supernet.space import SearchSpace
    from hwnas.supernet.train.sampler import BandSampler, influence_weights
    from tests.conftest import tiny_model

    sn = Supernet.from_model(tiny_model("llama", layers=6), None)
    space = SearchSpace.default(sn.arch)
    weights = influence_weights([1.0, 0.05, 0.02, 0.5, 0.03, 0.3])
    rng = np.random.default_rng(0)
    dropped = np.zeros(6)
    for _ in range(400):
        spec = space.sample_graded(rng, 0.8, weights)
        dropped[[i for i in range(6) if i not in spec.layers]] += 1
    assert dropped[2] > dropped[1] > dropped[3] > dropped[0]
    assert dropped[2] > 5 * dropped[0]
    sampler = BandSampler(space, (1.05, 3.0), lambda s: float(sum(s.intermediate_size)),
                          weights)
    rng = np.random.default_rng(1)
    specs = [sampler.random(rng) for _ in range(100)]
    assert sum(0 not in s.layers for s in specs) < sum(2 not in s.layers for s in specs) / 5


def test_runs_made_before_the_sampler_setting_resume_with_uniform_drops():
    old = TrainConfig(model="m", out="o", steps=3).to_dict()
    del old["sampler"]
    assert TrainConfig.from_dict(old).sampler == "uniform"
    assert TrainConfig(model="m", out="o", steps=3).sampler == "influence"


def test_ranked_sampler_nests_depth_in_influence_order():
    from hwnas.supernet.importance import influence_order
    from hwnas.supernet.space import SearchSpace
    from hwnas.supernet.train.sampler import BandSampler
    from tests.conftest import tiny_model

    sn = Supernet.from_model(tiny_model("llama", layers=6), None)
    space = SearchSpace.default(sn.arch)
    order = influence_order([1.0, 0.05, 0.02, 0.5, 0.03, 0.3])
    assert order == (2, 4, 1, 5, 3, 0)
    sampler = BandSampler(space, (1.05, 3.0), lambda s: float(sum(s.intermediate_size)),
                          drop_order=order)
    rng = np.random.default_rng(0)
    specs = [sampler.random(rng) for _ in range(200)]
    for s in specs:  # a subnet that drops k layers drops the k least influential
        dropped = [i for i in range(6) if i not in s.layers]
        assert sorted(dropped) == sorted(order[:len(dropped)])
    assert len({6 - s.num_layers for s in specs}) >= 2
    widths = np.concatenate([s.intermediate_size for s in specs])
    assert np.mean(widths == space.width_choices[-1]) > 0.6  # widths mostly full


def test_a_ranked_run_publishes_its_layer_order_and_a_search_cuts_by_it(tiny_dir, text_file,
                                                                       tmp_path):
    from hwnas.supernet.importance import Importance

    train(_cfg(tiny_dir, tmp_path / "r", text_file, steps=1, sampler="ranked"))
    base = Supernet.load(str(tiny_dir))
    trained = Supernet.load(str(tmp_path / "r"))
    assert trained.importance.layer_order == base.layer_order()
    assert sorted(trained.layer_order() or ()) == [0, 1, 2, 3]
    d = trained.importance.to_dict()
    assert Importance.from_dict(d) == trained.importance
    del d["layer_order"]  # files written before the field load without it
    assert Importance.from_dict(d).layer_order is None


def test_alternate_rule_trains_the_full_network_then_one_subnet(tiny_dir, text_file, tmp_path):
    res = train(_cfg(tiny_dir, tmp_path / "alt", text_file, steps=4, rule="alternate",
                     sampler="uniform"))
    losses = json.loads((tmp_path / "alt" / "hwnas_supernet.json").read_text())["losses"]
    assert [d["full"] is not None for d in losses] == [True, False, True, False]
    assert [d["random"] is not None for d in losses] == [False, True, False, True]
    assert all(d["smallest"] is None for d in losses)
    assert res.steps == 4 and (tmp_path / "alt" / "loss_curve.png").is_file()
    with pytest.raises(InputError, match="--rule"):
        _cfg(tiny_dir, tmp_path / "x", text_file, rule="zigzag")


def test_lora_learns_adapters_only_and_publishes_a_plain_model_of_the_merged_weights(
        tiny_dir, peaked_dir, text_file, tmp_path):
    from transformers import AutoModelForCausalLM

    from hwnas.supernet.train.lora import adapters_off, add_adapters, merged_state_dict

    # the adapted model is the base model until B moves (B starts at zero)
    sn = Supernet.load(str(tiny_dir))
    ids = torch.randint(0, 98, (2, 20))
    with torch.no_grad():
        base = sn.model(ids).logits
        names = add_adapters(sn.model, rank=4, alpha=8.0)
        assert len(names) == 4 * 7 and (sn.model(ids).logits - base).abs().max() == 0
        for m in sn.model.modules():
            if hasattr(m, "lora_b"):
                m.lora_b.normal_(0, 0.05)
        moved = sn.model(ids).logits
        with adapters_off(sn.model):
            assert (sn.model(ids).logits - base).abs().max() == 0
    assert (moved - base).abs().max() > 1e-3
    assert all(not p.requires_grad for n, p in sn.model.named_parameters() if "lora_" not in n)
    sd = merged_state_dict(sn.model)
    assert not any("lora_" in k or ".base." in k for k in sd)

    # a run: the subnets' distillation gap falls, only adapters are checkpointed, the
    # published directory loads as a stock model whose logits are the adapted model's
    res = train(_cfg(peaked_dir, tmp_path / "o", text_file, steps=12, random_subnets=1,
                     sampler="uniform", lora=True, lora_rank=8, lora_alpha=16.0, lr=3e-2))
    before, after = _subnet_gap(peaked_dir, peaked_dir), _subnet_gap(peaked_dir, tmp_path / "o")
    assert after < 0.95 * before  # measured 1.37 -> 1.20
    ck = load_file(str(tmp_path / "o" / "checkpoint" / "model.safetensors"))
    assert ck and all("lora_" in k for k in ck)
    assert res.steps == 12
    out = AutoModelForCausalLM.from_pretrained(tmp_path / "o").eval()
    adapted = Supernet.load(str(peaked_dir))
    add_adapters(adapted.model, rank=8, alpha=16.0)
    adapted.model.load_state_dict(ck, strict=False)
    spec = adapted.validate(type(adapted.space.full())((0, 2, 3), (64, 128, 64), (1, 2, 1)))
    trained = Supernet.load(str(tmp_path / "o"))
    with torch.no_grad():
        assert (out(ids).logits - adapted.model(ids).logits).abs().max() < 1e-4
        with subnet_view(adapted.model, adapted.arch, adapted.importance, spec) as m:
            viewed = m(ids).logits
        assert (trained.extract(spec)(ids).logits - viewed).abs().max() < 1e-4
        with adapters_off(adapted.model):
            assert (out(ids).logits - adapted.model(ids).logits).abs().max() > 1e-3  # learnt


def test_lora_run_interrupted_and_resumed_equals_uninterrupted(tiny_dir, text_file, tmp_path):
    kw = dict(steps=4, accum=2, lora=True, lora_rank=4)
    train(_cfg(tiny_dir, tmp_path / "a", text_file, **kw))

    def stop_after_two(p):
        if p.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tiny_dir, tmp_path / "b", text_file, save_every=3, **kw),
              progress=stop_after_two)
    train(_cfg(tiny_dir, tmp_path / "b", text_file, save_every=3, **kw), resume=True)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    with pytest.raises(InputError, match="lora"):
        train(_cfg(tiny_dir, tmp_path / "b", text_file, save_every=3, **{**kw, "lora": False}),
              resume=True)
