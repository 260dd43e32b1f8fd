"""Book order-flow imbalance by event type: kernel vs a plain-Python twin, a hand-worked book,
the trade / non-trade split per bucket, day-by-day carry, the IC command."""
import json
import subprocess
import sys

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.signals.book_flow import BookFlowState, book_flow_events, book_flow_names
from clusterlob.signals.ofi import BucketAccumulator, BucketGrid
from test_features import random_tape

NAN = np.nan


def reference_book_flow(bid_px, bid_sz, ask_px, ask_sz, levels):
    """The definition of clusterlob.signals.book_flow, one snapshot pair and one level at a time."""
    def side(p, q, P, Q, better):
        if any(np.isnan(v) for v in (p, q, P, Q)):
            return 0.0
        if p == P:
            return q - Q
        return q if better * (p - P) > 0 else -Q

    touch, depth = [0.0], [0.0]
    for i in range(1, bid_px.shape[0]):
        e = [side(bid_px[i, l], bid_sz[i, l], bid_px[i - 1, l], bid_sz[i - 1, l], 1)
             - side(ask_px[i, l], ask_sz[i, l], ask_px[i - 1, l], ask_sz[i - 1, l], -1) for l in range(levels)]
        touch.append(e[0])
        depth.append(sum(e))
    return np.array(touch), np.array(depth)


def test_hand_worked_book():
    # S0 bid 100 x 2 | ask 101 x 3
    # S1 bid 100 x 5 | ask 101 x 1   bids +3 (added), asks -2 (removed): e = 3 - (-2) = 5
    # S2 bid 99 x 4  | ask 100 x 2   bid best gone (-5), ask improved (new queue +2): e = -5 - 2 = -7
    bid_px = np.array([[100.0], [100.0], [99.0]])
    bid_sz = np.array([[2.0], [5.0], [4.0]])
    ask_px = np.array([[101.0], [101.0], [100.0]])
    ask_sz = np.array([[3.0], [1.0], [2.0]])
    state = BookFlowState(1)
    touch, depth = book_flow_events(bid_px, bid_sz, ask_px, ask_sz, state)
    np.testing.assert_array_equal(touch, [0, 5, -7])
    np.testing.assert_array_equal(depth, touch)
    # carried: the next call continues from S2
    t2, _ = book_flow_events(np.array([[99.0]]), np.array([[6.0]]), np.array([[100.0]]), np.array([[2.0]]), state)
    np.testing.assert_array_equal(t2, [2.0])


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_kernel_matches_the_python_twin(levels):
    for seed in range(3):
        tape = random_tape([seed, 5], n_book=600, levels=5)
        b = tape.book
        touch, depth = book_flow_events(b.bid_px, b.bid_sz, b.ask_px, b.ask_sz, BookFlowState(levels))
        rt, rd = reference_book_flow(b.bid_px, b.bid_sz, b.ask_px, b.ask_sz, levels)
        np.testing.assert_allclose(touch, rt, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(depth, rd, rtol=1e-12, atol=1e-12)
        # in parts with the state carried = one pass
        state = BookFlowState(levels)
        parts = [book_flow_events(b.bid_px[s], b.bid_sz[s], b.ask_px[s], b.ask_sz[s], state)
                 for s in (slice(0, 250), slice(250, 251), slice(251, None))]
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), depth)


def test_bad_levels():
    with pytest.raises(ParameterError, match="`book_levels` must be an integer >= 1, got 0"):
        BookFlowState(0)
    with pytest.raises(ParameterError, match="book depth"):
        book_flow_events(*(np.zeros((3, 2)),) * 4, BookFlowState(5))


def test_bucket_rows_split_trades_from_the_rest():
    grid = BucketGrid(0, 10, 3)
    acc = BucketAccumulator(grid, (), book_levels=2)
    acc.add_trades(np.array([1, 2, 15]), np.array([1, -1, 1], np.int8), np.array([2.0, 0.5, 1.0]))
    acc.add_book(np.array([0, 12]), np.array([100.0, 100.5]))
    acc.add_book_flow(np.array([3, 4, 14, 35]), np.array([1.0, 2.0, -1.0, 9.0]), np.array([1.5, 2.0, 3.0, 9.0]))
    sig = acc.finish()
    names = book_flow_names(2)
    assert sig.group_names == ("all",) + names
    np.testing.assert_array_equal(sig.ofi("all"), [1.5, 1.0, 0.0])
    np.testing.assert_array_equal(sig.ofi(names[0]), [3.0, -1.0, 0.0])      # t=35 is outside the grid
    np.testing.assert_array_equal(sig.ofi(names[1]), [3.5, 3.0, 0.0])
    np.testing.assert_array_equal(sig.ofi(names[2]), [1.5, -2.0, 0.0])      # touch minus trade flow
    np.testing.assert_array_equal(sig.ofi(names[3]), [2.0, 2.0, 0.0])
    np.testing.assert_array_equal(sig.ofi(names[0], "count"), [2, -1, 0])
    assert sig.trades.tolist() == [3, 3, 3, 3, 3]
    with pytest.raises(ParameterError, match="no book-OFI rows"):
        BucketAccumulator(grid, ()).add_book_flow([1], [1.0], [1.0])


def test_ic_command_reports_book_ofi(tmp_path):
    from test_ic_cli import _planted_tape
    tape = _planted_tape(tmp_path / "tape", days=2, trades_per_day=3000, levels=3)
    proc = subprocess.run([sys.executable, "-m", "clusterlob.ic", str(tape), "--group-by", "agent",
                           "--book-levels", "3", "--timeframes", "5", "--out", str(tmp_path / "ic"), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    groups = {r["group"] for r in doc["ic_pooled"]["rows"]}
    assert set(book_flow_names(3)) <= groups and "directional" in groups
    rows = [r for r in doc["ic_pooled"]["rows"] if r["group"] == "book OFI touch" and r["horizon"] == 1]
    assert rows and rows[0]["n_buckets"] > 500
    bad = subprocess.run([sys.executable, "-m", "clusterlob.ic", str(tape), "--book-levels", "-1",
                          "--out", str(tmp_path / "ic2")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: `book_levels` must be an integer in 0..25, got -1"
