"""`hwnas hw ...`, `hwnas profile [export|import]` and `hwnas measure` through the CLI's main:
JSON output, one-line errors with exit code 2, never a traceback."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml
from conftest import fake_profile_yaml
from transformers import LlamaConfig

import hwnas.cli


def cli(argv, capsys, monkeypatch):
    present = tuple(m for m in hwnas.cli.COMMAND_MODULES if importlib.util.find_spec(m))
    monkeypatch.setattr(hwnas.cli, "COMMAND_MODULES", present)
    rc = hwnas.cli.main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "tiny"
    LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=2, vocab_size=256,
                max_position_embeddings=256).save_pretrained(model)
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(fake_profile_yaml(prefill=(16,), decode=(24,)))
    return str(hw), str(model)


def test_hw_list_json(capsys, monkeypatch):
    rc, out, _ = cli(["hw", "list", "--json"], capsys, monkeypatch)
    assert rc == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"cpu-torch-fp32", "cpu-torch-int8", "h200-torch-bf16"} <= names
    assert all({"name", "device", "backend", "dtype"} <= set(r) for r in rows)


def test_hw_show_yaml_and_json(capsys, monkeypatch):
    rc, out, _ = cli(["hw", "show", "cpu-torch-fp32"], capsys, monkeypatch)
    assert rc == 0 and yaml.safe_load(out)["name"] == "cpu-torch-fp32"
    rc, out, _ = cli(["hw", "show", "cpu-torch-fp32", "--json"], capsys, monkeypatch)
    assert json.loads(out)["primary"] == {"prefill_tokens": 128, "decode_tokens": 32}


def test_hw_errors_are_one_line(tmp_path, capsys, monkeypatch):
    rc, _, err = cli(["hw", "show", "cpu-torch-f32"], capsys, monkeypatch)
    assert rc == 2 and "Did you mean 'cpu-torch-fp32'" in err and err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: bad\nbackend: tensorrt\n")
    rc, _, err = cli(["hw", "validate", str(bad)], capsys, monkeypatch)
    assert rc == 2 and "'tensorrt'" in err and "missing field 'workloads'" in err
    bad.write_text("name: [x\n")
    rc, _, err = cli(["hw", "validate", str(bad)], capsys, monkeypatch)
    assert rc == 2 and "malformed YAML" in err
    rc, _, err = cli(["hw", "validate", str(tmp_path / "none.yaml")], capsys, monkeypatch)
    assert rc == 2 and "no such file" in err


def test_hw_validate_and_detect(tmp_path, files, capsys, monkeypatch):
    rc, out, _ = cli(["hw", "validate", files[0], "--json"], capsys, monkeypatch)
    assert rc == 0 and json.loads(out)["valid"]
    target = tmp_path / "mine.yaml"
    rc, out, _ = cli(["hw", "detect", "--name", "mine", "--device", "cpu", "--out",
                      str(target), "--json"], capsys, monkeypatch)
    assert rc == 0 and target.is_file()
    data = json.loads(out)
    assert data["profile"]["name"] == "mine" and data["fingerprint"]["cpu_model"]
    rc, _, _ = cli(["hw", "validate", str(target)], capsys, monkeypatch)
    assert rc == 0
    rc, _, err = cli(["hw", "detect", "--backend", "tensorrt"], capsys, monkeypatch)
    assert rc == 2 and "'tensorrt'" in err


def test_profile_resume_export_import(tmp_path, files, capsys, monkeypatch):
    hw, model = files
    rc, out, _ = cli(["profile", "--hw", hw, "--model", model, "--json"], capsys, monkeypatch)
    first = json.loads(out)
    assert rc == 0 and first["complete"] and first["measured"] == first["total"] > 0
    rc, out, _ = cli(["profile", "--hw", hw, "--model", model, "--json"], capsys, monkeypatch)
    assert json.loads(out)["measured"] == 0
    pq = tmp_path / "share.parquet"
    rc, out, _ = cli(["profile", "export", str(pq), "--hw", hw, "--model", model, "--json"],
                     capsys, monkeypatch)
    assert rc == 0 and json.loads(out)["rows"] == first["total"]
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "other"))
    rc, out, _ = cli(["profile", "import", str(pq), "--json"], capsys, monkeypatch)
    assert json.loads(out)["added"] == first["total"]
    rc, out, _ = cli(["profile", "import", str(pq), "--json"], capsys, monkeypatch)
    assert json.loads(out)["added"] == 0  # no duplicates


def test_profile_errors(files, capsys, monkeypatch):
    hw, model = files
    rc, _, err = cli(["profile", "--model", model], capsys, monkeypatch)
    assert rc == 2 and "--hw" in err
    rc, _, err = cli(["profile", "--hw", "cpu-ipex-bf16", "--model", model], capsys,
                     monkeypatch)
    if importlib.util.find_spec("intel_extension_for_pytorch") is None:
        assert rc == 2 and "intel-extension-for-pytorch" in err and "torch==2.8.0" in err
    rc, _, err = cli(["profile", "--hw", "h200-torch-bf16", "--model", model], capsys,
                     monkeypatch)
    assert rc == 2 and ("sees no GPU" in err or "pinned" in err)
    rc, _, err = cli(["profile", "--hw", hw, "--model", "no-such-model"], capsys, monkeypatch)
    assert rc == 2 and "no-such-model" in err


def test_measure_names_the_statistic_it_reports(tmp_path, capsys, monkeypatch):
    from conftest import save_tiny_model_dir

    from hwnas.hw_profiles import load_profile

    hw = tmp_path / "fake-min.yaml"  # the statistic the shipped CPU profiles use
    hw.write_text(fake_profile_yaml("fake-min", timer={"statistic": "min"}))
    model = str(save_tiny_model_dir(tmp_path / "weights"))
    statistic = load_profile(str(hw)).timer.statistic
    assert statistic == "min"
    spec = '{"layers": [0], "intermediate_size": [128], "kv_heads": [2]}'
    rc, out, _ = cli(["measure", "--hw", str(hw), "--model", model, "--subnet", spec,
                      "--primary-only", "--json"], capsys, monkeypatch)
    data = json.loads(out)
    assert rc == 0 and data["statistic"] == statistic and data["per_workload"]
    rc, out, _ = cli(["measure", "--hw", str(hw), "--model", model, "--subnet", spec,
                      "--primary-only"], capsys, monkeypatch)
    assert rc == 0 and "min ms" in out and "median" not in out
