"""Training-free repair (`hwnas.supernet.repair`) on tiny random models."""

from __future__ import annotations

import json

import pytest
import torch

from hwnas.supernet import repair as R
from hwnas.supernet.extract import build
from hwnas.supernet.supernet import Supernet
from tests.conftest import char_tokenizer, tiny_model


@pytest.fixture
def small_calibration(monkeypatch):
    """The bundled passages without building the overlap index (tests stay fast)."""
    import hwnas.datasets.overlap as overlap
    from hwnas.datasets.text import training_passages

    monkeypatch.setattr(overlap, "clean_training_passages", training_passages)


def _held_out() -> str:
    from hwnas.datasets.text import heldout_text

    return heldout_text(5)


def _supernet(**kw):
    model = tiny_model("llama", layers=6, hidden=64, intermediate=128, heads=4, kv_heads=2,
                       vocab=98, **kw)
    return Supernet.from_model(model, char_tokenizer(), name="tiny")


def _acts(model, ids):
    """Per layer: input hidden, attention output, MLP output, MLP-down input, o_proj input."""
    rec: dict[str, dict[int, torch.Tensor]] = {k: {} for k in ("h", "att", "mlp", "a", "o")}
    hooks = []

    def put(kind, i, t):
        rec[kind][i] = t.detach()

    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_pre_hook(
            lambda _m, a, i=i: put("h", i, a[0])))
        hooks.append(layer.self_attn.o_proj.register_forward_hook(
            lambda _m, a, o, i=i: put("att", i, o) or put("o", i, a[0])))
        hooks.append(layer.mlp.down_proj.register_forward_hook(
            lambda _m, a, o, i=i: put("mlp", i, o) or put("a", i, a[0])))
    with torch.no_grad():
        model(ids)
    for h in hooks:
        h.remove()
    return rec


def test_repair_lowers_every_blocks_output_error(small_calibration):
    sn = _supernet()
    spec = sn.validate(type(sn.space.full())((0, 1, 4, 5), (64, 128, 64, 64), (1, 2, 2, 1)))
    cfg = R.RepairConfig(tokens=8192, seq_len=256)
    deltas = R.repair_deltas(sn, spec, cfg)
    assert set(deltas) == {"model.layers.0.mlp.down_proj.weight",
                           "model.layers.0.self_attn.o_proj.weight",
                           "model.layers.1.mlp.down_proj.weight",  # span 2..3 folded here
                           "model.layers.2.mlp.down_proj.weight",
                           "model.layers.3.mlp.down_proj.weight",
                           "model.layers.3.self_attn.o_proj.weight"}
    ids = sn.tokenizer(_held_out(), return_tensors="pt").input_ids[:, :512]
    acts = _acts(sn.model, ids)
    plain = build(sn.model, sn.arch, sn.importance, spec)
    fixed = build(sn.model, sn.arch, sn.importance, spec)
    R.apply_deltas(fixed, deltas)
    for pos, (i, w, kv) in enumerate(zip(spec.layers, spec.intermediate_size, spec.kv_heads,
                                         strict=True)):
        ch = torch.tensor(sn.importance.channels(i, w))
        a = acts["a"][i].index_select(-1, ch)
        for name, m in (("plain", plain), ("fixed", fixed)):
            down = m.model.layers[pos].mlp.down_proj
            if name == "plain":
                e_plain = (down(a) - acts["mlp"][i]).norm()
            else:
                e_fixed = (down(a) - acts["mlp"][i]).norm()
        if i == 1:  # the span 2..3 after layer 1: compare against the state leaving layer 3
            target = acts["h"][4]
            r = acts["h"][1] + acts["att"][1]
            e_plain = (r + plain.model.layers[pos].mlp.down_proj(a) - target).norm()
            e_fixed = (r + fixed.model.layers[pos].mlp.down_proj(a) - target).norm()
        assert e_fixed < e_plain, (i, float(e_fixed), float(e_plain))
        if kv < sn.arch.num_kv_heads:
            cols = torch.tensor(R.head_columns(sn.importance.groups(i, kv), sn.arch.q_per_kv,
                                               sn.arch.head_dim))
            x = acts["o"][i].index_select(-1, cols)
            e0 = (plain.model.layers[pos].self_attn.o_proj(x) - acts["att"][i]).norm()
            e1 = (fixed.model.layers[pos].self_attn.o_proj(x) - acts["att"][i]).norm()
            assert e1 < e0


