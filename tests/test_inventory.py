"""The synthetic inventory experiment: a hand-worked case, common random numbers, the signal
switch, the inventory limit, no look-ahead, the paired statistics and the command line."""
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.replay.inventory import EXPERIMENT_CONFIG, SeedRun, SyntheticEvents, SyntheticMarket, _paired, equity_by_step, run_experiment, run_policies, synthetic_events
from clusterlob.inventory.__main__ import main
from clusterlob.replay import replay_arrays
from clusterlob.cluster.roles import DIRECTIONAL, PASSIVE
from clusterlob.replay.strategy import StrategyConfig

sys.path.insert(0, str(Path(__file__).parent))
from twins.replay import reference_replay  # noqa: E402

SMALL = SyntheticMarket(n_events=3_000, mean_regime_events=300)


# -- a case worked out by hand ------------------------------------------------------------
#
# tick 1; no skew (skew_ticks 0), so alpha acts only through theta: fixed theta_eff = 2,
# dynamic theta_eff = 2 * (1 - |tanh(alpha)|).  Half-spread 2 ticks, quote size 1, no fee,
# decisions every 100 us, latency 10 us, signal unit 1 mean size, mean size = last trade
# (size_weight 1), half-life 10^6 s (no decay to speak of).
#
#  step  t(us) event                          both / fixed / dynamic
#   0     0   book 100 / 101 (mid 100.5)      decide: alpha 0, inv 0 -> bid 98, ask 103 (live at 10)
#   0    20   trade SELL 97 x 1, passive      97 < 98: both BUY 1 @ 98, capture 100.5 - 98 = 2.5
#   1    25   book 100 / 101
#   1    30   trade BUY 101 x 3, directional  101 > 103? no fill.  Alpha: +3 / (3 * 1) = 1
#   2   100   book 100 / 101                  decide with inventory 1, tanh(1) = 0.7616:
#                                             fixed:   res 100.5 - 2 = 98.5      -> bid 96, ask 101
#                                             dynamic: res 100.5 - 0.4768 = 100.02 -> bid 98, ask 103
#   2   120   trade BUY 102 x 1, passive      fixed: 102 > 101, SELL 1 @ 101, capture +0.5, inv 0
#                                             dynamic: 102 > 103? no fill, inv stays 1
#   3   130   book 104 / 105 (mid 104.5)      dynamic: the best bid 104 has passed our ask 103: the
#                                             book went through it, SELL 1 @ 103 (book-through),
#                                             capture 1 * (103 - 100.5) = 2.5 at the mid before
#                                             the update; then drift 0 (flat) for both
#   3   140   trade SELL 104 x 0.5, passive   above both bids: no fill
#
# fixed:   cash -98 + 101 = 3, inv 0:   PnL 3   = capture 3.0 + drift 0
# dynamic: cash -98 + 103 = 5, inv 0:   PnL 5.0 = capture 5.0 + drift 0
HAND_CONFIG = StrategyConfig(skew_ticks=0.0, theta=2.0, min_half_ticks=2.0, half_spread_bps=0.0,
                             quote_size=1.0, max_inventory=5.0, maker_fee_bps=0.0,
                             requote_interval_us=100, order_latency_us=10, fill_mode="cross",
                             half_life_s=1e6, size_weight=1.0, signal_scale_trades=1.0,
                             signal_norm="trades", cancel_latency_us=10, response_latency_us=0)


def hand_events():
    i64 = lambda v: np.array(v, np.int64)   # noqa: E731
    f64 = lambda v: np.array(v, np.float64)  # noqa: E731
    bid = f64([100, 100, 100, 104])
    return SyntheticEvents(i64([20, 30, 120, 140]), f64([97, 101, 102, 104]), f64([1, 3, 1, 0.5]),
                           np.array([-1, 1, 1, -1], np.int8),
                           np.array([PASSIVE, DIRECTIONAL, PASSIVE, PASSIVE], np.int8),
                           i64([0, 25, 100, 130]), bid, bid + 1, np.zeros(4, np.int8), bid + 0.5)


