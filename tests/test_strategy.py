"""StrategyConfig (validation, dict and TOML forms, role presets) and the quote rule."""
import math

import pytest

from clusterlob.errors import ParameterError
from clusterlob.cluster.roles import DIRECTIONAL, OPPORTUNISTIC, UNASSIGNED
from clusterlob.replay.strategy import ROLE_PRESETS, StrategyConfig, decide_quotes, load_config


def test_defaults_are_the_issue_defaults():
    c = StrategyConfig()
    assert (c.maker_fee_bps, c.requote_interval_us, c.order_latency_us) == (2.0, 200_000, 10_000)
    assert (c.fill_model, c.queue_rule, c.inventory_mode, c.half_life_s) == ("queue", "risk_averse", "dynamic", 10.0)
    assert (c.cancel_latency_us, c.response_latency_us, c.signal_norm) == (10_000, 10_000, "flow")
    assert c.mapping == "inverted"
    assert (c.alpha_code, c.hazard_code) == (DIRECTIONAL, OPPORTUNISTIC)


def test_presets_swap_the_roles():
    t = StrategyConfig().with_mapping("traditional")
    assert (t.alpha_role, t.hazard_role, t.mapping) == ("opportunistic", "directional", "traditional")
    assert t.with_mapping("inverted") == StrategyConfig()
    assert StrategyConfig(alpha_role="passive", hazard_role="none").mapping == "custom"
    assert StrategyConfig(alpha_role="none", hazard_role="none").alpha_code == UNASSIGNED
    assert set(ROLE_PRESETS) == {"inverted", "traditional"}


def test_dict_round_trip_and_mapping_key():
    c = StrategyConfig(skew_ticks=7.5, fill_mode="touch").with_mapping("traditional")
    assert StrategyConfig.from_dict(c.to_dict()) == c
    assert StrategyConfig.from_dict({"mapping": "traditional"}).hazard_role == "directional"
    assert c.replace(theta=0.0).theta == 0.0 and c.replace(theta=0.0).skew_ticks == 7.5
    assert isinstance(StrategyConfig(requote_interval_us=5e5).requote_interval_us, int)


@pytest.mark.parametrize("changes, words", [
    ({"quote_size": 0}, "`quote_size` must be a finite number > 0, got 0"),
    ({"skew_ticks": math.nan}, "`skew_ticks` must be a finite number >= 0, got nan"),
    ({"fill_mode": "through"}, "`fill_mode` (the old name of `fill_model`) must be one of cross, touch, got 'through'"),
    ({"fill_model": "through"}, "`fill_model` must be one of cross, touch, queue, got 'through'"),
    ({"queue_rule": "fifo"}, "`queue_rule` must be one of risk_averse, power, log, got 'fifo'"),
    ({"queue_power": -1}, "`queue_power` must be a finite number in (0, 10], got -1"),
    ({"funding_rate": 0.5}, "`funding_rate` must be a finite number in [-0.03, 0.03], got 0.5"),
    ({"inventory_mode": "static"}, "`inventory_mode` must be one of"),
    ({"min_half_ticks": 0.25}, "`min_half_ticks` must be a finite number >= 0.5, got 0.25"),
    ({"order_latency_us": 0}, "`order_latency_us` must be a finite number > 0, got 0"),
    ({"requote_interval_us": 1.5}, "`requote_interval_us` must be a whole number of microseconds"),
    ({"size_weight": 1.5}, "`size_weight` must be a finite number in (0, 1], got 1.5"),
    ({"alpha_role": "toxic"}, "`alpha_role` must be one of"),
    ({"alpha_role": "passive", "hazard_role": "passive"}, "must differ, both are 'passive'"),
    ({"theta": "2"}, "`theta` must be a finite number >= 0, got '2'"),
    ({"skew": 3}, "unknown strategy parameter `skew`"),
    ({"mapping": "sideways"}, "`mapping` must be one of ['inverted', 'traditional']"),
    ({"mapping": "inverted", "alpha_role": "passive"}, "`mapping` 'inverted' sets `alpha_role`"),
])
def test_bad_parameters_are_one_line_errors(changes, words):
    with pytest.raises(ParameterError) as info:
        StrategyConfig.from_dict(changes)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_toml_loading(tmp_path):
    f = tmp_path / "mm.toml"
    f.write_text('skew_ticks = 12\nfill_mode = "touch"\nmapping = "traditional"\n')
    c = load_config(f)
    assert (c.skew_ticks, c.fill_model, c.alpha_role) == (12.0, "touch", "opportunistic")
    g = tmp_path / "table.toml"
    g.write_text("[strategy]\nquote_size = 0.5\n")
    assert load_config(g).quote_size == 0.5