def test_repair_is_cached_and_extract_applies_it(small_calibration, monkeypatch):
    sn = _supernet()
    spec = sn.space.uniform(width=64, drop=[2])
    first = sn.extract(spec, repair="ls")
    calls = []
    monkeypatch.setattr(R, "collect_stats", lambda *a, **k: calls.append(1))
    again = sn.extract(spec, repair="ls")  # from the safetensors cache: no new pass
    assert not calls
    for (n, p), (_, q) in zip(first.named_parameters(), again.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    plain = sn.extract(spec)
    assert not torch.equal(plain.model.layers[0].mlp.down_proj.weight,
                           first.model.layers[0].mlp.down_proj.weight)
    files = list((R.cache_path(sn.fingerprint, spec, R.RepairConfig())).parent.iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"


def test_full_model_needs_no_repair(small_calibration):
    sn = _supernet()
    assert R.repair_deltas(sn, sn.space.full()) == {}


def test_bad_repair_mode_is_an_input_error(small_calibration):
    from hwnas.errors import InputError

    sn = _supernet()
    with pytest.raises(InputError, match="--repair 'lsq'"):
        sn.extract(sn.space.full(), repair="lsq")


def test_export_and_evaluate_with_repair_through_the_cli(small_calibration, capsys, tmp_path):
    from hwnas.cli import main
    from tests.conftest import save_tiny_model_dir

    d = save_tiny_model_dir(tmp_path / "m", heads=4, kv_heads=2, vocab=98)
    spec = json.dumps({"layers": [0, 1, 3], "intermediate_size": [64, 128, 64],
                       "kv_heads": [1, 2, 2]})
    assert main(["export", "--model", str(d), "--subnet", spec, "--out",
                 str(tmp_path / "e"), "--repair", "ls", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["max_abs_logit_diff"] <= 1e-5
    side = json.loads((tmp_path / "e" / "hwnas_subnet.json").read_text())
    assert side["repair"] == "ls"
    assert main(["evaluate", "--model", str(d), "--subnet", spec, "--tasks", "heldout_ppl",
                 "--limit", "2", "--repair", "ls", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "+ls-" in out["subnet"]


def test_a_repair_that_hurts_on_unseen_calibration_text_is_dropped(small_calibration,
                                                                     monkeypatch):
    sn = _supernet()
    spec = sn.space.uniform(width=64, drop=[2])
    monkeypatch.setattr(R, "_helps", lambda *a: False)
    assert R.repair_deltas(sn, spec, R.RepairConfig(tokens=2048, seq_len=128)) == {}
    assert R.cache_path(sn.fingerprint, spec, R.RepairConfig(tokens=2048, seq_len=128)
                        ).is_file()  # the verdict is cached too


def test_search_with_repair_evaluates_repaired_subnets_and_export_follows_the_run(
        small_calibration, capsys, tmp_path):
    """`search --repair ls`: every cut subnet is scored with its weights repaired (its own
    cache identity), the full model is not, and `export --run --pick` repairs by default."""
    import sqlite3

    from hwnas.cli import main
    from tests.conftest import fake_profile_yaml, save_tiny_model_dir

    d = save_tiny_model_dir(tmp_path / "m", heads=4, kv_heads=2, vocab=98)
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(fake_profile_yaml())
    task = tmp_path / "t.jsonl"
    task.write_text("".join(json.dumps({"context": f"Question {i}: which?", "choices":
                                        ["a stone", "a feather", "the mat"], "gold": i % 3})
                            + "\n" for i in range(8)))
    assert main(["profile", "--hw", str(hw), "--model", str(d), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "--hw", str(hw), "--model", str(d), "--tasks", str(task),
                 "--evals", "4", "--init", "4", "--inner-pop", "8", "--inner-gens", "2",
                 "--limit", "4", "--final-limit", "6", "--final-max", "1", "--run", "r",
                 "--repair", "ls", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["status"] == "done" and s["config"]["repair"] == "ls"
    assert s["evaluator"]["repair"] == "ls"
    from hwnas.paths import cache_dir

    with sqlite3.connect(cache_dir() / "store.sqlite") as db:
        subnets = [r[0] for r in db.execute("SELECT subnet FROM evaluations")]
    cut = [x for x in subnets if x != "full"]
    assert cut and all("+ls-" in x for x in cut) and "full" in subnets
    assert main(["export", "--model", str(d), "--run", "r", "--pick", "1", "--out",
                 str(tmp_path / "e"), "--no-verify", "--json"]) == 0
    side = json.loads((tmp_path / "e" / "hwnas_subnet.json").read_text())
    assert side["repair"] == "ls"