def test_hand_case_fixed_sells_dynamic_holds():
    runs = run_policies(hand_events(), 1.0, HAND_CONFIG)
    fixed, dynamic = runs["fixed"], runs["dynamic"]
    assert fixed.fills.price.tolist() == [98.0, 101.0] and fixed.fills.side.tolist() == [1, -1]
    assert dynamic.fills.price.tolist() == [98.0, 103.0] and dynamic.fills.side.tolist() == [1, -1]
    assert dynamic.fills.reason.tolist() == [2, 3]                  # trade-through, book-through
    f, d = fixed.summary, dynamic.summary
    assert (f.spread_capture, f.inventory_drift, f.pnl_total, f.ending_inventory) == (3.0, 0.0, 3.0, 0.0)
    assert (d.spread_capture, d.inventory_drift, d.pnl_total, d.ending_inventory) == (5.0, 0.0, 5.0, 0.0)
    assert equity_by_step(hand_events(), fixed).tolist() == [2.5, 2.5, 3.0, 3.0]
    assert equity_by_step(hand_events(), dynamic).tolist() == [2.5, 2.5, 2.5, 5.0]
    # both policies share everything but inventory_mode
    assert fixed.config == dataclasses.replace(dynamic.config, inventory_mode="fixed")


def test_paired_statistics_by_hand():
    def runs(policy, pnls):
        return [SeedRun(s, 2.0, policy, p, p, 0.0, 0.0, 1, 0.1, 0.1, 0.0) for s, p in enumerate(pnls)]

    d = _paired(2.0, runs("fixed", [1.0, 2.0, 3.0]), runs("dynamic", [2.0, 4.0, 5.0]))
    # differences 1, 2, 2: mean 5/3, std sqrt(1/3), t = (5/3) / (sqrt(1/3) / sqrt(3)) = 5
    assert d.pnl_mean == pytest.approx(5 / 3) and d.pnl_std == pytest.approx(math.sqrt(1 / 3))
    assert d.t_stat == pytest.approx(5.0)
    assert d.p_value == pytest.approx(0.037749551, rel=1e-6)    # 2 * P(T_2 > 5)
    assert d.share_positive == 1.0 and d.relative_to_fixed == pytest.approx(11 / 6 - 1)
    assert d.spread_capture_mean == pytest.approx(5 / 3) and d.inventory_drift_mean == 0.0
    with pytest.warns(RuntimeWarning, match="undefined"):
        same = _paired(2.0, runs("fixed", [1.0, 2.0]), runs("dynamic", [1.0, 2.0]))
    assert math.isnan(same.t_stat) and same.pnl_mean == 0.0


# -- the synthetic market -----------------------------------------------------------------

def test_market_is_seeded_and_well_formed():
    a, b, c = (synthetic_events(SMALL, s) for s in (7, 7, 8))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.mid, c.mid)
    tick = SMALL.tick_size
    assert np.allclose(a.book_ask - a.book_bid, tick)
    assert np.all(a.trade_ts_us > a.book_ts_us) and np.all(a.trade_ts_us[:-1] < a.book_ts_us[1:])
    # a buy taker trades at or above the ask, a sell at or below the bid, on the tick grid
    assert np.all(np.where(a.trade_side > 0, a.trade_price >= a.book_ask - 1e-9, a.trade_price <= a.book_bid + 1e-9))
    assert np.allclose(np.rint(a.trade_price / tick) * tick, a.trade_price)
    assert np.all(a.trade_amount >= SMALL.lot_size)
    # regimes alternate: a trend is always between noise regimes
    changes = np.flatnonzero(np.diff(a.regime)) + 1
    kinds = a.regime[np.r_[0, changes]]
    assert kinds[0] == 0 and np.all((kinds[:-1] == 0) != (kinds[1:] == 0))


def test_alpha_flow_leans_with_the_trend():
    m = dataclasses.replace(SMALL, n_events=40_000, trend_lean=0.6)
    e = synthetic_events(m, 1)
    alpha = e.roles == DIRECTIONAL
    assert abs(alpha.mean() - m.alpha_share) < 0.02
    with_trend = e.trade_side[alpha & (e.regime != 0)] == e.regime[alpha & (e.regime != 0)]
    assert abs(with_trend.mean() - 0.8) < 0.02                       # (1 + 0.6) / 2
    assert abs((e.trade_side[alpha & (e.regime == 0)] > 0).mean() - 0.5) < 0.03
    assert abs((e.trade_side[~alpha & (e.regime != 0)] == e.regime[~alpha & (e.regime != 0)]).mean() - 0.5) < 0.02


def test_signal_switch_keeps_path_and_flow():
    on, off = synthetic_events(SMALL, 3), synthetic_events(dataclasses.replace(SMALL, signal=False), 3)
    for name in ("trade_ts_us", "trade_price", "trade_amount", "trade_side", "book_bid", "regime"):
        assert np.array_equal(getattr(on, name), getattr(off, name))
    assert (on.roles == DIRECTIONAL).any() and not (off.roles == DIRECTIONAL).any()


