"""Fuzzing harness (issue 14): hostile inputs at every door a user has, through the CLI
in-process. The property, for every input:

- exit 0, or exit 2 with exactly one line on stderr (`hwnas: error: ...`); never a traceback;
- nothing outside the cache folder or `--out` is touched (the inputs, the working folder);
- the store still opens (and, at the store door, `store repair` makes it sound).

Profiles: `ci` (default, well under a minute) and `nightly` (`HWNAS_FUZZ_PROFILE=nightly`,
about 20 times the inputs). Each run writes how many inputs every door got and the distinct
outcomes it saw to `.pytest_cache/hwnas-fuzz/<profile>.json` and prints it (see with `-s`).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from _safety import FAKE_PROFILE, cli
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("HWNAS_FUZZ_PROFILE", "ci")
SCALE = {"ci": 1, "nightly": 25}[PROFILE]
settings.register_profile("hwnas-fuzz", deadline=None, derandomize=PROFILE == "ci",
                          database=None, print_blob=True,
                          # CI: find, do not shrink (a shrink of a store can take minutes)
                          phases=(list(Phase)[:4] if PROFILE == "ci" else list(Phase)),
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture,
                                                 HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])

REPO = Path(__file__).resolve().parent.parent
REPORT: dict[str, Counter[str]] = defaultdict(Counter)
TRIED: Counter[str] = Counter()


def examples(n: int) -> Any:
    return settings(settings.get_profile("hwnas-fuzz"), max_examples=n * SCALE)


# ---- hostile values ------------------------------------------------------------------------
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.sampled_from([0, 1, -1, 2, 64, 128, 2**31, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "llama", "fp32", "cpu", "\x00", "é", "../x"]))
JSONISH = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), c,
                                                                     max_size=4)),
                       max_leaves=12)
RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"\xff\xfe", b"[" * 5000, b"{" * 3000, b'{"a": NaN}', b"\x80\x04.",
                     b"(dp0\n.", b"null", b"[]", b"{}", b"\x00" * 64,
                     pickle.dumps({"x": 1}, protocol=0)]))


def mutate(base: dict[str, Any]) -> Any:
    """A strategy of `base` with fields replaced, dropped or added, and duplicate keys."""
    keys = sorted(base)
    replace = st.dictionaries(st.sampled_from(keys), JSONISH, max_size=3)
    drop = st.sets(st.sampled_from(keys), max_size=2)
    add = st.dictionaries(st.text(max_size=8), JSONISH, max_size=2)

    def build(r: dict[str, Any], d: set[str], a: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in base.items() if k not in d}
        out.update(r)
        out.update(a)
        return out

    return st.builds(build, replace, drop, add)


def as_text(data: Any, dup: bool = False) -> bytes:
    text = json.dumps(data, allow_nan=True)
    if dup and isinstance(data, dict) and data:
        k = next(iter(data))
        text = text[:-1] + f", {json.dumps(k)}: 0}}"
    return text.encode("utf-8", "surrogatepass")


CONTENT = st.one_of(RAW, st.tuples(JSONISH, st.booleans()).map(lambda t: as_text(*t)))


# ---- the harness ----------------------------------------------------------------------------
class Door:
    """One door: its own cache, inputs and out folders under `root`; checks the property."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.top = root
        self.root = root / name
        self.cache = self.root / "cache"
        self.inputs = self.root / "inputs"
        self.out = self.root / "out"
        for d in (self.cache, self.inputs):
            d.mkdir(parents=True, exist_ok=True)

    def fresh_out(self) -> Path:
        if self.out.exists():
            shutil.rmtree(self.out)
        return self.out

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        snap = {}
        for base in (self.top, REPO):
            for p in base.rglob("*") if base == self.top else base.iterdir():
                if p.is_relative_to(self.cache) or p.is_relative_to(self.out):
                    continue
                if base == REPO and p.name.startswith("."):
                    continue  # .pytest_cache, .mypy_cache, .git: written by the tools
                try:
                    st_ = p.lstat()
                except FileNotFoundError:
                    continue
                snap[str(p)] = (st_.st_size, st_.st_mtime_ns)
        return snap

    def run(self, *argv: Any, cache: Any = None, expect_ok: bool = False) -> tuple[int, str, str]:
        os.environ["HWNAS_CACHE"] = str(self.cache if cache is None else cache)
        before = self._snapshot()
        code, out, err = cli(*argv)
        after = self._snapshot()
        TRIED[self.name] += 1
        assert "Traceback" not in err and "Traceback" not in out, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if code == 0:
            REPORT[self.name]["exit 0"] += 1
        else:
            assert code == 2, f"exit {code}: {err}"
            assert len(lines) == 1 and lines[0].startswith("hwnas: error: "), err
            REPORT[self.name]["exit 2: " + _gist(lines[0])] += 1
        assert expect_ok is False or code == 0, err
        assert before == after, _diff(before, after)
        store = (self.cache if cache is None else Path(cache)) / "store.sqlite"
        if store.is_file() and cache is None:
            from hwnas.store import Store
            Store(store).close()  # the store still opens
        return code, out, err


