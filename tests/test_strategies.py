"""The search's parts behind the one loop: the strategy registry, the shared initial design,
mutations, the surrogates that fit few points, and expected-hypervolume batch selection."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config
from test_search import SMALL

from hwnas.search import SearchConfig, search
from hwnas.search.config import STRATEGIES as NAMES
from hwnas.search.evaluators import FakeEvaluator
from hwnas.search.problem import hypervolume
from hwnas.search.selection import choose_batch_ehvi, hv2d
from hwnas.search.state import RunState
from hwnas.search.strategies import STRATEGIES
from hwnas.search.strategy import initial_design, mutations, ranked_family, ranked_steps
from hwnas.search.surrogates import (
    ChosenSurrogate,
    RidgeSurrogate,
    Surrogates,
    XGBSurrogate,
    additive_features,
)
from hwnas.store import Store
from hwnas.supernet.arch import arch_info
from hwnas.supernet.space import SearchSpace


@pytest.fixture
def space():
    return SearchSpace.default(arch_info(tiny_config(layers=8, intermediate=256)))


def test_registry_and_config_name_the_same_strategies():
    assert sorted(STRATEGIES.names()) == sorted(NAMES)


def test_every_strategy_starts_from_the_same_initial_design(tmp_path, space):
    with Store(tmp_path / "s.sqlite") as store:
        firsts = []
        for name in NAMES:
            search(SearchConfig(**{**SMALL, "evals": 12}, strategy=name), store, name,
                   evaluator=FakeEvaluator(space))
            firsts.append(RunState.load(store, name).batches[0]["specs"])
    assert all(f == firsts[0] for f in firsts)
    keys = {json_key(s) for s in firsts[0]}
    assert len(keys) == len(firsts[0]) == SMALL["init"]


def json_key(d):
    return tuple(tuple(v) for v in d.values())


def test_initial_design_is_structured_then_graded(space):
    rng = np.random.default_rng(0)
    d = initial_design(space, rng, 10)
    assert len({s.key() for s in d}) == 10
    uniform = [s for s in d if s.is_uniform() and s.num_layers == space.arch.num_layers]
    assert any(s.intermediate_size[0] < space.width_choices[-1] for s in uniform)
    assert any(s.num_layers == space.arch.num_layers - 1 for s in d)


def test_mutations_move_one_or_two_genes(space):
    rng = np.random.default_rng(1)
    parent = space.uniform(width=space.width_choices[2])
    kids = mutations(space, [parent], rng, 30, {parent.key()})
    assert kids and len({k.key() for k in kids}) == len(kids)
    x0 = space.encode(parent)
    for k in kids:
        assert 1 <= int((space.encode(k) != x0).sum()) <= 3  # a restored layer moves its keep gene
        assert k.key() != parent.key()


def _additive_data(space, n, rng, level=0.5):
    """An additive truth: each dropped layer and width cut costs a per-layer amount."""
    w_drop = np.linspace(0.2, 1.0, space.arch.num_layers)
    specs = [space.sample_graded(rng, level * rng.random()) for _ in range(n)]
    y = []
    for s in specs:
        cost = sum(w_drop[i] for i in range(space.arch.num_layers) if i not in s.layers)
        cost += sum(0.3 * (1 - w / space.width_choices[-1]) for w in s.intermediate_size)
        y.append(0.7 - 0.05 * cost)
    return specs, np.array(y)


def _spearman(a, b):
    from scipy.stats import spearmanr
    return spearmanr(a, b).statistic


def test_ridge_extrapolates_where_trees_cannot(space):
    rng = np.random.default_rng(2)
    specs, y = _additive_data(space, 30, rng, level=0.4)  # near-full subnets only
    far, y_far = _additive_data(space, 40, np.random.default_rng(3), level=1.0)
    ridge = RidgeSurrogate(space, "accuracy", 0).fit(specs, y).predict(far)
    xgb = XGBSurrogate(space, "accuracy", 0).fit(specs, y).predict(far)
    err_r = np.abs(ridge.mean - y_far).mean()
    err_x = np.abs(xgb.mean - y_far).mean()
    assert err_r < 0.5 * err_x
    assert _spearman(ridge.mean, y_far) > _spearman(xgb.mean, y_far)
    assert (ridge.sd > 0).all()
    chosen = ChosenSurrogate(space, "accuracy", 0).fit(specs, y)
    assert chosen.chosen == "ridge" and chosen.cv["ridge"] > chosen.cv["xgb"]
    assert chosen.version.startswith("ridge:")


def test_layer_order_prior_ranks_cuts_from_few_evaluations(space):
    """A truth where a layer's cost follows its influence (the layer order): with the order
    as a prior the ridge ranks unseen subnets better from 8 evaluations than without."""
    order = (5, 2, 6, 1, 3, 4, 7, 0)
    cost = np.zeros(8)
    cost[list(order)] = np.geomspace(0.05, 2.0, 8)

    def data(n, seed):
        rng = np.random.default_rng(seed)
        specs = [space.sample_graded(rng, rng.random()) for _ in range(n)]
        return specs, np.array([-sum(cost[i] for i in range(8) if i not in s.layers)
                                - 0.1 * sum(1 - w / space.width_choices[-1]
                                            for w in s.intermediate_size) for s in specs])

    test, y_test = data(300, 99)
    X = additive_features(space, test, order)
    assert X.shape == (300, 3 * 8 + 5)
    assert np.allclose(additive_features(space, test), X[:, :-2])
    gains = []
    for seed in range(5):
        specs, y = data(8, seed)
        plain = RidgeSurrogate(space, "accuracy", 0).fit(specs, y).predict(test).mean
        prior = RidgeSurrogate(space, "accuracy", 0, layer_order=order).fit(specs, y)
        gains.append(_spearman(prior.predict(test).mean, y_test) - _spearman(plain, y_test))
    assert min(gains) > 0 and np.mean(gains) > 0.03
    chosen = ChosenSurrogate(space, "accuracy", 0, layer_order=order).fit(specs, y)
    assert chosen.model_.layer_order == order


def test_ranked_family_cuts_in_order_at_every_uniform_width_and_kv(space):
    order = (5, 2, 6, 1, 3, 4, 7, 0)
    fam = ranked_family(space, order, set())
    depths = space.arch.num_layers - space.min_layers + 1
    assert len(fam) == depths * len(space.width_choices) * len(space.kv_choices)
    for s in fam:
        assert s.is_uniform()
        k = space.arch.num_layers - s.num_layers
        assert set(range(8)) - set(s.layers) == set(order[:k])
    full = space.uniform()
    assert full.key() in {s.key() for s in fam}
    assert full.key() not in {s.key() for s in ranked_family(space, order, {full.key()})}


def test_ridge_posterior_spread_is_calibrated_on_noisy_data(space):
    rng = np.random.default_rng(4)
    specs, y = _additive_data(space, 40, rng, level=0.8)
    noisy = y + rng.normal(0, 0.01, len(y))
    test, y_test = _additive_data(space, 200, np.random.default_rng(5), level=0.8)
    p = RidgeSurrogate(space, "accuracy", 0).fit(specs, noisy).predict(test)
    z = (p.mean - (y_test + np.random.default_rng(6).normal(0, 0.01, len(y_test)))) / p.sd
    inside = float(np.mean(np.abs(z) < 1.96))
    assert 0.8 <= inside <= 1.0  # nominal 95%


def test_exact_values_are_known_and_quality_is_not(space):
    def exact(s):
        return {"params": float(sum(s.intermediate_size))}

    sur = Surrogates(space, ["accuracy", "params"], exact, None, seed=0)
    assert sur.known() == {"params"}


def test_hv2d_is_the_hypervolume():
    rng = np.random.default_rng(7)
    ref = np.array([1.2, 1.2])
    for _ in range(20):
        F = rng.random((int(rng.integers(1, 12)), 2)) * 1.4
        assert hv2d(F, ref) == pytest.approx(hypervolume(F, ref), abs=1e-12)


def test_ehvi_prefers_improvement_uncertainty_and_spreads():
    ref = np.array([1.2, 1.2])
    anchors = np.array([[0.2, 1.0], [1.0, 0.2]])
    mean = np.array([[0.5, 0.5], [0.55, 0.5], [1.1, 1.1], [0.3, 0.85], [0.9, 0.9]])
    sd = np.zeros_like(mean)
    viol = np.zeros(len(mean))
    rng = np.random.default_rng(0)
    idx = choose_batch_ehvi(mean, sd, viol, 2, anchors, ref, rng)
    assert idx[0] == 0 and 1 not in idx  # the best, then not its dominated twin
    # a dominated point with a wide spread can still be worth a look; a known one is not
    sd2 = sd.copy()
    sd2[4] = [0.4, 0.0]
    picks = choose_batch_ehvi(mean, sd2, viol, 3, anchors, ref, np.random.default_rng(0))
    assert 4 in picks
    viol2 = viol.copy()
    viol2[0] = 0.5
    assert 0 not in choose_batch_ehvi(mean, sd, viol2, 1, anchors, ref, rng)


def test_gold_probability_is_the_softmax_share_of_the_metric_scores():
    from hwnas.datasets.tasks import Item
    from hwnas.evaluation.metrics import gold_probabilities, predictions

    req = (("c", " a"), ("c", " bbbb"))
    items = [Item(req, 1, ("a", "bbbb")), Item(req, 0, ("a", "bbbb"))]
    lls = [[-1.0, -2.0], [-3.0, -1.0]]
    p = gold_probabilities("acc", items, lls)
    assert p[0] == pytest.approx(1 / (1 + np.e)) and p[1] == pytest.approx(1 / (1 + np.e ** 2))
    pn = gold_probabilities("acc_norm", items, lls)  # per character: -1/1 vs -2/4
    assert pn[0] > 0.5 and predictions("acc_norm", items, lls)[0] == 1


def test_initial_design_drops_the_least_influential_layers_first(space):
    order = (5, 2, 6, 1, 3, 4, 7, 0)
    d = initial_design(space, np.random.default_rng(0), 12, order)
    depth = [s for s in d if s.is_uniform() and s.num_layers < space.arch.num_layers
             and s.intermediate_size[0] == space.width_choices[-1]
             and s.kv_heads[0] == space.kv_choices[-1]]
    cuts = {tuple(sorted(set(range(8)) - set(s.layers))) for s in depth}
    assert {tuple(sorted(order[:k])) for k in (1, 2, 3)} <= cuts
    same = initial_design(space, np.random.default_rng(0), 12, order)
    assert [s.key() for s in same] == [s.key() for s in d]


def test_ranked_steps_drop_the_next_layer_and_restore_the_last(space):
    order = (5, 2, 6, 1, 3, 4, 7, 0)
    parent = space.uniform(drop=[5, 2], width=space.width_choices[1])
    steps = ranked_steps(space, [parent], order, set())
    dropped = [tuple(sorted(set(range(8)) - set(s.layers))) for s in steps]
    assert dropped == [(2, 5, 6), (5,)]
    restored = steps[1]
    pos = restored.layers.index(2)
    assert restored.intermediate_size[pos] == space.width_choices[-1]
    assert all(w == space.width_choices[1] for i, w in zip(restored.layers,
                                                           restored.intermediate_size,
                                                           strict=True) if i != 2)
    assert ranked_steps(space, [parent], order, {s.key() for s in steps}) == []


def test_optuna_strategies_propose_fresh_subnets_under_a_constraint(tmp_path, space):
    from hwnas.search.objectives import Constraints

    with Store(tmp_path / "s.sqlite") as store:
        for name in ("optuna-tpe", "optuna-gp"):
            cons = Constraints(max_params=0.9 * FakeEvaluator(space).exact(space.full())["params"])
            search(SearchConfig(**{**SMALL, "evals": 16}, strategy=name, constraints=cons),
                   store, name, evaluator=FakeEvaluator(space))
            st = RunState.load(store, name)
            later = [s for i, b in st.batches.items() if i > 0 for s in b["specs"]]
            assert later and all(b["kind"] == name for i, b in st.batches.items() if i > 0)
            assert len({json_key(s) for s in later}) == len(later)  # nothing proposed twice


def test_optuna_strategy_without_optuna_is_a_clear_error(monkeypatch):
    import builtins

    from hwnas.errors import InputError
    from hwnas.search.optuna_strategies import OptunaTPE

    real = builtins.__import__

    def no_optuna(name, *a, **kw):
        if name == "optuna":
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(InputError, match="needs optuna"):
        OptunaTPE()