@pytest.mark.parametrize("text, words", [
    ("skew = 1\n", "unknown strategy parameter `skew`"),
    ("quote_size = -1\n", "`quote_size` must be a finite number > 0, got -1"),
    ("quote_size = \n", "not valid TOML"),
])
def test_toml_errors_name_the_file(tmp_path, text, words):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ParameterError) as info:
        load_config(f)
    assert str(f) in str(info.value) and words in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_toml_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


# -- the quote rule, by hand ---------------------------------------------------------------
#
# mid 100, tick 0.5, alpha = atanh(0.5) so tanh(alpha) = 0.5, inventory 1, hazard 1.2
# skew 4 ticks -> +4 * 0.5 * 0.5 = +1.0; theta 2 dynamic -> theta_eff = 2 * (1 - 0.5) = 1 -> -1 * 1 * 0.5
# reservation = 100 + 1.0 - 0.5 = 100.5
# half = max(1 tick = 0.5, 10 bps * 100 * 1e-4 * (1 + 5 * (1.2 - 0.2))) = max(0.5, 0.1 * 6) = 0.6
# bid = floor(99.9 / 0.5) = 199 ticks (99.5); ask = ceil(101.1 / 0.5) = 203 ticks (101.5)
RULE = StrategyConfig(skew_ticks=4.0, theta=2.0, min_half_ticks=1.0, half_spread_bps=10.0,
                      hazard_k=5.0, hazard_threshold=0.2, max_inventory=3.0)


def test_quote_rule_by_hand():
    d = decide_quotes(100.0, math.atanh(0.5), 1.2, 1.0, 0.5, RULE)
    assert d.reservation == pytest.approx(100.5)
    assert d.half_spread == pytest.approx(0.6)
    assert (d.bid_ticks, d.ask_ticks, d.bid_reason, d.ask_reason) == (199, 203, "placed", "placed")


def test_quote_rule_fixed_mode():
    # theta_eff = 2: reservation = 100 + 1.0 - 1.0 = 100; bid floor(99.4/0.5) = 198, ask ceil(100.6/0.5) = 202
    d = decide_quotes(100.0, math.atanh(0.5), 1.2, 1.0, 0.5, RULE.replace(inventory_mode="fixed"))
    assert d.reservation == pytest.approx(100.0)
    assert (d.bid_ticks, d.ask_ticks) == (198, 202)


def test_quote_rule_minimum_half_spread_and_grid_guard():
    # 100.1 - 0.1 = 100.0 is 999.999... ticks in floating point; the guard keeps it at 1000
    c = StrategyConfig(skew_ticks=0.0, theta=0.0, min_half_ticks=1.0, half_spread_bps=0.0)
    d = decide_quotes(100.1, 0.0, 0.0, 0.0, 0.1, c)
    assert (d.bid_ticks, d.ask_ticks) == (1000, 1002)


def test_inventory_limit_and_post_only():
    long = decide_quotes(100.0, 0.0, 0.0, 3.0, 0.5, RULE)
    assert (long.bid_ticks, long.bid_reason) == (None, "inventory_limit") and long.ask_ticks is not None
    short = decide_quotes(100.0, 0.0, 0.0, -3.0, 0.5, RULE)
    assert (short.ask_ticks, short.ask_reason) == (None, "inventory_limit") and short.bid_ticks is not None
    # alpha saturated up: reservation 100 + 4 * 0.5 = 102, bid 101.0 (202 ticks) would cross an ask of 100.5
    up = decide_quotes(100.0, 50.0, 0.0, 0.0, 0.5, RULE, best_bid=99.5, best_ask=100.5)
    assert (up.bid_ticks, up.bid_reason, up.ask_reason) == (None, "post_only", "placed")
    # a bid exactly at the best ask would also take liquidity
    at = decide_quotes(100.0, 50.0, 0.0, 0.0, 0.5, RULE, best_bid=100.5, best_ask=101.0)
    assert at.bid_reason == "post_only" and at.ask_reason == "placed"