def _gist(line: str) -> str:
    """A message without its paths and values: what kind of refusal it is."""
    import re

    text = line.removeprefix("hwnas: error: ")
    text = re.sub(r"/\S+", "PATH", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\b\d[\d.e+-]*\b", "_", text)
    return text[:70]


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "touched outside the cache and --out: " + ", ".join(changed[:5])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    out = REPO / ".pytest_cache" / "hwnas-fuzz"
    out.mkdir(parents=True, exist_ok=True)
    data = {"profile": PROFILE, "tried": dict(TRIED),
            "outcomes": {d: dict(c.most_common()) for d, c in REPORT.items()}}
    (out / f"{PROFILE}.json").write_text(json.dumps(data, indent=2))
    print(f"\nfuzzing ({PROFILE}): inputs per door {dict(TRIED)}")
    for door, c in sorted(REPORT.items()):
        print(f"  {door}: {len(c)} distinct outcomes; most common: {c.most_common(3)}")


@pytest.fixture(scope="module")
def models(root):
    """A config-only model folder and a complete tiny one (weights, char tokenizer)."""
    from conftest import save_tiny_model_dir, tiny_config

    cfg = root / "models" / "cfg"
    tiny_config().save_pretrained(cfg)
    full = save_tiny_model_dir(root / "models" / "tiny", heads=4, kv_heads=2)
    return cfg, full


VALID_SPEC = {"layers": [0, 1, 3], "intermediate_size": [64, 128, 64], "kv_heads": [1, 2, 2]}


# ---- specs -----------------------------------------------------------------------------------
SPECS = st.one_of(
    mutate(VALID_SPEC).map(json.dumps),
    st.fixed_dictionaries({k: st.lists(SCALARS, max_size=5) for k in VALID_SPEC}).map(
        lambda d: json.dumps(d, allow_nan=True)),
    JSONISH.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=40))


@given(spec=SPECS, in_file=st.booleans(), raw=st.none() | CONTENT)
@examples(30)
def test_fuzz_specs(root, models, spec, in_file, raw):
    door = Door(root, "specs")
    cfg, _ = models
    arg = spec
    if in_file or raw is not None:
        f = door.inputs / "spec.json"
        f.write_bytes(raw if raw is not None else spec.encode("utf-8", "surrogatepass"))
        arg = str(f)
    door.run("stats", "--model", cfg, "--subnet", arg, "--json")


# ---- hardware profiles -------------------------------------------------------------------------
VALID_PROFILE = yaml.safe_load(FAKE_PROFILE.format(name="fuzz-hw"))
PROFILES = st.one_of(
    mutate(VALID_PROFILE).map(lambda d: yaml.safe_dump(d).encode()),
    st.tuples(st.sampled_from(sorted(VALID_PROFILE)), JSONISH).map(
        lambda t: (FAKE_PROFILE.format(name="fuzz-hw") + f"{t[0]}: {json.dumps(t[1])}\n"
                   ).encode("utf-8", "surrogatepass")),
    CONTENT)


@given(content=PROFILES, command=st.sampled_from(["validate", "show", "predict"]))
@examples(20)
def test_fuzz_profiles(root, models, content, command):
    door = Door(root, "profiles")
    f = door.inputs / "fuzz-hw.yaml"
    f.write_bytes(content)
    if command == "predict":  # the profile is refused, or there is no predictor yet
        cfg, _ = models
        door.run("predict", "--hw", f, "--model", cfg, "--subnet", json.dumps(VALID_SPEC))
    else:
        door.run("hw", command, f, "--json")


