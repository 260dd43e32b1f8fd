"""SignalAccumulator: a hand-worked stream, the reference twin on random streams, bad input."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterlob.replay.accumulator import SignalAccumulator
from clusterlob.errors import ParameterError
from clusterlob.cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE, UNASSIGNED
from clusterlob.replay.strategy import StrategyConfig

sys.path.insert(0, str(Path(__file__).parent))
from twins.replay import ReferenceAccumulator  # noqa: E402


def test_hand_worked_stream():
    # half-life 1 s, mean-size weight 0.5, unit = 1 mean trade size
    acc = SignalAccumulator(1.0, 0.5, 1.0, DIRECTIONAL, OPPORTUNISTIC, "trades")
    acc.update(0, +1, 1.0, DIRECTIONAL)            # mean 1 (first trade), alpha 1
    assert acc.alpha() == 1.0 and acc.hazard() == 0.0
    acc.update(1_000_000, -1, 3.0, DIRECTIONAL)    # decay 0.5 -> 0.5; mean 1 + 0.5*(3-1) = 2; alpha -2.5
    acc.update(1_000_000, +1, 2.0, OPPORTUNISTIC)  # no decay; mean 2 + 0.5*(2-2) = 2; hazard 2
    acc.update(1_000_000, -1, 2.0, UNASSIGNED)     # mean stays 2, feeds nothing
    acc.update(1_000_000, 0, 50.0, DIRECTIONAL)    # unknown side: ignored entirely
    assert acc.mean_size == 2.0
    assert acc.alpha() == -1.25 and acc.hazard() == 1.0          # sums / (mean 2 * unit 1)
    assert acc.alpha(2_000_000) == pytest.approx(-0.625, rel=1e-15)   # one more half-life
    assert acc.hazard(3_000_000) == pytest.approx(0.25, rel=1e-15)
    assert acc.last_ts_us == 1_000_000                            # reading does not update


def test_hand_worked_stream_as_a_share_of_the_flow():
    # the same stream, signal_norm "flow": sums over the total flow, decayed alike
    acc = SignalAccumulator(1.0, 0.5, 1.0, DIRECTIONAL, OPPORTUNISTIC)
    acc.update(0, +1, 1.0, DIRECTIONAL)            # alpha 1 / total 1
    assert acc.alpha() == 1.0 and acc.hazard() == 0.0
    acc.update(1_000_000, -1, 3.0, DIRECTIONAL)    # decay 0.5: alpha 0.5 - 3 = -2.5, total 3.5
    acc.update(1_000_000, +1, 2.0, OPPORTUNISTIC)  # hazard 2, total 5.5
    acc.update(1_000_000, -1, 2.0, UNASSIGNED)     # total 7.5
    assert acc.alpha() == -2.5 / 7.5 and acc.hazard() == 2.0 / 7.5
    assert acc.alpha(9_000_000) == -2.5 / 7.5                      # the decay cancels
    # ten times the flow, same shares: the same signals
    busy = SignalAccumulator(1.0, 0.5, 1.0, DIRECTIONAL, OPPORTUNISTIC)
    for t, side, amount, role in ((0, 1, 10.0, DIRECTIONAL), (1_000_000, -1, 30.0, DIRECTIONAL),
                                  (1_000_000, 1, 20.0, OPPORTUNISTIC), (1_000_000, -1, 20.0, UNASSIGNED)):
        busy.update(t, side, amount, role)
    assert busy.alpha() == pytest.approx(acc.alpha(), rel=1e-15)
    with pytest.raises(ParameterError, match="`signal_norm` must be one of"):
        SignalAccumulator(signal_norm="volume")


def test_passive_feeds_nothing_by_default_and_reset():
    acc = SignalAccumulator.from_config(StrategyConfig())
    acc.update(5, 1, 1.0, PASSIVE)
    assert acc.alpha() == 0.0 and acc.hazard() == 0.0 and acc.mean_size == 1.0
    acc.reset()
    assert acc.last_ts_us is None and acc.alpha() == 0.0


@pytest.mark.parametrize("seed", range(40))
def test_equals_reference_on_random_streams(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    ts = np.sort(rng.integers(0, 60_000_000, n)).astype(np.int64)
    side = rng.choice(np.array([-1, 0, 1], np.int8), n)
    amount = rng.choice([0.001, 0.1, 1.0, 7.5], n)
    role = rng.integers(-1, 3, n).astype(np.int8)
    params = (float(rng.choice([0.1, 10.0])), float(rng.choice([0.001, 0.3])), float(rng.choice([1.0, 50.0])),
              int(rng.integers(-1, 3)), int(rng.integers(-1, 3)))
    fast, slow, single = SignalAccumulator(*params), ReferenceAccumulator(*params), SignalAccumulator(*params)
    fast.update_many(ts, side, amount, role)
    for i in range(n):
        slow.update(int(ts[i]), int(side[i]), float(amount[i]), int(role[i]))
        single.update(int(ts[i]), int(side[i]), float(amount[i]), int(role[i]))
    later = int(ts[-1]) + int(rng.integers(0, 5_000_000))
    assert fast.alpha(later) == slow.alpha(later) == single.alpha(later)
    assert fast.hazard(later) == slow.hazard(later) == single.hazard(later)
    assert fast.mean_size == slow.mean_size


@pytest.mark.parametrize("kwargs, words", [
    ({"half_life_s": 0.0}, "`half_life_s` must be a finite number > 0"),
    ({"half_life_s": math.inf}, "`half_life_s` must be a finite number > 0"),
    ({"size_weight": 0.0}, "`size_weight` must be in (0, 1]"),
    ({"signal_scale_trades": -1.0}, "`signal_scale_trades` must be a finite number > 0"),
    ({"alpha_role": -2}, "`alpha_role` must be a role code"),
])
def test_bad_parameters(kwargs, words):
    with pytest.raises(ParameterError) as info:
        SignalAccumulator(**kwargs)
    assert words in str(info.value)


def test_time_must_not_go_backwards_and_amount_must_be_positive():
    acc = SignalAccumulator()
    acc.update(100, 1, 1.0, DIRECTIONAL)
    with pytest.raises(ParameterError, match="must not go backwards: 99 < last update 100"):
        acc.update(99, 1, 1.0, DIRECTIONAL)
    with pytest.raises(ParameterError, match="must not go backwards"):
        acc.alpha(50)
    with pytest.raises(ParameterError, match="`amount` must be a finite number > 0"):
        acc.update(200, 1, math.nan, DIRECTIONAL)
    with pytest.raises(ParameterError, match="equal lengths"):
        acc.update_many(np.zeros(2, np.int64), np.zeros(1, np.int8), np.ones(2), np.zeros(2, np.int8))
