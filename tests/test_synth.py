"""Tests of the synthetic tape generator: mechanics, planted truth, determinism, CLI."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE
from clusterlob.tape.synth import LATENCY_BASE_US, LATENCY_JITTER_US, _walk, generate_tape
from clusterlob.synth.__main__ import main
from clusterlob.tape import read_manifest, read_tape

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TAPE = ROOT / "data" / "default_tape"
BUCKET_US = 300_000_000


# -- plain NumPy references -------------------------------------------------------------------

def walk_reference(depth, row, lots):
    """Deepest level and filled amount, one taker at a time."""
    level, filled = [], []
    for r, want in zip(row, lots):
        total, j = 0.0, 0
        for j, size in enumerate(depth[r]):
            total += size
            if total >= want:
                break
        level.append(j)
        filled.append(min(want, total))
    return np.array(level), np.array(filled)


def asof_before(book, trades):
    """Index of the last snapshot strictly before each trade (local time), -1 if none."""
    return np.searchsorted(book.ts_local_us, trades.ts_local_us, side="left") - 1


def bucket_corr(tape, mask):
    """corr(OFI[b], r[b]) with OFI the 5-minute sum of side*amount of the masked trades and
    r[b] = ln(mid_close[b+1] / mid_close[b]), mid_close[b] the mid of the last snapshot strictly
    before bucket b ends."""
    tr, bk = tape.trades, tape.book
    t0 = tr.ts_local_us.min() // 86_400_000_000 * 86_400_000_000
    nb = len(tape.days) * 288
    ends = t0 + (np.arange(nb) + 1) * BUCKET_US
    mid_close = bk.mid()[np.searchsorted(bk.ts_local_us, ends, side="left") - 1]
    r = np.log(mid_close[1:] / mid_close[:-1])
    b = (tr.ts_local_us - t0) // BUCKET_US
    ofi = np.bincount(b[mask], weights=(tr.side * tr.amount)[mask], minlength=nb)
    return float(np.corrcoef(ofi[:-1], r)[0, 1])


def file_hashes(path):
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(Path(path).rglob("*.parquet"))}


# -- the walk: hand-computed, then against the reference ------------------------------------

def test_walk_hand_computed():
    depth = np.array([[2.0, 3.0, 5.0], [10.0, 1.0, 1.0]])
    row = np.array([0, 0, 0, 0, 1, 1])
    lots = np.array([1.0, 2.0, 3.0, 99.0, 11.0, 12.0])
    level, filled = _walk(depth, row, lots)
    assert level.tolist() == [0, 0, 1, 2, 1, 2]
    assert filled.tolist() == [1.0, 2.0, 3.0, 10.0, 11.0, 12.0]


def test_walk_matches_reference():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        m, levels, n = rng.integers(1, 6), rng.integers(1, 8), rng.integers(1, 50)
        depth = rng.integers(1, 20, (m, levels)).astype(float)
        row = rng.integers(0, m, n)
        lots = rng.integers(1, 60, n).astype(float)
        level, filled = _walk(depth, row, lots)
        ref_level, ref_filled = walk_reference(depth, row, lots)
        np.testing.assert_array_equal(level, ref_level)
        np.testing.assert_array_equal(filled, ref_filled)


# -- a small generated tape ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_tape(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "tape"
    result = generate_tape(out, "2024-05-01", 2, 30_000, 11, snapshot_ms=1000, levels=10)
    return result, read_tape(out), out


def test_layout_and_agent_column(small_tape):
    result, tape, out = small_tape
    manifest = read_manifest(out)
    assert tape.days == ["2024-05-01", "2024-05-02"] == result.days
    assert manifest["trade_extra_columns"] == ["agent"]
    assert manifest["summary"]["out_of_order_trades_sorted"] == 0
    assert manifest["summary"]["out_of_order_book_sorted"] == 0
    assert manifest["summary"]["duplicate_trade_ids"] == 0
    agent = tape.trades.extra["agent"]
    assert agent.dtype == np.int8 and set(np.unique(agent)) == {DIRECTIONAL, OPPORTUNISTIC, PASSIVE}
    shares = np.bincount(agent) / len(agent)
    np.testing.assert_allclose(shares, [0.35, 0.20, 0.45], atol=0.02)
    assert result.trades == len(tape.trades) == sum(result.trades_by_agent.values())
    # weekdays get 7/6 of the weekly mean rate
    assert abs(len(tape.trades) / 2 - 35_000) < 1_500
    assert tape.book.levels == 10 and len(tape.book) == 2 * 86_400


def test_times(small_tape):
    _, tape, _ = small_tape
    tr, bk = tape.trades, tape.book
    lat = tr.ts_local_us - tr.ts_exch_us
    assert lat.min() >= LATENCY_BASE_US and lat.max() < LATENCY_BASE_US + LATENCY_JITTER_US
    assert np.all(bk.ts_local_us - bk.ts_exch_us == LATENCY_BASE_US + LATENCY_JITTER_US)
    assert np.all(np.diff(tr.ts_local_us) >= 0) and np.all(np.diff(tr.ts_exch_us) >= 0)
    # every trade falls strictly between the snapshot it traded against and the next one
    j = asof_before(bk, tr)
    assert j.min() >= 0
    assert np.all(tr.ts_exch_us // 1_000_000 == bk.ts_exch_us[j] // 1_000_000)
    nxt = np.minimum(j + 1, len(bk) - 1)
    assert np.all((tr.ts_local_us < bk.ts_local_us[nxt]) | (j + 1 == len(bk)))


def test_trades_print_inside_the_book(small_tape):
    _, tape, _ = small_tape
    tr, bk = tape.trades, tape.book
    j = asof_before(bk, tr)
    buy = tr.side > 0
    px = np.where(buy[:, None], bk.ask_px[j], bk.bid_px[j])
    sz = np.where(buy[:, None], bk.ask_sz[j], bk.bid_sz[j])
    level = np.argmin(np.abs(px - tr.price[:, None]), axis=1)
    assert np.allclose(px[np.arange(len(tr)), level], tr.price)       # at a price of the book
    cum = np.cumsum(sz, axis=1)
    before = np.where(level > 0, cum[np.arange(len(tr)), np.maximum(level - 1, 0)], 0.0)
    at = cum[np.arange(len(tr)), level]
    # the deepest level it walks: earlier levels did not fill it, this one did
    assert np.all(before < tr.amount - 1e-9) and np.all(tr.amount <= at + 1e-9)
    assert np.all(tr.amount >= 0.001 - 1e-12)


def test_book_shape(small_tape):
    _, tape, _ = small_tape
    bk = tape.book
    spread_ticks = np.round((bk.ask_px[:, 0] - bk.bid_px[:, 0]) * 10).astype(int)
    assert spread_ticks.min() >= 1
    assert 0.97 < np.mean(spread_ticks == 1) < 1.0                     # mostly one tick, sometimes wider
    np.testing.assert_allclose(np.diff(bk.bid_px, axis=1), -0.1, atol=1e-6)
    np.testing.assert_allclose(np.diff(bk.ask_px, axis=1), 0.1, atol=1e-6)
    for side in (bk.bid_sz, bk.ask_sz):
        assert np.all(side >= 0.001 - 1e-12)
        np.testing.assert_allclose(side * 1000, np.round(side * 1000), atol=1e-6)   # whole lots


def test_planted_feature_signatures(small_tape):
    """Directional takes a thin consumed side, opportunistic a thick one, passive after quiet."""
    _, tape, _ = small_tape
    tr, bk = tape.trades, tape.book
    j = asof_before(bk, tr)
    depth_bid = np.log1p(bk.bid_sz[:, :5].sum(1))
    depth_ask = np.log1p(bk.ask_sz[:, :5].sum(1))
    buy = tr.side > 0
    sbs = np.where(buy, depth_ask[j], depth_bid[j])
    obs = np.where(buy, depth_bid[j], depth_ask[j])
    agent = tr.extra["agent"]
    lean = {a: float(np.mean((obs - sbs)[agent == a])) for a in (DIRECTIONAL, OPPORTUNISTIC, PASSIVE)}
    assert lean[DIRECTIONAL] > 0.5 and lean[OPPORTUNISTIC] < -0.5 and abs(lean[PASSIVE]) < 0.1
    mid = bk.mid()
    changed = np.r_[True, mid[1:] != mid[:-1]]
    last_change = np.maximum.accumulate(np.where(changed, np.arange(len(mid)), 0))
    since_change_s = (tr.ts_local_us - bk.ts_local_us[last_change[j]]) / 1e6
    quiet = {a: float(np.mean(since_change_s[agent == a])) for a in (DIRECTIONAL, OPPORTUNISTIC, PASSIVE)}
    assert quiet[PASSIVE] > 5 * max(quiet[DIRECTIONAL], quiet[OPPORTUNISTIC])
    # passive takers wait for the mid to stand still; the others trade while it moves
    assert np.mean(since_change_s[agent == PASSIVE] > 2.0) > 0.9
    assert np.mean(since_change_s[agent != PASSIVE] > 2.0) < 0.05
    # passive trades are small, directional have the heaviest tail
    amount = tr.amount
    assert np.median(amount[agent == PASSIVE]) < 0.5 * np.median(amount[agent == OPPORTUNISTIC])
    assert np.quantile(amount[agent == DIRECTIONAL], 0.999) > 5 * np.median(amount[agent == DIRECTIONAL])


def test_planted_truth_signs(small_tape):
    """Acceptance point 3: directional > 0 and beats all trades; opportunistic < 0; passive ~ 0."""
    _, tape, _ = small_tape
    agent = tape.trades.extra["agent"]
    corr = {a: bucket_corr(tape, agent == a) for a in (DIRECTIONAL, OPPORTUNISTIC, PASSIVE)}
    corr_all = bucket_corr(tape, np.ones(len(agent), bool))
    assert corr[DIRECTIONAL] > 0.1
    assert corr[OPPORTUNISTIC] < -0.1
    assert abs(corr[PASSIVE]) < 0.12
    assert corr[DIRECTIONAL] > corr_all + 0.05


def test_pipeline_recovers_planted_types(small_tape):
    """Issue 5 point 8 on a fresh tape: rolling z-features, 3-means, rule-based roles."""
    from clusterlob.features import FeatureSettings, build_features
    from clusterlob.cluster.model import fit_model, label_trades
    from clusterlob.cluster.roles import adjusted_rand_index

    _, tape, _ = small_tape
    settings = FeatureSettings()
    feats = build_features(tape, settings)
    model, _ = fit_model(feats.z[feats.valid], settings, k=3, n_init=3, seed=0)
    labels = label_trades(feats, model)
    has = labels.cluster >= 0
    agent = np.asarray(tape.trades.extra["agent"])[has]
    for role in (DIRECTIONAL, OPPORTUNISTIC, PASSIVE):
        members = np.bincount(agent[labels.role[has] == role], minlength=3)
        assert members.argmax() == role, (role, members)
    assert adjusted_rand_index(labels.cluster[has], agent) > 0.4


def test_weekend_about_half(tmp_path):
    result = generate_tape(tmp_path / "t", "2024-05-03", 2, 4_000, 5, snapshot_ms=60_000, levels=5)
    friday, saturday = (read_tape(tmp_path / "t", d) for d in result.days)
    ratio = len(saturday.trades) / len(friday.trades)
    assert 0.45 < ratio < 0.55


# -- determinism --------------------------------------------------------------------------------

def test_same_arguments_same_bytes_other_seed_differs(tmp_path):
    args = dict(start="2024-05-04", days=2, trades_per_day=3_000, snapshot_ms=10_000, levels=25)
    a = generate_tape(tmp_path / "a", seed=3, **args)
    b = generate_tape(tmp_path / "b", seed=3, **args)
    c = generate_tape(tmp_path / "c", seed=4, **args)
    ha, hb, hc = (file_hashes(tmp_path / x) for x in "abc")
    assert len(ha) == 4 and ha == hb
    assert all(hc[k] != ha[k] for k in ha)
    assert a.to_dict() == {**b.to_dict(), "path": a.path}
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert c.trades != a.trades or not np.array_equal(read_tape(tmp_path / "c").trades.price,
                                                      read_tape(tmp_path / "a").trades.price)


# -- errors and the command line ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(days=0), "`days`"), (dict(days=-2), "`days`"), (dict(trades_per_day=0), "`trades_per_day`"),
    (dict(trades_per_day=-5.0), "`trades_per_day`"), (dict(trades_per_day=float("nan")), "`trades_per_day`"),
    (dict(levels=26), "`levels`"), (dict(snapshot_ms=7), "`snapshot_ms`"), (dict(start="May 1"), "`start`"),
    (dict(seed=-1), "`seed`"),
])
def test_bad_arguments(tmp_path, kwargs, name):
    args = dict(start="2024-05-01", days=1, trades_per_day=1000, seed=1)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=name):
        generate_tape(tmp_path / "t", **args)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("argv, word", [
    (["--days", "0"], "days"), (["--trades-per-day", "0"], "trades_per_day"),
    (["--trades-per-day", "-3"], "trades_per_day"),
])
def test_cli_bad_arguments_one_line(tmp_path, capsys, argv, word):
    base = {"--start": "2024-05-01", "--days": "1", "--trades-per-day": "1000", "--seed": "1",
            "--out": str(tmp_path / "t")}
    base.update(dict(zip(argv[::2], argv[1::2])))
    code = main([x for kv in base.items() for x in kv])
    err = capsys.readouterr().err
    assert code != 0 and word in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_existing_folder(tmp_path, capsys):
    (tmp_path / "t").mkdir()
    code = main(["--start", "2024-05-01", "--days", "1", "--trades-per-day", "1000", "--seed", "1",
                 "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 0                      # an empty folder is fine
    (tmp_path / "t2").mkdir()
    (tmp_path / "t2" / "x.txt").write_text("mine")
    code = main(["--start", "2024-05-01", "--days", "1", "--trades-per-day", "1000", "--seed", "1",
                 "--out", str(tmp_path / "t2")])
    err = capsys.readouterr().err
    assert code != 0 and "already has x.txt (use --force to replace)" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_force_replaces_a_tape_only_when_asked(tmp_path, capsys):
    args = ["--start", "2024-05-01", "--days", "1", "--trades-per-day", "500", "--seed", "1",
            "--out", str(tmp_path / "t"), "--snapshot-ms", "60000", "--levels", "2"]
    assert main(args) == 0
    assert main(args[:7] + ["2"] + args[8:]) == 2            # another seed, same folder: refused
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["summary"]["seed"] == 1
    assert main(args[:7] + ["2"] + args[8:] + ["--force"]) == 0
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["summary"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]   # no temporary folder left


def test_cli_writes_tape_with_progress(tmp_path, capsys):
    code = main(["--start", "2024-05-01", "--days", "1", "--trades-per-day", "2000", "--seed", "1",
                 "--out", str(tmp_path / "t"), "--snapshot-ms", "60000", "--levels", "3"])
    err = capsys.readouterr().err
    assert code == 0 and "2024-05-01" in err
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["book_levels"] == 3 and manifest["summary"]["seed"] == 1


# -- the committed default tape -----------------------------------------------------------------

def test_default_tape_is_small_and_planted():
    if not DEFAULT_TAPE.is_dir():
        pytest.skip(f"{DEFAULT_TAPE} is absent (rebuild with python tools/make_default_tape.py)")
    size = sum(f.stat().st_size for f in DEFAULT_TAPE.rglob("*") if f.is_file())
    assert size <= 2_000_000
    tape = read_tape(DEFAULT_TAPE)
    assert len(tape.days) >= 2
    per_day = [e["trades"] for e in read_manifest(DEFAULT_TAPE)["days"]]
    assert min(per_day) >= 12_000
    agent = tape.trades.extra["agent"]
    assert bucket_corr(tape, agent == DIRECTIONAL) > 0.1
    assert bucket_corr(tape, agent == OPPORTUNISTIC) < -0.1
    assert bucket_corr(tape, agent == DIRECTIONAL) > bucket_corr(tape, np.ones(len(agent), bool))


def test_cli_usage_error_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--start", "2024-05-01", "--days", "two", "--trades-per-day", "10", "--seed", "1", "--out", "x"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--days" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kwargs, name", [
    (dict(start_price=0.0), "`start_price`"), (dict(regime_vol=(1.0, 2.0)), "`regime_vol`"),
    (dict(vol_per_day=float("inf")), "`vol_per_day`"), (dict(burst_gain=-1.0), "`burst_gain`"),
    (dict(share_directional=0.0, share_opportunistic=0.0, share_passive=0.0), "shares"),
])
def test_bad_params(kwargs, name):
    from clusterlob.synth import SynthParams
    with pytest.raises(ParameterError, match=name):
        SynthParams(**kwargs)


def test_default_tape_matches_its_recipe(tmp_path):
    """The committed tape is what tools/make_default_tape.py makes with the current code."""
    if not DEFAULT_TAPE.is_dir():
        pytest.skip(f"{DEFAULT_TAPE} is absent (rebuild with python tools/make_default_tape.py)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_default_tape", ROOT / "tools" / "make_default_tape.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    assert recipe.main(["--out", str(tmp_path / "t")]) == 0
    fresh, committed = read_tape(tmp_path / "t"), read_tape(DEFAULT_TAPE)
    for name, column in committed.trades.columns().items():
        np.testing.assert_array_equal(fresh.trades.columns()[name], column, err_msg=name)
    for name in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(fresh.book, name), getattr(committed.book, name), err_msg=name)
