"""Every case of issue 14 (bad input, hostile files, a damaged store), reproduced through the
CLI: each ends in exit 0, or exit 2 with one line on stderr naming the file, the field and the
fix; never a traceback, never remote code, never a prompt."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

import pytest
from _safety import FAKE_PROFILE, cli, cli_unprivileged, one_line_error

SPEC = {"layers": [0, 1], "intermediate_size": [128, 128], "kv_heads": [2, 2]}


@pytest.fixture
def config_dir(tmp_path):
    """A model folder with a config only (enough for space, stats and profiling)."""
    from conftest import tiny_config

    d = tmp_path / "cfg"
    tiny_config().save_pretrained(d)
    return d


# ---- no remote code ----------------------------------------------------------------------------
def test_a_folder_with_auto_map_never_runs_its_code(tmp_path, monkeypatch):
    d = tmp_path / "evil"
    d.mkdir()
    marker = tmp_path / "ran"
    (d / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (d / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}))
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = cli("space", "--model", str(d), "--json")
    one_line_error(code, err, "auto_map", str(d / "config.json"))
    assert out == "" and not marker.exists()
    # an unknown model_type alone is refused before transformers sees it
    (d / "config.json").write_text(json.dumps({"model_type": "evil"}))
    code, out, err = cli("space", "--model", str(d), "--json")
    one_line_error(code, err, "model_type", "'evil'")
    assert not marker.exists()


def test_every_transformers_load_in_hwnas_refuses_remote_code():
    """Every `from_pretrained` call in hwnas passes trust_remote_code=False, directly or
    through `LOAD_KW` / `hub_kwargs(...)` (which always hold it)."""
    import ast

    from hwnas.supernet.modeldir import LOAD_KW, hub_kwargs

    assert LOAD_KW == {"trust_remote_code": False}
    assert hub_kwargs("org/id")["trust_remote_code"] is False
    calls = 0
    for f in (Path(__file__).parent.parent / "hwnas").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "from_pretrained"):
                calls += 1
                ok = any((k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant)
                          and k.value.value is False)
                         or (k.arg is None and ast.unparse(k.value) in ("LOAD_KW", "kw")
                             or k.arg is None and "hub_kwargs" in ast.unparse(k.value))
                         for k in node.keywords)
                assert ok, f"{f}:{node.lineno}: from_pretrained without trust_remote_code=False"
    assert calls >= 8


# ---- model folders -----------------------------------------------------------------------------
@pytest.mark.parametrize("config, fragment", [
    ("{}", "model_type"),
    ('{"model_type": "llama", "model_type": "llama"}', "appears twice"),
    ('{"model_type": "llama"', "invalid JSON"),
    ("[1]", "expected a JSON object"),
    ('{"model_type": "llama", "num_attention_heads": 0}', "config"),
    ('{"model_type": "llama", "hidden_size": "wide"}', "config"),
])
def test_bad_model_configs(tmp_path, config, fragment):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(config)
    code, _, err = cli("space", "--model", str(d))
    one_line_error(code, err, fragment)


def test_config_not_utf8(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_bytes(b'{"model_type": "\xff"}')
    one_line_error(*cli("space", "--model", str(d))[::2], "not UTF-8", "config.json")


def test_model_folder_without_weights_or_tokenizer(tmp_path, config_dir, tiny_model_dir):
    spec = json.dumps(SPEC)
    code, _, err = cli("export", "--model", str(config_dir), "--subnet", spec, "--out",
                       str(tmp_path / "o"))
    one_line_error(code, err, "no weights")
    (tiny_model_dir / "tokenizer.json").unlink()
    (tiny_model_dir / "tokenizer_config.json").unlink()
    code, _, err = cli("evaluate", "--model", str(tiny_model_dir), "--tasks", "piqa",
                       "--limit", "1")
    one_line_error(code, err, "no tokenizer")
    code, _, err = cli("evaluate", "--dir", str(config_dir), "--model", str(config_dir))
    one_line_error(code, err, "no weights")


def test_a_choice_that_encodes_to_no_tokens(tmp_path, monkeypatch):
    from conftest import char_tokenizer, tiny_model
    from tokenizers import normalizers

    d = tmp_path / "m"
    tiny_model().save_pretrained(d)
    tok = char_tokenizer()
    tok.backend_tokenizer.normalizer = normalizers.Strip()
    tok.save_pretrained(d)
    task = tmp_path / "t.jsonl"
    task.write_text(json.dumps({"context": "Q:", "choices": ["a", " "], "gold": 0,
                                "delimiter": ""}) + "\n")
    code, _, err = cli("evaluate", "--model", str(d), "--tasks", str(task))
    one_line_error(code, err, "encodes to no tokens")


def test_a_hub_id_offline_fails_fast(monkeypatch):
    import socket

    from hwnas.supernet import modeldir

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(modeldir, "_HUB_REACHABLE", {})

    def unreachable(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    t0 = time.monotonic()
    code, _, err = cli("space", "--model", "no-such-org/no-such-model-hwnas")
    one_line_error(code, err, "unreachable", "local model folder")
    assert time.monotonic() - t0 < 10


# ---- specs, tasks, profiles --------------------------------------------------------------------
@pytest.mark.parametrize("content, fragment", [
    (b'{"layers": [0], "layers": [1], "intermediate_size": [64], "kv_heads": [1]}',
     "appears twice"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000, "nested"),
    (b'{"layers": [NaN], "intermediate_size": [64], "kv_heads": [1]}', "NaN"),
])
def test_bad_spec_files(tmp_path, config_dir, content, fragment):
    f = tmp_path / "spec.json"
    f.write_bytes(content)
    code, _, err = cli("stats", "--model", str(config_dir), "--subnet", str(f))
    one_line_error(code, err, fragment)


@pytest.mark.parametrize("content, fragment", [
    (b'{"context": "a", "choices": ["b", "c"], "gold": 0}\n\xff\n', "not UTF-8"),
    (b'{"context": "a", "choices": ["b", "c"], "gold": 0, "gold": 1}\n', "appears twice"),
    (b"[" * 100_000 + b"\n", "nested"),
    (b'{"context": "a", "choices": ["b", "c"], "gold": true}\n', "gold"),
])
def test_bad_task_files(tmp_path, tiny_model_dir, content, fragment):
    f = tmp_path / "t.jsonl"
    f.write_bytes(content)
    code, _, err = cli("evaluate", "--model", str(tiny_model_dir), "--tasks", str(f))
    one_line_error(code, err, fragment, str(f))


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t.replace("threads: 1", "threads: true"), "threads"),
    (lambda t: t + "threads: 2\n", "appears twice"),
    (lambda t: "[" * 50_000, "nested"),
    (lambda t: t.replace("device: cpu", "device: cpu\xff"), "device"),
])
def test_bad_profiles(tmp_path, edit, fragment):
    f = tmp_path / "fake-cpu.yaml"
    f.write_text(edit(FAKE_PROFILE.format(name="fake-cpu")))
    code, _, err = cli("hw", "validate", str(f))
    one_line_error(code, err, fragment)
    f.write_bytes(b"name: \xff\n")
    one_line_error(*cli("hw", "validate", str(f))[::2], "not UTF-8")


# ---- strict JSON output ------------------------------------------------------------------------
def test_evaluate_json_with_limit_1_is_valid_json(tmp_path, tiny_model_dir):
    task = tmp_path / "t.jsonl"
    task.write_text(json.dumps({"context": "Q: 1+1", "choices": ["2", "3"], "gold": 0}) + "\n")
    code, out, err = cli("evaluate", "--model", str(tiny_model_dir), "--tasks", str(task),
                         "--limit", "1", "--json")
    assert code == 0, err

    def refuse(name):
        raise ValueError(f"{name} in the output")

    data = json.loads(out, parse_constant=refuse)
    (result,) = data["tasks"].values()
    assert result["stderr"] is None and result["n"] == 1


# ---- the store ---------------------------------------------------------------------------------
def _csv_with(tmp_path, payload: str) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from hwnas.store import TABLES

    row = {"key": "k1", "hw": "fake-cpu", "model": "0123", "kind": "layer", "median_ms": 1.0,
           "noisy": 0, "payload": payload, "created": 1.0}
    f = tmp_path / "m.csv"
    pcsv.write_csv(pa.table({c: [row[c]] for c in TABLES["measurements"]}), f)
    return f


def _store_path() -> Path:
    return Path(os.environ["HWNAS_CACHE"]) / "store.sqlite"


def test_profile_import_refuses_a_bad_payload(tmp_path):
    code, _, err = cli("profile", "import", str(_csv_with(tmp_path, "{garbage")))
    one_line_error(code, err, "row 1", "k1", "not valid JSON", "nothing was imported")
    code, _, err = cli("profile", "import", str(_csv_with(tmp_path, '{"spec": 1}')))
    one_line_error(code, err, "spec")
    assert sqlite3.connect(_store_path()).execute(
        "SELECT COUNT(*) FROM measurements").fetchone()[0] == 0
    (tmp_path / "bad.csv").write_bytes(b"\x00\xff garbage")
    one_line_error(*cli("profile", "import", str(tmp_path / "bad.csv"))[::2])
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    one_line_error(*cli("profile", "import", str(tmp_path / "bad.parquet"))[::2], "parquet")


def _profiled_store(tmp_path, config_dir) -> Path:
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(FAKE_PROFILE.format(name="fake-cpu"))
    code, _, err = cli("profile", "--hw", str(hw), "--model", str(config_dir), "--json")
    assert code == 0, err
    return hw


def test_a_bad_row_is_named_then_quarantined_by_store_repair(tmp_path, config_dir):
    hw = _profiled_store(tmp_path, config_dir)
    db = sqlite3.connect(_store_path())
    n = db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    key = db.execute("SELECT key FROM measurements WHERE kind='layer' LIMIT 1").fetchone()[0]
    db.execute("UPDATE measurements SET payload='{garbage' WHERE key=?", (key,))
    db.commit()
    db.close()
    code, _, err = cli("predictors", "train", "--hw", str(hw), "--model", str(config_dir),
                       "--subnets", "0")
    one_line_error(code, err, "table 'measurements'", key, "hwnas store repair")
    code, _, err = cli("store", "check")
    one_line_error(code, err, "1 bad row", key)
    code, out, err = cli("store", "repair", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["quarantined"] == 1 and rep["kept"]["measurements"] == n - 1
    assert cli("store", "check")[0] == 0
    db = sqlite3.connect(_store_path())
    assert db.execute("SELECT tbl, key FROM quarantine").fetchall() == [("measurements", key)]
    assert db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == n - 1


def test_a_damaged_store_is_rebuilt_from_its_readable_rows(tmp_path, config_dir):
    _profiled_store(tmp_path, config_dir)
    path = _store_path()
    cli("store", "check")  # checkpoints nothing; make sure the WAL is folded in
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    data[2 * page:2 * page + 200] = b"\xde\xad" * 100  # damage one page in the middle
    path.write_bytes(bytes(data))
    code, _, err = cli("runs", "list")
    assert code in (0, 2) and "Traceback" not in err
    code, _, err = cli("store", "check")
    one_line_error(code, err, "hwnas store repair")
    code, out, err = cli("store", "repair", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert Path(rep["damaged_copy"]).read_bytes() == bytes(data)  # kept, never deleted
    assert cli("store", "check")[0] == 0
    assert cli("runs", "list", "--json")[0] == 0


def test_a_store_that_is_not_a_database_or_has_a_bad_schema_version(tmp_path):
    path = _store_path()
    path.write_bytes(b"not a database at all" * 100)
    one_line_error(*cli("runs", "list")[::2], str(path), "hwnas store repair")
    assert cli("store", "repair")[0] == 0
    assert cli("runs", "list", "--json")[0] == 0
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='x1' WHERE key='schema_version'")
    db.commit()
    db.close()
    one_line_error(*cli("runs", "list")[::2], "schema_version", "'x1'")


def test_a_read_only_store_is_called_read_only(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="hwnas-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        cache = base / "cache"
        cache.mkdir()
        env = {"HWNAS_CACHE": str(cache)}
        assert cli_unprivileged("runs", "list", env=env).returncode == 0 or True
        from hwnas.store import Store
        Store(cache / "store.sqlite").close()
        for p in cache.iterdir():
            p.chmod(0o444)
        cache.chmod(0o555)
        r = cli_unprivileged("runs", "list", env=env)
        one_line_error(r.returncode, r.stderr, "read-only", str(cache / "store.sqlite"))
        # a read-only cache folder: whatever needs to write there says so in one line
        r = cli_unprivileged("hw", "list", env=env)
        one_line_error(r.returncode, r.stderr, "cache folder", "hw_profiles")
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base)


def test_hwnas_cache_pointing_at_a_file(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setenv("HWNAS_CACHE", str(f))
    one_line_error(*cli("runs", "list")[::2], str(f), "is a file")
    one_line_error(*cli("--cache-dir", str(f), "hw", "list")[::2], "is a file")


# ---- predictor files ---------------------------------------------------------------------------
@pytest.fixture
def trained(tmp_path):
    """A latency predictor trained on synthetic measurements: (model dir, its folder)."""
    from _safety import train_tiny_predictor

    d = tmp_path / "tiny"
    return d, train_tiny_predictor(d)


def _predict(d):
    spec = {"layers": [0, 1], "intermediate_size": [512, 512], "kv_heads": [2, 2]}
    return cli("predict", "--hw", "cpu-torch-fp32", "--model", str(d), "--subnet",
               json.dumps(spec), "--json")


def test_predictor_files_garbage_and_pickles_are_refused(trained):
    d, folder = trained
    code, out, err = _predict(d)
    assert code == 0, err
    member = next(folder.glob("*.ubj"))
    good = member.read_bytes()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        member.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=protocol))
        one_line_error(*_predict(d)[::2], "pickle", member.name)
    member.write_bytes(b"garbage")
    one_line_error(*_predict(d)[::2], "not an XGBoost model")
    member.write_bytes(b"{garbage")
    one_line_error(*_predict(d)[::2], "XGBoost cannot read")
    member.write_bytes(good)
    sidecar = folder / "predictor.json"
    good_side = sidecar.read_text()
    sidecar.write_bytes(pickle.dumps({"kind": "latency"}, protocol=0))
    one_line_error(*_predict(d)[::2], "pickle")
    sidecar.write_text("garbage")
    one_line_error(*_predict(d)[::2], "invalid JSON", "predictor.json")
    data = json.loads(good_side)
    del data["arch"]
    sidecar.write_text(json.dumps(data))
    one_line_error(*_predict(d)[::2], "'arch'", "retrain")
    data = json.loads(good_side)
    data["layers"]["members"] = ["../../../etc/passwd"]
    sidecar.write_text(json.dumps(data))
    one_line_error(*_predict(d)[::2], "not a file name")


# ---- flags validated before anything runs ------------------------------------------------------
def test_measure_with_a_bad_profile_fails_before_the_model_loads(monkeypatch, tiny_model_dir):
    from hwnas.supernet import supernet

    def boom(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(supernet.Supernet, "load", boom)
    code, _, err = cli("measure", "--hw", "nope", "--model", str(tiny_model_dir), "--subnet",
                       json.dumps(SPEC))
    one_line_error(code, err, "unknown hardware profile 'nope'")


@pytest.mark.parametrize("argv, fragment", [
    (["--limit", "-5"], "--limit -5"),
    (["--hw", "bogus"], "unknown hardware profile 'bogus'"),
    (["--final-limit", "-1"], "--final-limit"),
])
def test_search_validates_before_a_run_exists(config_dir, argv, fragment):
    code, _, err = cli("search", "--model", str(config_dir), "--evals", "8", *argv)
    one_line_error(code, err, fragment)
    cache = Path(os.environ["HWNAS_CACHE"])
    assert not (cache / "runs").exists() or not any((cache / "runs").iterdir())
    db = sqlite3.connect(cache / "store.sqlite") if (cache / "store.sqlite").exists() else None
    assert db is None or db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_nothing_reads_stdin(monkeypatch, config_dir):
    import io

    class Exploding(io.StringIO):
        def read(self, *a):
            raise AssertionError("stdin was read")

        readline = read

    monkeypatch.setattr("sys.stdin", Exploding())
    assert cli("space", "--model", str(config_dir), "--json")[0] == 0


def test_tests_never_use_the_default_cache():
    from conftest import TEST_MODEL_CACHE

    assert ".pytest_cache" in str(TEST_MODEL_CACHE)
    assert Path(os.environ["HWNAS_CACHE"]) != Path.home() / ".cache" / "hwnas"


def test_readme_documents_jsonl_tasks():
    from hwnas.datasets.tasks.jsonl import parse_line

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "### Your own tasks (JSONL)" in readme
    block = readme.split("### Your own tasks (JSONL)")[1].split("```jsonl")[1].split("```")[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert lines and all(parse_line(ln, "README") for ln in lines)
    _ = stat  # (imported for the export tests' modes)
