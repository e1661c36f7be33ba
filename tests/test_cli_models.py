"""`hwnas models | space | stats | export` through the CLI, on a local tiny model directory."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_models(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("hwnas ")
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    assert any(r["name"] == "smollm2-135m" and r["default"] for r in rows)


def test_space_json(capsys, tiny_model_dir):
    code, out, _ = run(capsys, "space", "--model", str(tiny_model_dir), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["width_choices"] == [64, 128]  # 1/2 .. 1 of 128, rounded to 64
    assert data["kv_choices"] == [1, 2] and data["n_var"] == 12
    code, out, _ = run(capsys, "space", "--model", str(tiny_model_dir), "--widths", "64,96,128",
                       "--json")
    assert json.loads(out)["width_choices"] == [64, 96, 128]


def test_stats_matches_the_extracted_model(capsys, tiny_model_dir, tmp_path):
    spec = {"layers": [0, 2, 3], "intermediate_size": [64, 128, 64], "kv_heads": [1, 2, 2]}
    code, out, _ = run(capsys, "stats", "--model", str(tiny_model_dir), "--subnet",
                       json.dumps(spec), "--json")
    assert code == 0
    stats = json.loads(out)
    assert stats["layers"] == 3 and stats["weight_bytes"] == 4 * stats["params"]
    code, out, _ = run(capsys, "export", "--model", str(tiny_model_dir), "--subnet",
                       json.dumps(spec), "--out", str(tmp_path / "e"), "--json")
    assert code == 0, out
    info = json.loads(out)
    assert info["params"] == stats["params"]
    assert info["max_abs_logit_diff"] <= 1e-5 and info["generate_ok"]
    assert not info["stock_loadable"]
    assert (tmp_path / "e" / "tokenizer.json").is_file()


@pytest.mark.parametrize("argv, fragment", [
    (["stats", "--model", "no-such-model", "--subnet",
      '{"layers": [0], "intermediate_size": [64], "kv_heads": [1]}'],
     "unknown model 'no-such-model'"),
    (["stats", "--subnet", '{"layers": [0]'], "invalid JSON"),
    (["stats", "--bogus"], "No such option: --bogus"),
    (["space", "--widths", "a,b"], "--widths 'a,b'"),
    (["export", "--out", "x"], "give either --subnet SPEC or --run RUN --pick K"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_subnet_errors_name_the_problem(capsys, tiny_model_dir):
    spec = {"layers": [0, 9], "intermediate_size": [64, 64], "kv_heads": [1, 1]}
    code, _, err = run(capsys, "stats", "--model", str(tiny_model_dir), "--subnet",
                       json.dumps(spec))
    assert code == 2 and "unknown layer index 9" in err and "layers 0..3" in err