# ---- JSONL tasks ---------------------------------------------------------------------------------
VALID_ITEM = {"context": "Q: 1+1", "choices": ["2", "3"], "gold": 0}
LINES = st.one_of(mutate(VALID_ITEM).map(lambda d: json.dumps(d, allow_nan=True).encode()),
                  CONTENT.filter(lambda b: b"\n" not in b))


@given(lines=st.lists(LINES, min_size=0, max_size=3), limit=st.sampled_from(["1", "2"]))
@examples(10)
def test_fuzz_tasks(root, models, lines, limit):
    door = Door(root, "tasks")
    _, tiny = models
    f = door.inputs / "task.jsonl"
    f.write_bytes(b"\n".join(lines))
    door.run("evaluate", "--model", tiny, "--tasks", f, "--limit", limit, "--json",
             "--no-cache")


# ---- model folders ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_config(models):
    cfg, _ = models
    return json.loads((cfg / "config.json").read_text())


@given(data=st.data(), weights=st.booleans(), tokenizer=st.booleans(),
       command=st.sampled_from(["space", "space", "stats", "evaluate"]))
@examples(12)
def test_fuzz_model_folders(root, models, base_config, data, weights, tokenizer, command):
    door = Door(root, "model folders")
    _, tiny = models
    d = door.inputs / "model"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    config = data.draw(st.one_of(
        mutate(base_config).map(lambda c: as_text(c)),
        mutate(base_config).map(lambda c: as_text(c, dup=True)),
        st.just(as_text({**base_config, "auto_map": {"AutoConfig": "x.Y"}})),
        CONTENT), label="config.json")
    (d / "config.json").write_bytes(config)
    if weights:
        shutil.copy(tiny / "model.safetensors", d)
    if tokenizer:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tiny / f, d)
    task = door.inputs / "one.jsonl"
    task.write_text(json.dumps(VALID_ITEM) + "\n")
    if command == "space":
        door.run("space", "--model", d, "--json")
    elif command == "stats":
        door.run("stats", "--model", d, "--subnet", json.dumps(VALID_SPEC), "--json")
    else:
        door.run("evaluate", "--model", d, "--tasks", task, "--limit", "1", "--json",
                 "--no-cache")


# ---- store files --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_store(root, models):
    """A store with real measurements (fake backend) and an evaluation, made once."""
    cfg, tiny = models
    door = Door(root, "store-seed")
    hw = door.inputs / "fake-cpu.yaml"
    hw.write_text(FAKE_PROFILE.format(name="fake-cpu"))
    door.run("profile", "--hw", hw, "--model", cfg, "--json", expect_ok=True)
    task = door.inputs / "one.jsonl"
    task.write_text(json.dumps(VALID_ITEM) + "\n")
    door.run("evaluate", "--model", tiny, "--tasks", task, "--json", expect_ok=True)
    db = sqlite3.connect(door.cache / "store.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return Seed((door.cache / "store.sqlite").read_bytes())


class Seed(bytes):
    def __repr__(self) -> str:  # keep Hypothesis's failure reports short
        return f"<store of {len(self)} bytes>"


ROW_VALUE = st.one_of(SCALARS, JSONISH.map(lambda v: json.dumps(v, allow_nan=True)),
                      st.sampled_from(["{garbage", "[]", "{}", '{"spec": {}}']))
TABLE_COLUMN = st.sampled_from([("measurements", "payload"), ("measurements", "median_ms"),
                                ("measurements", "key"), ("measurements", "noisy"),
                                ("evaluations", "payload"), ("evaluations", "accuracy"),
                                ("meta", "value"), ("measurements", "created")])


@given(how=st.sampled_from(["rows", "rows", "bytes", "flip"]), data=st.data(),
       command=st.sampled_from(["runs list", "predictors train", "store check", "evaluate"]))
@examples(6)
def test_fuzz_store_files(root, models, good_store, how, data, command):
    door = Door(root, "store files")
    cfg, tiny = models
    path = door.cache / "store.sqlite"
    for p in door.cache.glob("store.sqlite*"):
        p.unlink()
    if how == "bytes":
        path.write_bytes(data.draw(RAW, label="store bytes"))
    else:
        blob = bytearray(good_store)
        if how == "flip":
            for _ in range(data.draw(st.integers(1, 8), label="flips")):
                i = data.draw(st.integers(0, len(blob) - 1), label="offset")
                blob[i] = data.draw(st.integers(0, 255), label="byte")
        path.write_bytes(bytes(blob))
        if how == "rows":
            db = sqlite3.connect(path)
            for table, column in data.draw(st.lists(TABLE_COLUMN, min_size=1, max_size=3),
                                           label="cells"):
                try:
                    db.execute(f"UPDATE {table} SET {column}=? WHERE rowid=(SELECT MIN(rowid) "
                               f"FROM {table})", (_sqlite_value(data.draw(ROW_VALUE)),))
                except sqlite3.IntegrityError:
                    pass  # SQLite itself refuses that value (NULL in a NOT NULL column)
            db.commit()
            db.close()
    hw = door.inputs / "fake-cpu.yaml"
    hw.write_text(FAKE_PROFILE.format(name="fake-cpu"))
    task = door.inputs / "one.jsonl"
    task.write_text(json.dumps(VALID_ITEM) + "\n")
    argv = {"runs list": ["runs", "list", "--json"],
            "predictors train": ["predictors", "train", "--hw", hw, "--model", cfg,
                                 "--subnets", "0", "--json"],
            "store check": ["store", "check", "--json"],
            "evaluate": ["evaluate", "--model", tiny, "--tasks", task, "--json"]}[command]
    door.run(*argv, cache=door.cache)
    door.run("store", "repair", "--json", cache=door.cache)
    door.run("store", "check", "--json", expect_ok=True)  # repaired: sound, and it opens
    for p in door.cache.glob("store.sqlite.damaged-*"):
        p.unlink()


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, int) and not -2**63 <= v < 2**63:
        return str(v)
    if isinstance(v, list | dict):
        return json.dumps(v)
    return v


