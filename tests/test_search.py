"""The search: determinism, resume (Ctrl-C and kill -9), errors, problem, selection, runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import tiny_config

from hwnas.errors import InputError
from hwnas.search import Constraints, SearchConfig, search
from hwnas.search.evaluators import EvaluatorOptions, FakeEvaluator
from hwnas.search.objectives import objectives
from hwnas.search.problem import (
    ALGORITHMS,
    Normaliser,
    SearchProblem,
    SubnetRepair,
    make_algorithm,
)
from hwnas.search.runs import hv_curve, list_runs, pick, summary
from hwnas.search.selection import choose_batch
from hwnas.search.state import RunState
from hwnas.store import Store
from hwnas.supernet.arch import arch_info
from hwnas.supernet.space import SearchSpace

SMALL = dict(hw="fake-hw", model="tiny", tasks=("t",), evals=20, init=8, batch=4,
             inner_pop=24, inner_gens=6, final_max=3, evaluator="fake")


@pytest.fixture
def space():
    return SearchSpace.default(arch_info(tiny_config(layers=6, intermediate=256)))


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def outcome(store, name):
    st = RunState.load(store, name)
    s = summary(store, name)
    return ([(k, r.measured.values) for k, r in st.evals.items()], s.hypervolume,
            [(p.key, p.measured) for p in s.pareto])


ALL = ["linas", "linas-v1", "nsga2", "random", "local", "optuna-tpe", "optuna-gp"]


@pytest.mark.parametrize("strategy", ALL)
def test_same_seed_twice_gives_the_identical_run(store, space, strategy):
    cfg = SearchConfig(**SMALL, strategy=strategy)
    search(cfg, store, "a", evaluator=FakeEvaluator(space))
    search(cfg, store, "b", evaluator=FakeEvaluator(space))
    assert outcome(store, "a") == outcome(store, "b")
    a = outcome(store, "a")
    assert len(a[0]) == cfg.evals and len(a[1]) >= 2
    assert all(b >= a_ for a_, b in zip(a[1], a[1][1:], strict=False))  # HV never drops
    search(SearchConfig(**{**SMALL, "seed": 1}, strategy=strategy), store, "c",
           evaluator=FakeEvaluator(space))
    assert outcome(store, "c")[0] != a[0]


def test_linas_never_reevaluates_and_respects_the_budget(store, space):
    ev = FakeEvaluator(space)
    name, st = search(SearchConfig(**SMALL), store, "r", evaluator=ev)
    assert ev.calls == SMALL["evals"] == st.used
    evals = [p for _, k, p in store.events(name) if k == "eval"]
    assert len({e["key"] for e in evals}) == len(evals)
    batches = [p for _, k, p in store.events(name) if k == "batch"]
    assert batches[0]["kind"] == "initial" and batches[1]["kind"] == "linas"
    assert batches[1]["predictors"]["perplexity"] and "rng_state" in batches[1]  # the default
    assert all(len(p["predicted"]) == len(p["specs"]) for p in batches[1:])


class Interrupt(FakeEvaluator):
    def __init__(self, space, after):
        super().__init__(space)
        self.after = after

    def evaluate(self, spec):
        if self.calls >= self.after:
            raise KeyboardInterrupt
        return super().evaluate(spec)


@pytest.mark.parametrize("after,strategy", [(3, "linas"), (9, "linas"), (14, "linas"),
                                            (11, "nsga2"), (14, "local"), (10, "linas-v1"),
                                            (13, "optuna-tpe")])
def test_resume_after_ctrl_c_ends_like_an_uninterrupted_run(store, space, after, strategy):
    cfg = SearchConfig(**SMALL, strategy=strategy)
    search(cfg, store, "whole", evaluator=FakeEvaluator(space))
    with pytest.raises(KeyboardInterrupt):
        search(cfg, store, "cut", evaluator=Interrupt(space, after))
    ev = FakeEvaluator(space)
    search(cfg, store, "cut", resume=True, evaluator=ev)
    assert ev.calls == cfg.evals - after  # nothing evaluated twice
    assert outcome(store, "cut") == outcome(store, "whole")


def _cli(cache, model_dir, run, resume=False):
    cmd = [sys.executable, "-c", "import sys; from hwnas.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "--cache-dir", str(cache), "search",
           "--evaluator", "fake", "--model", str(model_dir), "--hw", "fake-hw", "--tasks",
           "t", "--evals", "20", "--init", "8", "--batch", "4", "--inner-pop", "24",
           "--inner-gens", "6", "--final-max", "3", "--run", run, "--json"]
    return cmd + (["--resume"] if resume else [])


def _kinds(store, run):
    return [k for _, k, _ in store.events(run)]


def test_resume_after_kill_9_at_random_points(tmp_path, hwnas_cache):
    model_dir = tmp_path / "tiny"
    tiny_config(layers=6, intermediate=256).save_pretrained(model_dir)
    cache = hwnas_cache
    done = subprocess.run(_cli(cache, model_dir, "whole"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    whole = json.loads(done.stdout)
    with Store(cache / "store.sqlite") as st:
        n_whole = len(st.events("whole"))
        # kill points before the Pareto set's re-measurement: its events and "done" follow
        # each other within a millisecond, too fast for the poll below to stop the child between
        before_final = _kinds(st, "whole").index("predicted")
    rng = np.random.default_rng(0)
    for trial, point in enumerate(sorted(rng.integers(3, before_final, 3))):
        run = f"killed{trial}"
        proc = subprocess.Popen(_cli(cache, model_dir, run),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        with Store(cache / "store.sqlite") as st:
            while time.time() < deadline and proc.poll() is None:
                if len(st.events(run)) >= point:
                    break
                time.sleep(0.005)
            # freeze the child where it is, so that what we check is what the kill interrupts
            assert proc.poll() is None, f"the search ended before the kill point {point}"
            os.kill(proc.pid, signal.SIGSTOP)
            _, status = os.waitpid(proc.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), status
            kinds = _kinds(st, run)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL  # killed while running, not after an exit
            killed_at = len(kinds)
            assert kinds[0] == "start" and killed_at >= point  # started, past the kill point
            assert "done" not in kinds and len(kinds) < n_whole  # ... and not finished
            assert _kinds(st, run) == kinds  # nothing written after the freeze
        out = subprocess.run(_cli(cache, model_dir, run, resume=True),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (killed_at, out.stderr)
        resumed = json.loads(out.stdout)
        for key in ("hypervolume", "pareto", "reference", "evals_used"):
            assert resumed[key] == whole[key], (key, killed_at)
        with Store(cache / "store.sqlite") as st:
            assert _kinds(st, run)[-1] == "done" and _kinds(st, run)[:killed_at] == kinds


def test_errors_are_clear(store, space):
    with pytest.raises(InputError, match="Did you mean 'latency'"):
        SearchConfig(**{**SMALL, "objectives": ("accuracy", "latncy")}).check()
    with pytest.raises(InputError, match="smaller than the initial population"):
        SearchConfig(**{**SMALL, "evals": 5, "init": 8}).check()
    with pytest.raises(InputError, match="smaller than the initial population"):
        SearchConfig(**{**SMALL, "evals": 6, "init": 0}).check()  # default init is 8
    with pytest.raises(InputError, match="infeasible"):
        search(SearchConfig(**SMALL, constraints=Constraints(max_params=10)), store, "x",
               evaluator=FakeEvaluator(space))
    with pytest.raises(InputError, match="infeasible: the full model itself"):
        search(SearchConfig(**SMALL, constraints=Constraints(min_accuracy=0.99)), store, "y",
               evaluator=FakeEvaluator(space))
    with pytest.raises(InputError, match="--min-accuracy"):
        SearchConfig(**SMALL, constraints=Constraints(min_accuracy=3.0)).check()
    search(SearchConfig(**SMALL), store, "z", evaluator=FakeEvaluator(space))
    with pytest.raises(InputError, match="already exists; pass --resume"):
        search(SearchConfig(**SMALL), store, "z", evaluator=FakeEvaluator(space))
    with pytest.raises(InputError, match="other settings .*seed"):
        search(SearchConfig(**{**SMALL, "seed": 3}), store, "z", resume=True,
               evaluator=FakeEvaluator(space))
    with pytest.raises(InputError, match="no run named"):
        search(SearchConfig(**SMALL), store, "nope", resume=True,
               evaluator=FakeEvaluator(space))
    try:
        import numba  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="needs the 'numba' library"):
            make_algorithm("agemoea", space, 10, 2)
    with pytest.raises(InputError, match="--algorithm: unknown search algorithm"):
        make_algorithm("nsga22", space, 10, 2)


def test_evaluator_options_are_typed_and_unknown_names_refused(store, space, tmp_path):
    cfg = SearchConfig(**SMALL)
    with pytest.raises(InputError, match=r"unknown evaluator option\(s\) lokc, supernett; "
                                         r"known: lock, supernet"):
        search(cfg, store, "o", evaluator=FakeEvaluator(space), lokc="x", supernett=None)
    with pytest.raises(InputError, match="evaluator option lock: expected a file path or "
                                         "None, got int"):
        search(cfg, store, "o", lock=3)
    with pytest.raises(InputError, match="evaluator option supernet: expected a Supernet"):
        search(cfg, store, "o", supernet="tiny")
    assert store.run_config("o") is None  # refused before anything started
    assert EvaluatorOptions.of(lock=tmp_path) == EvaluatorOptions(lock=tmp_path)
    # through the registry: the builder gets the options as typed fields
    model_dir = tmp_path / "tiny"
    tiny_config(layers=6, intermediate=256).save_pretrained(model_dir)
    name, st = search(SearchConfig(**{**SMALL, "model": str(model_dir)}), store, "f",
                      lock=tmp_path / "timing.lock")
    assert st.done is not None and st.used == SMALL["evals"]
    assert st.start is not None and st.start["evaluator"]["evaluator"] == "fake"


def test_unknown_task_and_missing_profile_name_the_fix(store, tmp_path):
    from hwnas.search.real import check_tasks, latency_bundle

    with pytest.raises(InputError, match="unknown task 'piqaa'. Did you mean 'piqa'"):
        check_tasks(("piqaa",))
    model_dir = tmp_path / "tiny"
    tiny_config(layers=4).save_pretrained(model_dir)
    with pytest.raises(InputError, match="hwnas profile --hw cpu-torch-fp32"):
        latency_bundle("cpu-torch-fp32", str(model_dir), store, tmp_path / "lat")


def test_constraints_are_respected_by_the_front(store, space):
    full = FakeEvaluator(space).reference().values
    bound = 0.7 * full["latency_ms"]
    search(SearchConfig(**SMALL, constraints=Constraints(max_latency_ms=bound)), store, "c",
           evaluator=FakeEvaluator(space))
    s = summary(store, "c")
    assert s.pareto and all(p.search["latency_ms"] <= bound for p in s.pareto)


def test_run_json_pick_and_list(store, space):
    cfg = SearchConfig(**{**SMALL, "objectives": ("accuracy", "latency", "params")})
    search(cfg, store, "j", evaluator=FakeEvaluator(space))
    s = summary(store, "j")
    assert s.hw == "fake-hw" and len(s.hypervolume) == len(s.hypervolume_evals)
    assert set(s.reference.measured or {}) >= {"latency_ms", "accuracy", "params"}
    for p in s.pareto:
        assert set(p.measured or {}) >= {"latency_ms", "accuracy", "params"}
        assert "latency_ms" in p.predicted["mean"]
    d = s.to_dict()  # the run JSON (`hwnas runs show --json`)
    assert list(d) == ["name", "hw", "model", "tasks", "objectives", "strategy", "status",
                       "evals_used", "evals", "config", "failed", "hypervolume",
                       "hypervolume_evals", "normalisation", "reference", "pareto",
                       "agreement", "evaluator"]
    assert json.loads(json.dumps(d)) == d
    for p in d["pareto"]:
        assert list(p) == ["key", "subnet", "predicted", "search", "measured",
                           "measured_detail"]
        assert set(p["subnet"]) == {"layers", "intermediate_size", "kv_heads"}
    assert d["config"] == cfg.to_dict() and d["tasks"] == ["t"]
    assert set(d["agreement"]["latency_ms"]) == {"n", "share", "tolerance", "relative_errors"}
    lat = [p.measured["latency_ms"] for p in s.pareto if p.measured]
    assert len(lat) == len(s.pareto) and lat == sorted(lat)
    model, spec = pick(store, "j", 1)
    assert model == "tiny" and spec.to_dict() == d["pareto"][0]["subnet"]
    with pytest.raises(InputError, match="--pick 99"):
        pick(store, "j", 99)
    with pytest.raises(InputError, match="no run named"):
        pick(store, "missing", 1)
    assert [r["name"] for r in list_runs(store)] == ["j"]
    curve = hv_curve(RunState.load(store, "j"), cfg)
    assert len(curve) == cfg.evals and curve[-1][1] == pytest.approx(s.hypervolume[-1])


def test_repair_keeps_a_layer_and_writes_the_canonical_encoding(space):
    X = np.zeros((3, space.n_var))
    X[1] = space.bounds()[1] + 3.7
    out = SubnetRepair(space)._do(None, X, random_state=np.random.default_rng(0))
    for row in out:
        assert row[0::3].sum() >= 1
        assert np.array_equal(row, space.canonical(row))


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_algorithm_runs_on_the_problem(space, name):
    from pymoo.optimize import minimize

    if name == "agemoea":
        pytest.importorskip("numba")  # pymoo's AGE-MOEA needs it; without: a clear error
    ev = FakeEvaluator(space)
    norm = Normaliser(tuple(objectives(["accuracy", "latency"])), ev.reference().values)
    prob = SearchProblem(space, norm, Constraints(), lambda specs: [ev.values(s) for s in specs])
    res = minimize(prob, make_algorithm(name, space, 12, 2), ("n_gen", 3), seed=1)
    assert res.F is not None and len(res.F) >= 1


def test_choose_batch_prefers_improvement_and_spreads():
    anchors = np.array([[0.5, 0.5]])
    mean = np.array([[0.4, 0.4], [0.41, 0.41], [0.9, 0.1], [0.6, 0.6]])
    sd = np.zeros_like(mean)
    viol = np.array([0.0, 0.0, 0.0, 0.0])
    got = choose_batch(mean, sd, viol, 2, anchors, np.array([1.0, 1.0]))
    assert got[0] == 0 and got[1] == 2  # the best, then the far one (not its twin)
    sd[3] = [0.5, 0.5]  # a very uncertain candidate gets its chance
    assert 3 in choose_batch(mean, sd, viol, 1, anchors, np.array([1.0, 1.0]))
    viol[0] = 1.0  # predicted infeasible: not picked while feasible ones improve
    assert choose_batch(mean, np.zeros_like(mean), viol, 1, anchors,
                        np.array([1.0, 1.0])) == [1]


def test_accuracy_floor_makes_guessing_worth_nothing():
    from hwnas.search.objectives import objectives
    from hwnas.search.problem import Normaliser, hypervolume

    objs = tuple(objectives(["accuracy", "latency"]))
    plain = Normaliser(objs, {"accuracy": 0.64, "latency_ms": 100.0})
    floored = Normaliser(objs, {"accuracy": 0.64, "latency_ms": 100.0, "accuracy_chance": 0.5})
    guess = {"accuracy": 0.5, "latency_ms": 5.0}  # a tiny subnet that guesses
    full = {"accuracy": 0.64, "latency_ms": 100.0}
    assert floored.row(guess)[0] == pytest.approx(1.0)  # at the reference point
    assert floored.row(full)[0] == pytest.approx(0.72)
    assert plain.row(guess)[0] == pytest.approx(0.5)
    ref = floored.ref_point()
    both = floored.matrix([guess, full])
    assert hypervolume(both, ref) == pytest.approx(hypervolume(floored.matrix([full]), ref))
    assert hypervolume(plain.matrix([guess, full]), ref) > hypervolume(plain.matrix([full]), ref)
    sd = floored.sd_row({"accuracy": 0.01, "latency_ms": 1.0}, full)
    assert sd[0] == pytest.approx(0.02)  # spreads scale the same way


def test_chance_accuracy_of_tasks(tmp_path):
    from hwnas.datasets.tasks import chance_accuracy

    task = tmp_path / "qa.jsonl"
    task.write_text("\n".join(json.dumps({"context": f"Q{i}", "choices": ["a", "b", "c", "d"][:k],
                                          "gold": 0}) for i, k in enumerate([2, 4])))
    assert chance_accuracy(str(task)) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert chance_accuracy("heldout_ppl") is None


def test_task_plan_follows_the_objectives():
    from hwnas.search.quality import task_plan

    assert task_plan(("piqa",), ("accuracy", "latency")) == (
        task_plan(("piqa",), ("gold_prob", "params")))
    plan = task_plan(("piqa", "arc_easy"), ("accuracy", "latency"))
    assert plan.search == plan.final == ("piqa", "arc_easy")
    plan = task_plan(("piqa",), ("perplexity", "latency"))  # steer on held-out text
    assert plan.search == ("heldout_ppl",) and plan.final == ("piqa", "heldout_ppl")
    plan = task_plan(("piqa", "heldout_ppl"), ("perplexity", "latency"))
    assert plan.search == ("heldout_ppl",) and plan.final == ("piqa", "heldout_ppl")
    plan = task_plan(("piqa",), ("perplexity", "latency"), min_accuracy=0.6)  # the bound reads it
    assert plan.search == ("piqa", "heldout_ppl")
    plan = task_plan(("piqa",), ("latency", "params"))  # no quality objective: as named
    assert plan.search == plan.final == ("piqa",)