@pytest.mark.parametrize("kwargs", [dict(n_events=0), dict(step_us=3), dict(tick_size=0.0),
                                    dict(trend_lean=1.5), dict(alpha_share=-0.1),
                                    dict(noise_vol_ticks=float("nan")), dict(signal="yes")])
def test_bad_market_parameters(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ParameterError, match=f"`{name}`"):
        SyntheticMarket(**kwargs)


# -- the experiment -----------------------------------------------------------------------

def test_same_seed_same_numbers():
    a = run_experiment(SMALL, seeds=[4, 9], thetas=[2.0, 5.0]).to_dict()
    b = run_experiment(SMALL, seeds=[4, 9], thetas=[2.0, 5.0]).to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    c = run_experiment(SMALL, seeds=[4, 10], thetas=[2.0, 5.0]).to_dict()
    assert c["results"][0]["fixed"]["pnl_mean"] != a["results"][0]["fixed"]["pnl_mean"]


def test_no_signal_dynamic_equals_fixed_exactly():
    off = dataclasses.replace(SMALL, signal=False)
    for seed in range(4):
        for theta in (1.0, 5.0):
            events = synthetic_events(off, seed)
            runs = run_policies(events, off.tick_size, EXPERIMENT_CONFIG.replace(theta=theta))
            f, d = runs["fixed"], runs["dynamic"]
            assert len(f.fills) > 0
            for x, y in zip(f.fills.columns().values(), d.fills.columns().values()):
                assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            for name in ("pnl_total", "spread_capture", "inventory_drift", "fees", "fills",
                         "largest_inventory", "quote_decisions", "posts_rejected"):
                assert getattr(f.summary, name) == getattr(d.summary, name)
    with pytest.warns(RuntimeWarning):
        exp = run_experiment(off, seeds=3, thetas=[2.0])
    assert exp.results[0].difference.pnl_mean == 0.0 and exp.results[0].difference.pnl_std == 0.0
    # ... and with the signal on, the two do differ (so the check above can fail)
    on = run_policies(synthetic_events(SMALL, 0), SMALL.tick_size)
    assert on["fixed"].summary.pnl_total != on["dynamic"].summary.pnl_total


def _unchecked(config, **changes):
    """A config with values StrategyConfig refuses (max_inventory = 0 must be > 0 there)."""
    config = dataclasses.replace(config)
    for name, value in changes.items():
        object.__setattr__(config, name, value)
    return config


def test_zero_inventory_limit_never_grows_the_position():
    # StrategyConfig requires max_inventory > 0, so run_policies (which copies the config per
    # policy) cannot take 0; its two replay_arrays calls are made here directly instead.
    for seed in range(3):
        events = synthetic_events(SMALL, seed)
        for mode in ("fixed", "dynamic"):
            config = _unchecked(EXPERIMENT_CONFIG, max_inventory=0.0, inventory_mode=mode)
            result = replay_arrays(*events.replay_inputs(), tick_size=SMALL.tick_size, config=config)
            inventory = np.r_[0.0, result.fills.inventory]
            assert np.all(np.abs(inventory[1:]) <= np.abs(inventory[:-1]))
            s = result.summary
            assert s.fills == 0 and s.largest_inventory == 0.0
            assert s.quote_decisions > 100 and s.inventory_limited == 2 * s.quote_decisions


@pytest.mark.parametrize("seed", range(6))
def test_inventory_never_passes_the_limit(seed):
    rng = np.random.default_rng(seed)
    limit = float(rng.choice([0.1, 0.3, 1.0]))
    q = float(rng.choice([0.05, 0.1, 0.25]))
    config = EXPERIMENT_CONFIG.replace(max_inventory=limit, quote_size=q, theta=float(rng.uniform(0, 10)),
                                       requote_interval_us=int(rng.choice([50_000, 200_000, 500_000])),
                                       order_latency_us=int(rng.choice([10_000, 50_000])))
    events = synthetic_events(SMALL, seed)
    for result in run_policies(events, SMALL.tick_size, config).values():
        inventory = np.r_[0.0, result.fills.inventory]
        # the hard limit: a quote's size is clipped by every order that may still fill (the one
        # being cancelled included), so no fill takes |inventory| past the limit; the tolerance
        # is float rounding of the summed fill sizes (0.1 + 0.1 + 0.1 = 0.30000000000000004)
        assert np.abs(inventory).max() <= limit + 1e-12


