"""Walk-forward: the daily feature cache (exact, resumable, parallel), windows, no look-ahead, CLI."""
from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import FeatureSettings, build_features
from clusterlob.cluster.fit import FitSettings
from clusterlob.cluster.roles import UNASSIGNED
from clusterlob.tape import US_PER_DAY, Book, Tape, Trades, day_start_us, read_manifest, read_tape, write_tape
from clusterlob.walkforward import WalkForwardSettings, build_cache, load_cached_day, plan_cache, plan_windows, run_walkforward, write_outputs
from clusterlob.walkforward.__main__ import main
from clusterlob.walkforward.cache import _raw_day

from walkforward_fixtures import INSTRUMENT, day_list, random_tape, write_random_tape

SMALL = FeatureSettings(window=7, levels=3)


def _cache_rows(cache_dir, tape_dir, settings):
    """Cached days concatenated, trade_index shifted to whole-tape positions."""
    idx, z, valid, off = [], [], [], 0
    for entry in read_manifest(tape_dir)["days"]:
        day = load_cached_day(cache_dir, settings, entry["date"])
        idx.append(day.trade_index + off)
        z.append(day.z)
        valid.append(day.valid)
        off += entry["trades"]
    return np.concatenate(idx), np.concatenate(z), np.concatenate(valid)


def _assert_equal_single_pass(tmp_path, tape_dir, settings, cache_name="cache", executor=None):
    build_cache(tape_dir, settings, tmp_path / cache_name, executor=executor)
    ref = build_features(read_tape(tape_dir), settings)
    idx, z, valid = _cache_rows(tmp_path / cache_name, tape_dir, settings)
    np.testing.assert_array_equal(idx, ref.trade_index)
    np.testing.assert_array_equal(valid, ref.valid)
    assert np.array_equal(z, ref.z, equal_nan=True)     # bit for bit
    return ref


# -- a hand-checked carry across midnight ---------------------------------------------------