@given(rows=st.lists(st.fixed_dictionaries(
    {"key": SCALARS, "hw": SCALARS, "model": SCALARS, "kind": SCALARS, "median_ms": SCALARS,
     "noisy": SCALARS, "payload": ROW_VALUE, "created": SCALARS}), min_size=1, max_size=3),
    fmt=st.sampled_from(["csv", "parquet"]), raw=st.none() | RAW)
@examples(10)
def test_fuzz_profile_import(root, rows, fmt, raw):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    door = Door(root, "store import")
    f = door.inputs / f"rows.{fmt}"
    if raw is not None:
        f.write_bytes(raw)
    else:
        cols = {c: [None if v is None else str(_sqlite_value(v)) for v in
                    (r[c] for r in rows)] for c in rows[0]}
        table = pa.table(cols)
        (pcsv.write_csv if fmt == "csv" else pq.write_table)(table, f)
    door.run("profile", "import", f, "--json")


# ---- predictor files ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(root):
    """A latency predictor trained once on synthetic measurements."""
    from _safety import train_tiny_predictor

    door = Door(root, "predictor files")
    os.environ["HWNAS_CACHE"] = str(door.cache)
    d = door.inputs / "tiny8"
    folder = train_tiny_predictor(d)
    return d, folder, {p.name: p.read_bytes() for p in folder.iterdir()}


@given(data=st.data())
@examples(9)
def test_fuzz_predictor_files(root, trained, data):
    d, folder, good = trained
    door = Door(root, "predictor files")
    for name, blob in good.items():
        (folder / name).write_bytes(blob)
    sidecar = json.loads(good["predictor.json"])
    target = data.draw(st.sampled_from(sorted(good)), label="file")
    if target == "predictor.json" and data.draw(st.booleans(), label="fields"):
        section = data.draw(st.sampled_from(["top", "layers"]), label="section")
        if section == "top":
            new: Any = data.draw(mutate(sidecar), label="sidecar")
        else:
            new = {**sidecar, "layers": data.draw(mutate(sidecar["layers"]), label="layers")}
        (folder / target).write_bytes(as_text(new))
    else:
        blob = good[target]
        content = data.draw(st.one_of(
            CONTENT,
            st.integers(0, len(blob)).map(lambda n: blob[:n]),
            st.tuples(JSONISH, st.integers(0, 5)).map(
                lambda t: pickle.dumps(t[0], protocol=t[1]))), label="content")
        (folder / target).write_bytes(content)
    door.run("predict", "--hw", "cpu-torch-fp32", "--model", d, "--subnet",
             json.dumps({"layers": [0, 1], "intermediate_size": [512, 512],
                         "kv_heads": [2, 2]}), "--json")