def test_inventory_limit_is_reached_and_held():
    config = EXPERIMENT_CONFIG.replace(theta=0.0, max_inventory=0.5, quote_size=0.1)
    for result in run_policies(synthetic_events(SMALL, 0), SMALL.tick_size, config).values():
        s = result.summary
        assert s.inventory_limited > 0 and s.largest_inventory == pytest.approx(0.5, abs=1e-12)


def test_quotes_are_decided_before_the_event():
    """Changing trade k (its role, hence the signal) changes nothing up to and including k."""
    events = synthetic_events(SMALL, 5)
    base = run_policies(events, SMALL.tick_size)
    for k in (500, 1500, 2500):
        roles = events.roles.copy()
        roles[k:] = DIRECTIONAL           # the flow from k on now all feeds alpha
        sides = events.trade_side.copy()
        sides[k + 1:] = 1                 # and every later trade is a buy
        changed = events._replace(roles=roles, trade_side=sides)
        for policy, result in run_policies(changed, SMALL.tick_size).items():
            t_k = events.trade_ts_us[k]        # book-through fills have no trade index: by time
            before = base[policy].fills.ts_us <= t_k
            after = result.fills.ts_us <= t_k
            assert before.sum() == after.sum() > 0
            for x, y in zip(base[policy].fills.columns().values(), result.fills.columns().values()):
                assert np.array_equal(x[before], y[after], equal_nan=x.dtype.kind == "f")
            assert not np.array_equal(base[policy].fills.trade_index, result.fills.trade_index)


def test_policies_are_the_replay_and_its_reference():
    m = dataclasses.replace(SMALL, n_events=600)
    events = synthetic_events(m, 2)
    runs = run_policies(events, m.tick_size)
    for mode, result in runs.items():
        config = EXPERIMENT_CONFIG.replace(inventory_mode=mode)
        direct = replay_arrays(*events.replay_inputs(), tick_size=m.tick_size, config=config)
        assert direct.summary.to_dict().keys() == result.summary.to_dict().keys()
        for key, value in direct.summary.to_dict().items():
            other = result.summary.to_dict()[key]
            assert value == other or (value != value and other != other)   # NaN == NaN
        ref = reference_replay(*events.replay_inputs(), m.tick_size, config)
        assert len(ref["fills"]) == len(result.fills) > 10
        assert [f[0] for f in ref["fills"]] == result.fills.trade_index.tolist()
        assert [f[3] for f in ref["fills"]] == result.fills.price.tolist()
        assert [f[4] for f in ref["fills"]] == result.fills.qty.tolist()
        assert ref["cash"] == result.fills.cash[-1] and ref["inventory"] == result.summary.ending_inventory
        assert equity_by_step(events, result)[-1] == pytest.approx(result.summary.pnl_total, abs=1e-6)


def test_experiment_reports_each_policy():
    exp = run_experiment(SMALL, seeds=4, thetas=[3.0])
    r = exp.results[0]
    assert exp.seeds == (0, 1, 2, 3) and len(r.runs) == 8
    fixed = [x for x in r.runs if x.policy == "fixed"]
    assert r.fixed.pnl_mean == pytest.approx(np.mean([x.pnl_total for x in fixed]))
    assert r.fixed.pnl_std == pytest.approx(np.std([x.pnl_total for x in fixed], ddof=1))
    for s in (r.fixed, r.dynamic):
        assert s.pnl_mean == pytest.approx(s.spread_capture_mean + s.inventory_drift_mean - s.fees_mean)
        assert s.fills_mean > 0 and 0 < s.largest_inventory_mean <= s.largest_inventory_max
    assert r.difference.pnl_mean == pytest.approx(r.dynamic.pnl_mean - r.fixed.pnl_mean)
    json.dumps(exp.to_dict())


@pytest.mark.parametrize("kwargs, match", [(dict(seeds=0), "`seeds`"), (dict(seeds=[1, 1]), "`seeds`"),
                                           (dict(thetas=[-1.0]), "`theta`"), (dict(thetas=[]), "`thetas`"),
                                           (dict(config="x"), "`config`")])
def test_bad_experiment_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        run_experiment(SMALL, **kwargs)


# -- command line -------------------------------------------------------------------------