def test_t_m_and_first_trades_carry_across_midnight(tmp_path):
    # day 1: mid changes at 10:00 (snapshot 2); day 2: the first snapshot (01:00) repeats the
    # mid, a trade at 00:30 comes before it and a trade at 02:00 after it.
    d1, d2 = day_start_us("2024-05-01"), day_start_us("2024-05-02")
    hour = 3_600_000_000
    ts = np.array([d1 + 9 * hour, d1 + 10 * hour, d2 + hour])
    bid = np.array([[100.0], [100.1], [100.1]])
    ask = bid + 0.1
    sz = np.ones((3, 1))
    book = Book(ts, ts, bid, sz, ask, sz.copy())
    tts = np.array([d1 + 11 * hour, d2 + hour // 2, d2 + 2 * hour])
    trades = Trades(tts, tts, np.full(3, 100.0), np.array([0.5, 1.0, 2.0]), np.array([1, 1, -1], np.int8),
                    np.arange(3, dtype=np.int64))
    write_tape(Tape(INSTRUMENT, trades, book, ["2024-05-01", "2024-05-02"]), tmp_path / "tape")
    settings = FeatureSettings(window=2, levels=1)
    _assert_equal_single_pass(tmp_path, tmp_path / "tape", settings)
    day2 = _raw_day(str(tmp_path / "tape"), "2024-05-02", settings)
    assert day2.pre_index.tolist() == [0]                  # alone, day 2 has no book for it
    assert np.isnan(day2.raw[0, 4])                        # nor a mid change for the other
    c = load_cached_day(tmp_path / "cache", settings, "2024-05-02", state=True)
    assert c.trade_index.tolist() == [0, 1]
    raw = build_features(read_tape(tmp_path / "tape"), settings).raw
    # t_m of the 00:30 and 02:00 trades: seconds since day 1's 10:00 change
    assert raw[1, 4] == (d2 + hour // 2 - (d1 + 10 * hour)) * 1e-6
    assert raw[2, 4] == (d2 + 2 * hour - (d1 + 10 * hour)) * 1e-6
    assert raw[1, 0] == 1.0 / 2.0                          # v_rel from day 1's last touch
    assert c.state.book_times[2] == d1 + 10 * hour         # the carried last mid change


# -- the cache equals one pass, over seeded random tapes ------------------------------------

@pytest.mark.parametrize("asof", ["strict", "at_or_before"])
def test_cache_equals_single_pass_random_tapes(tmp_path, asof):
    patched_pre = patched_nan = 0
    for seed in range(6):
        days = day_list("2024-05-01", 5)
        tape_dir = tmp_path / f"tape{seed}"
        write_random_tape(tape_dir, seed, days, change_prob=(0.002, 0.05, 0.5)[seed % 3],
                          snaps_per_day=(30, 150)[seed % 2], late_book_days=[days[3]],
                          no_book_days=[days[2]] if seed % 2 else [],
                          no_trade_days=[days[1]] if seed % 3 == 2 else [])
        settings = FeatureSettings(window=7, levels=3, asof=asof)
        _assert_equal_single_pass(tmp_path, tape_dir, settings, cache_name=f"cache{seed}")
        for d in days[1:]:
            day = _raw_day(str(tape_dir), d, settings)
            patched_pre += day.pre_index.size
            patched_nan += day.nan_tm_rows.size + day.nan_age_rows.size
    assert patched_pre > 0 and patched_nan > 0           # both patches were exercised


def test_cache_equals_day_by_day_on_exchange_time(tmp_path):
    days = day_list("2024-05-01", 4)
    tape = random_tape(11, days, change_prob=0.01, late_book_days=[days[2]])
    rng = np.random.default_rng(0)
    tape.trades.ts_exch_us = tape.trades.ts_local_us - rng.integers(0, 50_000_000, len(tape.trades))
    write_tape(tape, tmp_path / "tape")
    settings = FeatureSettings(window=5, levels=2, time_key="exchange")
    build_cache(tmp_path / "tape", settings, tmp_path / "cache")
    state = None
    for d in days:
        ref = build_features(read_tape(tmp_path / "tape", [d]), settings, state)
        state = ref.state
        got = load_cached_day(tmp_path / "cache", settings, d, state=True)
        np.testing.assert_array_equal(got.trade_index, ref.trade_index)
        assert np.array_equal(got.z, ref.z, equal_nan=True)
        assert got.state.to_dict() == ref.state.to_dict()


def test_valid_z_in_batches_equals_the_whole_day(tmp_path):
    # what a sweep worker labels a day with: the valid rows of the cache, a batch at a time
    from clusterlob.walkforward.cache import iter_cached_valid_z
    days = day_list("2024-05-01", 2)
    write_tape(random_tape(5, days), tmp_path / "tape")
    build_cache(tmp_path / "tape", SMALL, tmp_path / "cache")
    for d in days:
        whole = load_cached_day(tmp_path / "cache", SMALL, d)
        if d == days[0]:        # the warm-up rows of the first day are not valid; day 2 carries the windows
            assert 0 < whole.valid.sum() < whole.valid.size
        for batch in (7, 1000, 1 << 18):
            parts = list(iter_cached_valid_z(tmp_path / "cache", SMALL, d, batch_rows=batch))
            assert all(z.flags.c_contiguous and z.shape[1] == 6 for _, z in parts)
            np.testing.assert_array_equal(np.concatenate([i for i, _ in parts]), whole.trade_index[whole.valid])
            np.testing.assert_array_equal(np.concatenate([z for _, z in parts]), whole.z[whole.valid])
    with pytest.raises(TapeError, match="no finished day 2024-06-01"):
        next(iter_cached_valid_z(tmp_path / "cache", SMALL, "2024-06-01"))


def test_process_pool_cache_equals_serial(tmp_path):
    days = day_list("2024-05-01", 4)
    write_random_tape(tmp_path / "tape", 5, days, change_prob=0.01, late_book_days=[days[1]])
    with ProcessPoolExecutor(max_workers=2) as pool:
        _assert_equal_single_pass(tmp_path, tmp_path / "tape", SMALL, cache_name="pool", executor=pool)
    build_cache(tmp_path / "tape", SMALL, tmp_path / "serial")
    for d in days:
        a = (tmp_path / "pool" / SMALL.key() / f"{d}.json").read_text()
        b = (tmp_path / "serial" / SMALL.key() / f"{d}.json").read_text()
        assert json.loads(a) == json.loads(b)


# -- resume and invalidation -----------------------------------------------------------------

class _Killed(Exception):
    pass


def test_killed_build_resumes_and_keys_invalidate(tmp_path):
    days = day_list("2024-05-01", 5)
    tape = write_random_tape(tmp_path / "tape", 3, days)

    def kill_after_two(date, done, total):
        if done == 2:
            raise _Killed

    with pytest.raises(_Killed):
        build_cache(tmp_path / "tape", SMALL, tmp_path / "cache", progress=kill_after_two)
    assert [s.cached for s in plan_cache(tmp_path / "tape", SMALL, tmp_path / "cache")] == [True, True] + [False] * 3
    seen = []
    build_cache(tmp_path / "tape", SMALL, tmp_path / "cache", progress=lambda d, n, t: seen.append((d, n)))
    assert seen[0] == (None, 2) and [d for d, _ in seen[1:]] == days[2:]   # two reused, three built
    _assert_equal_single_pass(tmp_path, tmp_path / "tape", SMALL)            # and equal to one pass

    # other settings: a separate cache; the first settings stay cached
    other = FeatureSettings(window=9, levels=3)
    assert not any(s.cached for s in plan_cache(tmp_path / "tape", other, tmp_path / "cache"))
    # rewriting day 3 invalidates day 3 and every later day (their state flows from it)
    keep = tape.trades.ts_local_us < day_start_us(days[2])
    tape.trades.amount[~keep] *= 1.5
    write_tape(tape, tmp_path / "tape", force=True)
    status = plan_cache(tmp_path / "tape", SMALL, tmp_path / "cache")
    # every file was rewritten (new mtimes), so check the keys: unchanged input gives the old key
    before = {d: json.loads((tmp_path / "cache" / SMALL.key() / f"{d}.json").read_text())["fingerprint"]
              for d in days}
    changed = [s.date for s in status if s.fingerprint != before[s.date]]
    assert set(changed) >= set(days[2:])
    assert all(not s.cached for s in status if s.date >= days[2])


def test_missing_day_file_is_a_clear_error(tmp_path):
    days = day_list("2024-05-01", 3)
    write_random_tape(tmp_path / "tape", 1, days)
    (tmp_path / "tape" / "trades" / f"{days[1]}.parquet").unlink()
    with pytest.raises(TapeError, match=f"tape day {days[1]}: trades file .* is missing"):
        build_cache(tmp_path / "tape", SMALL, tmp_path / "cache")


# -- windows ----------------------------------------------------------------------------------

def test_plan_windows_by_hand():
    wf = WalkForwardSettings(train_days=2, test_days=1, min_day_rows=10)
    rows = {"2024-05-01": 50, "2024-05-02": 50, "2024-05-03": 5, "2024-05-04": 50,
            "2024-05-06": 50, "2024-05-07": 50, "2024-05-08": 50}
    plans = plan_windows(rows, wf)
    assert [(p.train_days, p.test_days) for p in plans][:2] == [
        (("2024-05-01", "2024-05-02"), ("2024-05-03",)), (("2024-05-02", "2024-05-03"), ("2024-05-04",))]
    assert len(plans) == 6                                   # 8 calendar days - 3 + 1
    reasons = [p.skip_reason for p in plans]
    assert all("2024-05-03 (5)" in r for r in reasons[:3])
    assert all("gap): 2024-05-05" in r for r in reasons[2:5]) and "gap" not in reasons[1]
    assert reasons[5] is None
    assert plan_windows({"2024-05-01": 50}, wf) == []


@pytest.fixture(scope="module")
def tape8(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf")
    days = day_list("2024-05-01", 8)
    tape = random_tape(21, days, trades_per_day=2500, snaps_per_day=1500, change_prob=0.3)
    write_tape(tape, root / "tape")
    return root, days, tape


WF = WalkForwardSettings(train_days=3, fit=FitSettings(margin=-10.0, n_init=2, seed=3))
FEAT = FeatureSettings(window=20, levels=3)


def _comparable(result) -> dict:
    d = result.to_dict()
    d.pop("timing")
    for day in d["days"]:
        day.pop("reused_from_cache")
    return d


def test_process_pool_gives_identical_results(tape8, tmp_path):
    root, days, _ = tape8
    serial = run_walkforward(root / "tape", tmp_path / "serial", FEAT, WF)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = run_walkforward(root / "tape", tmp_path / "pool", FEAT, WF, executor=pool)
    assert len(serial.fitted) == 5
    assert json.dumps(_comparable(serial), sort_keys=True, default=str) == \
        json.dumps(_comparable(pooled), sort_keys=True, default=str)
    for g in serial.equity:
        np.testing.assert_array_equal(serial.equity[g], pooled.equity[g])


def test_no_look_ahead_changing_the_test_day_leaves_the_fit(tape8, tmp_path):
    root, days, tape = tape8
    base = run_walkforward(root / "tape", tmp_path / "a", FEAT, WF)
    test_day = base.windows[0].plan.test_days[0]
    changed = Tape(tape.instrument, tape.trades.take(slice(None)), tape.book.take(slice(None)), list(days))
    on_day = (changed.trades.ts_local_us >= day_start_us(test_day)) & \
        (changed.trades.ts_local_us < day_start_us(test_day) + US_PER_DAY)
    rng = np.random.default_rng(9)
    changed.trades.amount[on_day] = np.round(rng.lognormal(0, 2, on_day.sum()), 3) + 0.001
    changed.trades.side[on_day] = -changed.trades.side[on_day]
    write_tape(changed, tmp_path / "tape_b")
    other = run_walkforward(tmp_path / "tape_b", tmp_path / "b", FEAT, WF)
    w0a, w0b = base.windows[0], other.windows[0]
    np.testing.assert_array_equal(w0a.model.centers_z, w0b.model.centers_z)   # the fit is unchanged
    assert w0a.model.inertia == w0b.model.inertia
    for d in days[:3]:                                  # training features are identical
        za = load_cached_day(tmp_path / "a" / "cache", FEAT, d).z
        zb = load_cached_day(tmp_path / "b" / "cache", FEAT, d).z
        assert np.array_equal(za, zb, equal_nan=True)
    assert w0a.taker != w0b.taker                       # ... while the test day's scores did change
    # a later window trains on that day, so its fit may change: the test is not vacuous
    assert not np.array_equal(base.windows[1].model.centers_z, other.windows[1].model.centers_z)


def test_window_outputs_are_consistent(tape8, tmp_path):
    root, days, _ = tape8
    res = run_walkforward(root / "tape", tmp_path / "o", FEAT, WF)
    for w in res.fitted:
        for t in w.taker:
            assert math.isclose(t.net_return_pct, 100 * w.pnl[t.group].sum(), rel_tol=1e-9, abs_tol=1e-12)
    for g, eq in res.equity.items():
        total = sum(100 * w.pnl[g].sum() for w in res.fitted)
        assert math.isclose(100 * eq[-1], total, rel_tol=1e-9, abs_tol=1e-12)
    # aggregate = mean / std / t of the per-window ICs
    row = res.ic_aggregate.get("passive", "size", 1, "pearson")
    ics = np.array([w.ic.get("passive", "size", 1).pearson for w in res.fitted])
    ics = ics[np.isfinite(ics)]
    assert row.n_windows == ics.size and math.isclose(row.mean, ics.mean())
    assert math.isclose(row.t_stat, ics.mean() / (ics.std(ddof=1) / math.sqrt(ics.size)))
    # the first window is the distance reference: both alignments agree on it
    np.testing.assert_array_equal(res.windows[0].roles_rule, res.windows[0].roles_distance)
    assert len(res.stability) == 4
    for s in res.stability:
        assert 0.0 <= s.rule.share_agree <= 1.0 and 0.0 <= s.distance.share_agree <= 1.0
        assert s.rule.n_compared == s.distance.n_compared > 0
    written = write_outputs(res, tmp_path / "o")
    assert {p.name for p in written} >= {"summary.md", "windows.json", "equity.csv", "stability.csv",
                                         "ic_aggregate.csv", "ic_windows.csv", "summary.json"}
    with pytest.raises(ParameterError, match="exists"):
        write_outputs(res, tmp_path / "o")


def test_unassigned_role_is_reported_and_flat(tape8, tmp_path):
    root, days, _ = tape8
    wf = WalkForwardSettings(train_days=3, fit=FitSettings(margin=10.0))   # no role clears the margin
    res = run_walkforward(root / "tape", tmp_path / "u", FEAT, wf)
    w = res.fitted[0]
    assert set(w.unassigned) == {"directional", "opportunistic"}
    assert (w.roles != 0).all() and (w.roles != 1).all() and UNASSIGNED not in w.roles.tolist()
    assert not w.pnl["directional"].any() and not w.pnl["opportunistic"].any()
    assert math.isnan(w.ic.get("directional", "size", 1).pearson)
    assert any("role directional unassigned" in n for n in res.notes)


def test_gaps_and_empty_days_skip_windows(tmp_path):
    days = day_list("2024-05-01", 7)
    kept = days[:3] + days[4:]                              # 2024-05-04 missing: a gap
    tape = random_tape(2, kept, no_trade_days=[days[6]])
    write_tape(tape, tmp_path / "tape")
    res = run_walkforward(tmp_path / "tape", tmp_path / "g", SMALL,
                          WalkForwardSettings(train_days=2, fit=FitSettings(margin=-10.0)))
    status = [(w.plan.test_days[0], w.status) for w in res.windows]
    assert status == [(days[2], "fitted"), (days[3], "skipped"), (days[4], "skipped"),
                      (days[5], "skipped"), (days[6], "skipped")]
    assert "gap" in res.windows[1].reason and "fewer than 1 valid" in res.windows[4].reason
    assert any(n.startswith("gap: 1 calendar day") for n in res.notes)
    assert any(n.startswith(f"empty day {days[6]}") for n in res.notes)


# -- CLI --------------------------------------------------------------------------------------

def test_cli_progress_json_and_refusal(tape8, tmp_path, capsys):
    root, days, _ = tape8
    args = [str(root / "tape"), "--train-days", "5", "--test-days", "1", "--out", str(tmp_path / "c"),
            "--workers", "1", "--window", "20", "--levels", "3", "--margin", "-10", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert len(doc["windows"]) == 3 and doc["walkforward"]["train_days"] == 5
    assert "day 8 of 8" in captured.err and "ETA" in captured.err and "window 3 of 3" in captured.err
    assert main(args + ["--force", "--quiet"]) == 0          # --quiet: no progress at all
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["walkforward"]["train_days"] == 5
    assert (tmp_path / "c" / "summary.md").is_file()
    assert main(args) == 2                                   # results exist: refused
    err = capsys.readouterr().err
    assert err.startswith("error: output") and err.count("\n") == 1
    assert main(args + ["--force"]) == 0                     # the cache is reused
    captured = capsys.readouterr()
    assert json.loads(captured.out)["timing"]["days_reused"] == 8
    assert "day 8 of 8 reused from the cache" in captured.err
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "d")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_tape_too_short_for_one_window_is_one_line_error(tmp_path, capsys):
    """A 2-day tape cannot hold 7 + 1 days: error before any work, nothing written, exit 2."""
    days = day_list("2024-05-01", 2)
    write_random_tape(tmp_path / "tape", 3, days)
    out = tmp_path / "out"
    assert main([str(tmp_path / "tape"), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: tape ")
    assert "spans 2 day(s) (2024-05-01 .. 2024-05-02)" in err and "7 + 1 = 8" in err
    assert not (out / "summary.md").exists() and not (out / "cache").exists()
    with pytest.raises(ParameterError, match="too short"):
        run_walkforward(tmp_path / "tape", out, FEAT, WalkForwardSettings(train_days=2, test_days=1))


def test_rolling_pnl_plot_with_the_plot_extra(tape8, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    root, days, _ = tape8
    res = run_walkforward(root / "tape", tmp_path / "p", FEAT, WF)
    write_outputs(res, tmp_path / "p")
    png = (tmp_path / "p" / "rolling_pnl.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "![rolling_pnl](rolling_pnl.png)" in (tmp_path / "p" / "summary.md").read_text()



def test_two_test_days_and_task_split_do_not_change_results(tape8, tmp_path):
    from clusterlob.walkforward.cache import build_cache as _build
    from clusterlob.walkforward.windows import fit_windows, plan_windows as _plan

    root, days, _ = tape8
    wf = WalkForwardSettings(train_days=3, test_days=2, fit=FitSettings(margin=-10.0))
    res = run_walkforward(root / "tape", tmp_path / "t", FEAT, wf)
    # the step defaults to the test days: windows test 3-4 and 5-6 (review: it was 1, overlapping)
    assert [w.plan.test_days for w in res.windows] == [(days[3], days[4]), (days[5], days[6])]
    w = res.fitted[0]
    assert w.pnl_times_us.shape[0] == 2 * 288 and w.ic.label == f"{days[3]},{days[4]}"
    assert len(res.stability) == 1
    # one run of all windows, or one task per window: the same fits
    _build(root / "tape", FEAT, tmp_path / "t" / "cache")
    valid = {d["date"]: d["valid_rows"] for d in res.days}
    plans = _plan(valid, wf)
    one = fit_windows(root / "tape", tmp_path / "t" / "cache", FEAT, wf, plans, tasks=1)
    many = fit_windows(root / "tape", tmp_path / "t" / "cache", FEAT, wf, plans, tasks=4)
    for i in one:
        np.testing.assert_array_equal(one[i].model.centers_z, many[i].model.centers_z)
        np.testing.assert_array_equal(one[i].signals.ofi_size, many[i].signals.ofi_size)


def test_default_synthetic_tape_out_of_sample(tmp_path):
    tape_dir = Path(__file__).resolve().parents[1] / "data" / "default_tape"
    if not (tape_dir / "manifest.json").is_file():
        pytest.skip(f"the committed synthetic tape {tape_dir} is absent")
    res = run_walkforward(tape_dir, tmp_path / "s", FeatureSettings(), WalkForwardSettings(train_days=1))
    assert len(res.fitted) == 1
    w = res.fitted[0]
    assert sorted(w.roles.tolist()) == [0, 1, 2] and not w.unassigned
    # the planted truth, out of sample (fit on day 1, scored on day 2; the tape is fixed):
    # directional flow predicts the next bucket, opportunistic flow predicts against it
    assert w.ic.get("directional", "size", 1).pearson > 0 > w.ic.get("opportunistic", "size", 1).pearson


def test_leftover_temporary_files_are_removed(tmp_path):
    days = day_list("2024-05-01", 2)
    write_random_tape(tmp_path / "tape", 8, days)
    folder = tmp_path / "cache" / SMALL.key()
    folder.mkdir(parents=True)
    (folder / f".{days[0]}.parquet.tmp-abc.parquet").write_bytes(b"half a file")
    build_cache(tmp_path / "tape", SMALL, tmp_path / "cache")
    assert not list(folder.glob(".*"))
    assert all(s.cached for s in plan_cache(tmp_path / "tape", SMALL, tmp_path / "cache"))


def test_real_recording_across_a_shifted_midnight(tmp_path):
    """The real Binance recording (5.7 minutes before midnight), shifted by 3 minutes so that
    midnight falls inside it: the two-day cache equals one pass over real book data."""
    from clusterlob.convert.__main__ import main as convert_main
    from conftest import shared_file

    real = shared_file("binance-futures", "btcusdt_20240808.gz")
    assert convert_main([str(real), "--out", str(tmp_path / "real")]) == 0
    tape = read_tape(tmp_path / "real")
    shift = 180_000_000
    for part in (tape.trades, tape.book):
        part.ts_local_us = part.ts_local_us + shift
        part.ts_exch_us = part.ts_exch_us + shift
    tape.days = []
    write_tape(tape, tmp_path / "shifted")
    manifest = read_manifest(tmp_path / "shifted")
    assert [d["date"] for d in manifest["days"]] == ["2024-08-08", "2024-08-09"]
    assert min(d["trades"] for d in manifest["days"]) > 1000
    settings = FeatureSettings(window=50)
    ref = _assert_equal_single_pass(tmp_path, tmp_path / "shifted", settings)
    day2 = _raw_day(str(tmp_path / "shifted"), "2024-08-09", settings)
    assert day2.nan_tm_rows.size + day2.pre_index.size > 0      # the carry mattered
    assert ref.counts["valid_rows"] > 20_000


def test_distance_alignment_uses_the_first_window_as_reference(tape8, tmp_path):
    root, days, _ = tape8
    wf = WalkForwardSettings(train_days=3, alignment="distance", fit=FitSettings(margin=-10.0))
    res = run_walkforward(root / "tape", tmp_path / "d", FEAT, wf)
    ref = res.fitted[0]
    for w in res.fitted:
        np.testing.assert_array_equal(w.roles, w.roles_distance)
        assert sorted(w.roles.tolist()) == sorted(ref.roles_rule.tolist())   # a permutation of the reference
    rule = run_walkforward(root / "tape", tmp_path / "d", FEAT,
                           WalkForwardSettings(train_days=3, fit=FitSettings(margin=-10.0)))
    for a, b in zip(res.fitted, rule.fitted):                  # same fits, other role mapping
        np.testing.assert_array_equal(a.model.centers_z, b.model.centers_z)
        np.testing.assert_array_equal(b.roles, b.roles_rule)


def test_window_models_record_their_fit_days(tape8, tmp_path):
    # review: window models recorded only "train_days", not the "days" key that the replay
    # and IC-study CLIs read, so a window model replayed on its own training day was
    # "sample unknown" instead of IN SAMPLE, and the IC study could not split in / out of sample
    from clusterlob.replay.pipeline import sample_of
    from clusterlob.signals.study import _in_sample_days
    root, days, _ = tape8
    res = run_walkforward(root / "tape", tmp_path / "m", FEAT, WF)
    w = res.fitted[0]
    assert w.model.source["days"] == list(w.plan.train_days)
    assert sample_of(w.model.source.get("days"), [w.plan.train_days[-1]]) == "in_sample"
    assert sample_of(w.model.source.get("days"), list(w.plan.test_days)) == "out_of_sample"
    assert _in_sample_days(None, w.model, days) == list(w.plan.train_days)


def test_test_days_of_windows_never_overlap(tape8, tmp_path):
    # review: test_days=2 with the default step of 1 made consecutive windows share a test
    # day, so the concatenated OOS equity counted it twice (its times went backwards) and
    # the IC t-statistic treated overlapping windows as independent
    root, days, _ = tape8
    res = run_walkforward(root / "tape", tmp_path / "v", FEAT,
                          WalkForwardSettings(train_days=3, test_days=2, fit=FitSettings(margin=-10.0)))
    t = res.equity_times_us
    assert t.size == np.unique(t).size and np.all(np.diff(t) > 0)
    tested = [d for w in res.windows for d in w.plan.test_days]
    assert len(tested) == len(set(tested))
    with pytest.raises(ParameterError, match="`step_days` must be >= `test_days` \\(2\\), got 1"):
        WalkForwardSettings(test_days=2, step_days=1)
    assert WalkForwardSettings(test_days=3).step_days == 3
    assert WalkForwardSettings(test_days=1, step_days=2).step_days == 2