# ---- cache paths and flags ----------------------------------------------------------------------
@given(kind=st.sampled_from(["file", "under a file", "deep new", "store is a folder",
                             "hw_profiles is a file", "odd name", "models is a file"]),
       name=st.text(st.characters(blacklist_characters="/\x00",
                                  blacklist_categories=("Cs",)), min_size=1, max_size=12),
       command=st.sampled_from(["runs list", "hw list", "space", "store check", "export"]))
@examples(8)
def test_fuzz_cache_paths(root, models, kind, name, command):
    door = Door(root, "cache paths")
    cfg, tiny = models
    base = door.cache / "variants"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir()
    cache: Path = base / "c"
    if kind == "file":
        cache.write_text("x")
    elif kind == "under a file":
        cache.write_text("x")
        cache = cache / "sub"
    elif kind == "deep new":
        cache = base / "a" / "b" / "c"
    elif kind == "store is a folder":
        (cache / "store.sqlite").mkdir(parents=True)
    elif kind == "hw_profiles is a file":
        cache.mkdir()
        (cache / "hw_profiles").write_text("x")
    elif kind == "models is a file":
        cache.mkdir()
        (cache / "importance").write_text("x")
    else:
        cache = base / name
    argv = {"runs list": ["runs", "list", "--json"], "hw list": ["hw", "list", "--json"],
            "space": ["space", "--model", cfg, "--json"],
            "store check": ["store", "check", "--json"],
            "export": ["export", "--model", tiny, "--subnet", json.dumps(VALID_SPEC),
                       "--out", door.fresh_out(), "--no-verify", "--json"]}[command]
    door.run(*argv, cache=cache)


@given(flags=st.fixed_dictionaries({}, optional={
    "--limit": st.integers(-10, 3), "--evals": st.integers(-2, 10),
    "--final-limit": st.integers(-3, 3), "--init": st.integers(-2, 10),
    "--batch": st.integers(-2, 5), "--final-max": st.integers(-2, 2),
    "--strategy": st.sampled_from(["linas", "nsga2", "random", "bogus", ""]),
    "--objectives": st.sampled_from(["accuracy,latency", "latency", "bogus", "", "params"]),
    "--latency": st.sampled_from(["measured", "predicted", "x"]),
    "--min-speedup": st.floats(-1, 3), "--tasks": st.sampled_from(["t", "", ",", "a,b"]),
    "--max-latency-ms": st.floats(allow_nan=True, allow_infinity=True)}),
    hw=st.sampled_from(["fake-hw", "bogus", ""]))
@examples(6)
def test_fuzz_search_flags(root, models, flags, hw):
    door = Door(root, "search flags")
    cfg, _ = models
    argv = ["search", "--evaluator", "fake", "--model", cfg, "--hw", hw, "--inner-pop", "8",
            "--inner-gens", "2", "--run", f"r{TRIED['search flags']}", "--json"]
    flags.setdefault("--evals", 8)
    flags.setdefault("--tasks", "t")
    for k, v in flags.items():
        argv += [k, str(v)]
    door.run(*argv)


@given(limit=st.integers(-3, 3), fewshot=st.integers(-2, 2),
       batch_tokens=st.sampled_from([64, 100, 63, -1]),
       dtype=st.sampled_from(["fp32", "bf16", "x", ""]),
       tasks=st.sampled_from(["piqa", "", "bogus", "piqa,piqa", ",", "one.jsonl"]),
       seed=st.none() | st.integers(-2, 2))
@examples(6)
def test_fuzz_evaluate_flags(root, models, limit, fewshot, batch_tokens, dtype, tasks, seed):
    door = Door(root, "evaluate flags")
    _, tiny = models
    task = door.inputs / "one.jsonl"
    task.write_text(json.dumps(VALID_ITEM) + "\n")
    argv = ["evaluate", "--model", tiny, "--tasks",
            str(task) if tasks == "one.jsonl" else tasks, "--limit", str(limit),
            "--fewshot", str(fewshot), "--batch-tokens", str(batch_tokens), "--dtype", dtype,
            "--json", "--no-cache"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    door.run(*argv)