def test_cli_writes_reports_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--events", "1500", "--seeds", "3", "--theta", "2", "5", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "## theta = 5" in captured.out and "Paired difference" in captured.out
    assert (out / "inventory.md").read_text().startswith("# Synthetic inventory experiment")
    doc = json.loads((out / "inventory.json").read_text())
    assert [r["theta"] for r in doc["results"]] == [2.0, 5.0] and doc["seeds"] == [0, 1, 2]
    png = out / "equity_seed0_theta2.png"
    try:
        import matplotlib  # noqa: F401
        assert png.exists()
    except ImportError:
        assert not png.exists() and "plot skipped: matplotlib is not installed" in captured.err
    before = (out / "inventory.md").read_text()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already has" in err and "--force" in err and err.count("\n") == 1
    assert (out / "inventory.md").read_text() == before


def test_cli_json_and_errors(capsys):
    assert main(["--events", "1000", "--seeds", "2", "--theta", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["difference"]["seeds"] == 2
    assert main(["--events", "1000", "--seeds", "2", "--no-signal", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(r["difference"]["pnl_mean"] == 0.0 and r["difference"]["t_stat"] is None for r in doc["results"])
    # the strategy flags are StrategyConfig's own (defaults: EXPERIMENT_CONFIG); theta is swept
    assert main(["--events", "1000", "--seeds", "2", "--theta", "2", "--skew-ticks", "4",
                 "--maker-fee-bps", "1", "--json"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["skew_ticks"] == 4.0 and config["maker_fee_bps"] == 1.0 and config["min_half_ticks"] == 5.0
    with pytest.raises(SystemExit):             # both policies run: no --inventory-mode flag
        main(["--inventory-mode", "fixed"])
    assert "unrecognized arguments: --inventory-mode" in capsys.readouterr().err
    for bad in (["--seeds", "0"], ["--theta", "-1"], ["--lean", "2"], ["--events", "0"],
                ["--quote-size", "0"]):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1


def test_the_inventory_limit_is_hard():
    """Sizes are clipped so that no fill passes the limit: the strategy counts its known
    position and every bid that may still fill (the old one until its cancel arrives)."""
    config = StrategyConfig(skew_ticks=0.0, theta=0.0, min_half_ticks=2.0, half_spread_bps=0.0,
                            quote_size=1.0, max_inventory=1.5, maker_fee_bps=0.0,
                            requote_interval_us=100, order_latency_us=10, cancel_latency_us=10,
                            response_latency_us=0, fill_model="cross")
    # t=0: bid 98 x 1.  t=20: 0.4 fills.  t=100: known 0.4, 0.6 outstanding: bid x 0.5; the old
    # bid fills 0.6 at 105 before its cancel arrives (110).  t=200: known 1.0, 0.5 outstanding:
    # no bid (clipped to 0); the 0.5 fills at 205: 1.5 = the limit, never more.
    result = replay_arrays([20, 105, 205, 220], [97.0] * 4, [0.4, 1.0, 1.0, 1.0], [-1] * 4, [-1] * 4,
                           [0, 100, 200], [100.0] * 3, [101.0] * 3, tick_size=1.0, config=config)
    assert result.fills.inventory.tolist() == [0.4, 1.0, 1.5]
    assert result.summary.largest_inventory == 1.5
    assert result.summary.clipped_quotes == 2      # the bid at 100 (0.5) and the ask at 100 (0.9)
    assert result.summary.bid_limited_share == pytest.approx(1 / 3)


def test_best_vs_best_pairs_each_policy_at_its_best_theta():
    exp = run_experiment(SMALL, seeds=3, thetas=[1.0, 4.0, 16.0])
    f_theta, d_theta, diff = exp.best_vs_best()
    assert f_theta == max(exp.results, key=lambda r: r.fixed.pnl_mean).theta
    assert d_theta == max(exp.results, key=lambda r: r.dynamic.pnl_mean).theta
    best_fixed = max(r.fixed.pnl_mean for r in exp.results)
    best_dynamic = max(r.dynamic.pnl_mean for r in exp.results)
    assert diff.pnl_mean == pytest.approx(best_dynamic - best_fixed)
    assert exp.to_dict()["best_vs_best"]["fixed_theta"] == f_theta


def test_run_policies_checks_its_arguments():
    with pytest.raises(ParameterError, match="`events`"):
        run_policies((1, 2, 3), 0.1)
    with pytest.raises(ParameterError, match="`config`"):
        run_policies(hand_events(), 1.0, {"theta": 2})
    with pytest.raises(ParameterError, match="`tick_size`"):
        run_policies(hand_events(), 0.0, HAND_CONFIG)
