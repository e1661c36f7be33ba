"""Executors: local and Dask (a LocalCluster on 127.0.0.1 only) give the same results and the
same stored records; a worker killed mid-job, an injected out-of-memory error and a driver
killed with `kill -9` lose nothing and duplicate nothing; no timing job runs beside another
job. The cluster tests share one two-worker cluster (it starts in about a second; its workers
import hwnas once)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import save_tiny_model_dir, tiny_config

pytest.importorskip("distributed")

from hwnas.errors import InputError  # noqa: E402
from hwnas.executors import ExecutorSpec, Job, LocalExecutor, open_executor  # noqa: E402
from hwnas.search import SearchConfig, search  # noqa: E402
from hwnas.search.evaluators import FakeEvaluator  # noqa: E402
from hwnas.search.runs import summary  # noqa: E402
from hwnas.search.state import RunState  # noqa: E402
from hwnas.store import Store  # noqa: E402
from hwnas.supernet.arch import arch_info  # noqa: E402
from hwnas.supernet.space import SearchSpace  # noqa: E402

FAKE_HW = """schema_version: 1
name: fake-cpu
device: cpu
backend: fake
dtype: fp32
threads: 1
workloads:
  prefill: [16]
  decode: [{context: 20}]
primary: {prefill_tokens: 16, decode_tokens: 8}
interference: {probe_s: 0}
"""
SMALL = dict(hw="fake-hw", model="tiny", tasks=("t",), evals=16, init=6, batch=4,
             inner_pop=16, inner_gens=4, final_max=2, evaluator="fake")
VOLATILE = {"created", "seconds", "items_per_s", "fingerprint", "measured_at", "interference",
            "busy", "stamps", "group"}


@pytest.fixture(scope="module")
def cluster():
    with open_executor(ExecutorSpec("dask", workers=2), hw=["fake-cpu"]) as ex:
        yield ex


@pytest.fixture
def space():
    return SearchSpace.default(arch_info(tiny_config(layers=6, intermediate=256)))


# ---- jobs (module level: the workers import this module to run them) ---------------------
def square(x: int) -> int:
    return x * x


def raise_(kind: str) -> int:
    if kind == "oom":
        raise MemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    if kind == "input":
        raise InputError("--tasks: unknown task 'piqaa'")
    raise ValueError("something else")


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def die_once(marker: str) -> str:
    """The first attempt writes its worker's address and kills that worker's process."""
    from distributed import get_worker

    me = get_worker().address
    if not os.path.exists(marker):
        Path(marker).write_text(me)
        os.kill(os.getpid(), signal.SIGKILL)
    return me


class DieOnce(FakeEvaluator):
    """Kills its worker the first time it evaluates the `nth` subnet it is given."""

    def __init__(self, space, marker: str, nth_key: str) -> None:
        super().__init__(space)
        self.marker, self.nth_key = marker, nth_key

    def evaluate(self, spec):
        if spec.key() == self.nth_key and not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(spec)


class OutOfMemoryOnDeep(FakeEvaluator):
    """Out of memory on every subnet that keeps more than `keep` layers."""

    def __init__(self, space, keep: int) -> None:
        super().__init__(space)
        self.keep = keep

    def evaluate(self, spec):
        if len(spec.layers) > self.keep:
            raise MemoryError(f"out of memory: {len(spec.layers)} layers do not fit")
        return super().evaluate(spec)


def outcome(store, name):
    st = RunState.load(store, name)
    s = summary(store, name).to_dict()
    return ([(k, r.measured.values) for k, r in st.evals.items()], s["hypervolume"],
            [(p["key"], p["measured"]) for p in s["pareto"]], s["failed"])


def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def tables(path: Path) -> dict[str, list]:
    """Every stored record, less what differs from run to run (timestamps, durations)."""
    db = sqlite3.connect(path)
    q = {"evaluations": "SELECT key, subnet, task, accuracy, payload FROM evaluations",
         "measurements": "SELECT key, kind, median_ms, payload FROM measurements",
         "run_events": "SELECT run, seq, kind, payload FROM run_events ORDER BY run, seq"}
    out = {t: sorted((*row[:-1], json.dumps(clean(json.loads(row[-1])), sort_keys=True))
                     for row in db.execute(sql)) for t, sql in q.items()}
    db.close()
    return out


# ---- the executors themselves ------------------------------------------------------------
def test_local_and_dask_run_jobs_alike(cluster):
    jobs = [Job(f"sq{i}", square, (i,)) for i in range(4)] + [
        Job("sq1", square, (1,)), Job("oom", raise_, ("oom",)), Job("err", raise_, ("x",))]
    seen = {}
    for ex in (LocalExecutor(), cluster):
        order: list[str] = []
        outs = ex.map(jobs, lambda o, order=order: order.append(o.key))
        assert [o.key for o in outs] == [j.key for j in jobs]
        assert order == ["sq0", "sq1", "sq2", "sq3", "oom", "err"]  # job order, each once
        assert [o.value for o in outs[:5]] == [0, 1, 4, 9, 1]
        assert outs[5].failure.kind == "oom" and "out of memory" in outs[5].failure.reason
        assert outs[6].failure.kind == "error" and outs[6].failure.error == "ValueError"
        with pytest.raises(InputError, match="unknown task 'piqaa'"):
            ex.map([Job("input", raise_, ("input",))])
        seen[ex.name] = [(o.value, o.failure) for o in outs]
    assert seen["local"] == seen["dask"]
    workers = {o.worker for o in cluster.map([Job(f"s{i}", sleep_for, (0.2,))
                                              for i in range(4)])}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)


def test_options_name_the_fix():
    assert ExecutorSpec.from_options(None, None, 2).name == "dask"
    assert ExecutorSpec.from_options(None).name == "local"
    with pytest.raises(InputError, match="either --scheduler ADDRESS .* or --workers N"):
        ExecutorSpec.from_options("dask")
    with pytest.raises(InputError, match="are for --executor dask"):
        ExecutorSpec.from_options("local", None, 2)
    with pytest.raises(InputError, match="--executor 'ray'"):
        ExecutorSpec.from_options("ray")


def test_a_job_needing_resources_no_worker_has_is_refused(cluster):
    with pytest.raises(InputError, match="declares the resources device=1,other-hw=1"):
        cluster.map([Job("t", square, (2,), kind="timing", hw="other-hw")])


# ---- faults --------------------------------------------------------------------------------
def test_worker_killed_mid_job_completes_elsewhere_and_is_recorded_once(cluster, tmp_path,
                                                                         space):
    marker = tmp_path / "died"
    out = cluster.map([Job("die", die_once, (str(marker),))])[0]
    assert out.ok and out.attempts == 2
    assert out.value == out.worker != marker.read_text()  # another worker finished it
    cluster.client.wait_for_workers(2, timeout=60)

    cfg = SearchConfig(**SMALL)
    with Store(tmp_path / "s.sqlite") as store:
        search(cfg, store, "whole", evaluator=FakeEvaluator(space))
        key = RunState.load(store, "whole").batches[0]["specs"][3]
        from hwnas.supernet.space import SubnetSpec
        nth = SubnetSpec.from_dict(key, "test").key()
        search(cfg, store, "killed", evaluator=DieOnce(space, str(tmp_path / "m"), nth),
               executor=cluster)
        assert (tmp_path / "m").read_text() == "died"
        evals = [p["key"] for _, k, p in store.events("killed") if k == "eval"]
        assert len(evals) == len(set(evals)) == cfg.evals and evals.count(nth) == 1
        assert outcome(store, "killed") == outcome(store, "whole")
    cluster.client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("where", ["local", "dask"])
def test_injected_oom_is_recorded_infeasible_and_the_search_completes(where, cluster, tmp_path,
                                                                       space):
    cfg = SearchConfig(**SMALL)
    ex = cluster if where == "dask" else None
    with Store(tmp_path / "s.sqlite") as store:
        _, st = search(cfg, store, "oom", evaluator=OutOfMemoryOnDeep(space, 4), executor=ex)
        s = summary(store, "oom").to_dict()
        assert s["status"] == "done" and st.used == cfg.evals
        assert s["failed"] and all("MemoryError: out of memory" in f["reason"]
                                   for f in s["failed"])
        failed = {f["key"] for f in s["failed"]}
        assert all(len(r.spec.layers) <= 4 for r in st.evals.values())
        assert failed.isdisjoint(p["key"] for p in s["pareto"]) and s["pareto"]
        events = [p for _, k, p in store.events("oom") if k == "failed"]
        assert len(events) == len(failed) and events[0]["failure"]["kind"] == "oom"
        if where == "dask":
            search(cfg, store, "oom-local", evaluator=OutOfMemoryOnDeep(space, 4))
            assert outcome(store, "oom") == outcome(store, "oom-local")


def _search_cli(cache: Path, model_dir: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from hwnas.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "--cache-dir", str(cache), "search",
            "--evaluator", "fake", "--model", str(model_dir), "--hw", "fake-hw", "--tasks",
            "t", "--evals", "16", "--init", "6", "--batch", "4", "--inner-pop", "16",
            "--inner-gens", "4", "--final-max", "2", "--run", run, "--json", *extra]


def test_driver_killed_with_kill_9_resumes_from_the_store(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_config(layers=6, intermediate=256).save_pretrained(model_dir)
    cache = tmp_path / "cache"
    env = {**os.environ, "HWNAS_CACHE": str(cache)}
    done = subprocess.run(_search_cli(cache, model_dir, "whole"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    whole = json.loads(done.stdout)
    proc = subprocess.Popen(_search_cli(cache, model_dir, "cut", "--workers", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        with Store(cache / "store.sqlite") as st:
            while time.time() < deadline and proc.poll() is None:
                if sum(k == "eval" for _, k, _ in st.events("cut")) >= 7:
                    break
                time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only; its workers are orphaned
        proc.wait()
    finally:
        _kill_group(proc.pid)
    with Store(cache / "store.sqlite") as st:
        before = [p["key"] for _, k, p in st.events("cut") if k == "eval"]
    assert 7 <= len(before) < 16
    out = subprocess.run(_search_cli(cache, model_dir, "cut", "--workers", "2", "--resume"),
                         env=env, capture_output=True, text=True, timeout=300,
                         start_new_session=True)
    assert out.returncode == 0, out.stderr
    resumed = json.loads(out.stdout)
    for key in ("hypervolume", "pareto", "reference", "evals_used"):
        assert resumed[key] == whole[key], key
    with Store(cache / "store.sqlite") as st:
        after = [p["key"] for _, k, p in st.events("cut") if k == "eval"]
    assert after[:len(before)] == before and len(after) == len(set(after)) == 16


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- same results as in-process --------------------------------------------------------------
def _mc_task(path: Path, n: int, flip: bool = False) -> str:
    rows = [{"context": f"Question {i}: which one is it?", "choices": ["a stone", "a feather",
                                                                      "the mat"], "gold": i % 3}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in (rows[::-1] if flip else rows)))
    return str(path)


def test_evaluate_with_dask_workers_gives_exactly_the_local_results(tmp_path, capsys):
    from hwnas.cli import main

    d = save_tiny_model_dir(tmp_path / "tiny", heads=4, kv_heads=2)
    tasks = ",".join([_mc_task(tmp_path / "a.jsonl", 12), _mc_task(tmp_path / "b.jsonl", 9,
                                                                    True)])
    got = {}
    for cache, extra in (("local", ["--executor", "local"]),
                         ("dask", ["--executor", "dask", "--workers", "2"])):
        assert main(["--cache-dir", str(tmp_path / cache), "evaluate", "--model", str(d),
                     "--tasks", tasks, "--limit", "8", "--seed", "3", "--json", *extra]) == 0
        got[cache] = json.loads(capsys.readouterr().out)
    assert got["local"] == got["dask"]
    local, dask = tables(tmp_path / "local/store.sqlite"), tables(tmp_path / "dask/store.sqlite")
    assert len(local["evaluations"]) == 2 and local["evaluations"] == dask["evaluations"]
    rec = json.loads(local["evaluations"][0][-1])
    assert len(rec["predictions"]) == 8 and len(rec["extra"]["indices"]) == 8


def test_search_with_two_workers_equals_local_on_the_tiny_model(tmp_path, capsys):
    """The real evaluator: accuracy jobs on a tiny model, latency timed by the fake backend
    (timing jobs), the front re-measured: same front, same stored records."""
    from hwnas.cli import main

    d = save_tiny_model_dir(tmp_path / "tiny", heads=4, kv_heads=2)
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(FAKE_HW)
    task = _mc_task(tmp_path / "t.jsonl", 10)
    assert main(["--cache-dir", str(tmp_path / "local"), "profile", "--hw", str(hw),
                 "--model", str(d), "--json"]) == 0
    shutil.copytree(tmp_path / "local", tmp_path / "dask")
    capsys.readouterr()
    args = ["search", "--hw", str(hw), "--model", str(d), "--tasks", task, "--evals", "8",
            "--init", "4", "--batch", "2", "--inner-pop", "12", "--inner-gens", "3",
            "--limit", "6", "--final-limit", "8", "--final-max", "2", "--seed", "1",
            "--run", "r", "--json"]
    fronts = {}
    for cache, extra in (("local", []), ("dask", ["--workers", "2"])):
        assert main(["--cache-dir", str(tmp_path / cache), *args, *extra]) == 0
        s = json.loads(capsys.readouterr().out)
        fronts[cache] = [(p["key"], p["search"], p["measured"]) for p in s["pareto"]]
        assert s["status"] == "done" and s["evals_used"] == 8
    assert fronts["local"] == fronts["dask"] and fronts["local"]
    local, dask = tables(tmp_path / "local/store.sqlite"), tables(tmp_path / "dask/store.sqlite")
    for t in ("evaluations", "measurements", "run_events"):
        assert local[t] == dask[t], t
    assert any(json.loads(r[-1])["spec"]["target"] == "subnet" for r in dask["measurements"]
               if r[1] == "subnet")


def test_profile_with_workers_stores_the_local_records(tmp_path, capsys):
    from transformers import LlamaConfig

    from hwnas.cli import main

    model = tmp_path / "shape"
    LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=2, vocab_size=256,
                max_position_embeddings=256).save_pretrained(model)
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(FAKE_HW)
    out = {}
    for cache, extra in (("local", []), ("dask", ["--workers", "2"])):
        assert main(["--cache-dir", str(tmp_path / cache), "profile", "--hw", str(hw),
                     "--model", str(model), "--json", *extra]) == 0
        out[cache] = json.loads(capsys.readouterr().out)
    for k in ("total", "measured", "already", "complete", "failed", "errors"):
        assert out["local"][k] == out["dask"][k], k
    assert tables(tmp_path / "local/store.sqlite") == tables(tmp_path / "dask/store.sqlite")


# ---- exclusive timing --------------------------------------------------------------------------
def test_no_timing_job_ever_runs_beside_another_job(cluster, tmp_path):
    """Timing jobs (workload groups of the fake backend, which really sleeps and logs each
    timed call) mixed with evaluation-like work in one call on two workers that share this
    machine's cores: no timed call and no timing job overlaps any other job."""
    from hwnas.hw_profiles import load_profile
    from hwnas.profilers.backends.fake import FakeBackend, FakeSettings
    from hwnas.profilers.jobs import plan
    from hwnas.profilers.scaleout import time_group
    from hwnas.profilers.shape import ModelShape

    hwfile = tmp_path / "fake-cpu.yaml"
    hwfile.write_text(FAKE_HW)
    hw = load_profile(str(hwfile))
    shape = ModelShape.from_config(tiny_config(layers=2, intermediate=128))
    trace = tmp_path / "trace.txt"
    backend = FakeBackend(FakeSettings(sleep=True, overhead_ms=4.0, trace=str(trace)))
    groups = plan(hw, shape.arch, shape.space)
    timing = [Job(f"group{i}", time_group, (hw, shape, g, backend, False, None, None),
                  kind="timing", hw="fake-cpu") for i, g in enumerate(groups)]
    work = [Job(f"work{i}", sleep_for, (0.25,)) for i in range(6)]
    jobs = [work[0], work[1], timing[0], work[2], work[3], timing[1], work[4], work[5]]
    outs = {o.key: o for o in cluster.map(jobs)}
    assert all(o.ok for o in outs.values())
    assert all(outs[j.key].value.measured == len(g) for j, g in zip(timing, groups,
                                                                    strict=True))
    calls = [tuple(map(float, line.split()[1:])) for line in trace.read_text().splitlines()]
    assert len(calls) > 20
    timed = [(outs[j.key].started, outs[j.key].ended) for j in timing]
    others = {j.key: (outs[j.key].started, outs[j.key].ended) for j in jobs}
    assert len({outs[j.key].worker for j in work}) == 2  # the work did run in parallel

    def overlap(a, b):
        return a[0] < b[1] and b[0] < a[1]

    for c in calls:  # every timed call lies inside a timing job, beside nothing else
        assert any(t[0] <= c[0] and c[1] <= t[1] for t in timed)
        assert not any(overlap(c, others[w.key]) for w in work)
    for t, job in zip(timed, timing, strict=True):
        assert not any(overlap(t, iv) for k, iv in others.items() if k != job.key)


# ---- the real model, once -----------------------------------------------------------------
@pytest.mark.slow
def test_real_model_evaluation_on_workers_equals_local(monkeypatch):
    """SmolLM2-135M, PIQA on 24 seeded items: the same items and per-item choices."""
    from conftest import TEST_MODEL_CACHE

    from hwnas.evaluation import evaluate
    from hwnas.evaluation.scaleout import evaluate_on
    from hwnas.evaluation.target import from_name

    monkeypatch.setenv("HWNAS_CACHE", str(TEST_MODEL_CACHE))
    target = from_name("smollm2-135m")
    local = evaluate(target, None, ["piqa"], limit=24, seed=0)["piqa"]
    with open_executor(ExecutorSpec("dask", workers=2)) as ex:
        remote = evaluate_on(ex, target, ["piqa"], limit=24, seed=0)["piqa"]
    assert remote.predictions == local.predictions and remote.score == local.score
    assert remote.extra["indices"] == local.extra["indices"]
    assert remote.extra["metrics"] == local.extra["metrics"]
