"""python -m clusterlob.ic on small planted tapes: outputs, planted truth, one-line errors."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterlob.ic.__main__ import main
from clusterlob.signals.study import ICSettings, run_ic_study
from clusterlob.cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE
from clusterlob.tape import Book, Instrument, Tape, Trades, write_tape

ROOT = Path(__file__).resolve().parents[1]
DAY0 = 1_714_521_600_000_000          # 2024-05-01 00:00 UTC
US_DAY = 86_400_000_000
BUCKET = 300_000_000


def _planted_tape(path, days=3, trades_per_day=12_000, seed=11, agent=True, levels=1):
    """Directional flow pushes the mid over the next 5 minutes; opportunistic flow is followed by
    a small reversion; passive flow is noise.  Book snapshots every 10 s, ``levels`` levels."""
    rng = np.random.default_rng(seed)
    n = days * trades_per_day
    ts = np.sort(DAY0 + rng.integers(0, days * US_DAY, n))
    kind = rng.choice(np.array([DIRECTIONAL, OPPORTUNISTIC, PASSIVE], np.int8), n, p=[0.3, 0.2, 0.5])
    side = rng.choice(np.array([-1, 1], np.int8), n)
    side[rng.random(n) < 0.01] = 0                                     # a few unknown sides
    amount = np.round(rng.pareto(2.5, n) + 0.01, 3)
    n_buckets = days * US_DAY // BUCKET
    b = (ts - DAY0) // BUCKET
    flow_dir = np.bincount(b, weights=side * amount * (kind == DIRECTIONAL), minlength=n_buckets)
    flow_opp = np.bincount(b, weights=side * amount * (kind == OPPORTUNISTIC), minlength=n_buckets)
    # log-return of each bucket: driven by the previous bucket's flows, plus noise
    drift = np.r_[0.0, 4e-4 * flow_dir[:-1] - 1.5e-4 * flow_opp[:-1]] + rng.normal(0, 1e-3, n_buckets)
    step_us = 10_000_000
    book_ts = DAY0 + np.arange(0, days * US_DAY, step_us)
    per_bucket = BUCKET // step_us
    steps = np.repeat(drift / per_bucket, per_bucket) + rng.normal(0, 5e-5, book_ts.shape[0])
    mid = np.round(60_000 * np.exp(np.cumsum(steps)), 1) + 0.05
    m = book_ts.shape[0]
    steps_px = 0.1 * np.arange(levels)
    book = Book(book_ts - 1000, book_ts, (mid - 0.05)[:, None] - steps_px,
                np.round(rng.lognormal(0.5, 0.8, (m, levels)), 3) + 0.001,
                (mid + 0.05)[:, None] + steps_px, np.round(rng.lognormal(0.5, 0.8, (m, levels)), 3) + 0.001)
    price = np.full(n, 60_000.0)
    extra = {"agent": kind} if agent else {}
    trades = Trades(ts - 1000, ts, price, amount, side, np.arange(n, dtype=np.int64), extra)
    days_list = [f"2024-05-{d + 1:02d}" for d in range(days)]
    write_tape(Tape(Instrument("binance-futures", "BTCUSDT", 0.1, 0.001), trades, book, days_list), path)
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _planted_tape(tmp_path_factory.mktemp("tapes") / "planted")


def test_study_finds_the_planted_directional_flow(planted):
    study = run_ic_study(planted, group_by="agent", in_sample="2024-05-01",
                         settings=ICSettings(timeframes_min=(5, 30)))
    h1 = [r for r in study.pooled.rows if r.weighting == "size" and r.horizon == 1]
    best = max(h1, key=lambda r: r.pearson)
    assert best.group == "directional"
    assert best.pearson > study.pooled.get("all", "size", 1).pearson
    assert best.vs_benchmark_pearson_pct > 0 and best.spearman > 0
    assert study.pooled.get("opportunistic", "size", 1).pearson < 0      # planted reversion
    assert [t.label for t in study.windows] == ["2024-05-01", "2024-05-02", "2024-05-03"]
    agg = study.aggregate.get("directional", "size", 1)
    assert agg.n_windows == 3 and agg.share_positive == 1.0
    assert study.in_out.in_sample_label == "2024-05-01"
    assert study.in_out.oos_labels == ("2024-05-02", "2024-05-03")
    assert study.counts["unknown_side"] > 0
    assert study.signals.trades[0] == study.counts["trades_known_side"]
    honest = study.timeframes.get(5, "directional", "size")
    biased = study.timeframes.get(5, "directional", "size", biased=True)
    assert honest.gross_return_pct > 0 and biased.biased


def test_cli_writes_every_output(planted, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([str(planted), "--group-by", "agent", "--in-sample", "2024-05-01:2024-05-01",
                 "--timeframes", "5,15", "--out", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["outputs"]) >= {"ic.md", "ic.json", "ic_table.csv", "ic_windows.csv", "ic_aggregate.csv",
                                       "timeframes.csv", "insample_outsample_comparison.csv"}
    md = (out / "ic.md").read_text()
    assert "BIASED" in md and "Experiment 9" in md and "| directional |" in md
    with open(out / "timeframes.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(("BIASED" in r["variant"]) == (r["biased"] == "true") for r in rows)
    assert {r["timeframe_min"] for r in rows} == {"5.000000", "15.000000"}
    with open(out / "insample_outsample_comparison.csv") as f:
        io_rows = list(csv.DictReader(f))
    assert len(io_rows) == (4 + 4) * 3 * 2               # (groups + 4 book-OFI rows) x horizons x weightings
    assert {"in_sample_pearson", "oos_pearson_mean", "oos_pearson_std", "ratio_pearson"} <= set(io_rows[0])
    doc = json.loads((out / "ic.json").read_text())
    assert doc["group_by"] == "agent" and doc["timeframes"]["rows"][1]["biased"] is True
    # the same command again refuses to overwrite, with one line
    code = main([str(planted), "--group-by", "agent", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "already has ic.md" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--group-by", "role"], "--group-by role needs --model"),
    (["--horizons", "1,x"], "--horizons must be comma-separated integers"),
    (["--bucket", "0"], "`bucket_s` must be a positive number"),
    (["--threshold-quantile", "2"], "`quantile` must be a finite number in [0, 1]"),
    (["--days", "2024-06-01"], "days not in the tape: 2024-06-01"),
    (["--model", "/nonexistent/model.json"], "model file /nonexistent/model.json does not exist"),
])
def test_cli_errors_are_one_line(planted, tmp_path, capsys, argv, message):
    code = main([str(planted), "--out", str(tmp_path / "o")] + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_cli_needs_the_agent_column(tmp_path, capsys):
    tape = _planted_tape(tmp_path / "t", days=1, trades_per_day=500, agent=False)
    assert main([str(tape), "--out", str(tmp_path / "o")]) == 2
    assert "no `agent` trade column" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_module_entry_point(planted, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "clusterlob.ic", str(planted), "--days", "2024-05-01",
                           "--timeframes", "30", "--horizons", "1", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "best size-weighted IC at h=1: directional" in proc.stdout
    assert "ic: day 1 of 1 (2024-05-01)" in proc.stderr     # progress goes to stderr


def test_cli_with_a_model(tmp_path, capsys):
    from clusterlob.cluster.__main__ import main as cluster_main

    tape = _planted_tape(tmp_path / "t5", days=3, trades_per_day=4_000, levels=5)
    assert cluster_main([str(tape), "--days", "2024-05-01", "--out", str(tmp_path / "m"), "--seed", "3"]) == 0
    capsys.readouterr()
    out = tmp_path / "o"
    assert main([str(tape), "--model", str(tmp_path / "m" / "model.json"), "--timeframes", "30",
                 "--out", str(out), "--json"]) == 0
    doc = json.loads((out / "ic.json").read_text())
    assert doc["group_by"] == "role"
    assert [r["group"] for r in doc["ic_pooled"]["rows"][:4]] == ["all", "directional", "opportunistic", "passive"]
    # in sample defaults to the model's fit days; the later days are out of sample
    assert doc["in_vs_out_of_sample"]["in_sample"] == "2024-05-01"
    assert doc["in_vs_out_of_sample"]["out_of_sample"] == ["2024-05-02", "2024-05-03"]
    # labelled trades are counted, the z-score warm-up leaves some unassigned
    assert 0 < doc["counts"]["valid_rows"] <= doc["counts"]["trades_known_side"]
    assert main([str(tape), "--model", str(tmp_path / "m" / "model.json"), "--group-by", "cluster",
                 "--horizons", "1", "--timeframes", "30", "--out", str(tmp_path / "oc")]) == 0
    doc = json.loads((tmp_path / "oc" / "ic.json").read_text())
    assert doc["signals"]["groups"][:4] == ["all", "cluster 0", "cluster 1", "cluster 2"]   # then book OFI


def test_groups_without_trades_are_noted_once():
    from clusterlob.ic import ic_table
    from clusterlob.signals.study import _constant_notes
    from clusterlob.signals import ROLE_GROUPS, BucketGrid, bucket_signals

    rng = np.random.default_rng(0)
    grid = BucketGrid.for_days(["2024-05-01"], BUCKET)
    n = 5_000
    ts = np.sort(DAY0 + rng.integers(0, US_DAY, n))
    labels = rng.choice(np.array([DIRECTIONAL, PASSIVE], np.int8), n)      # no opportunistic trade
    sig = bucket_signals(ts, rng.choice(np.array([-1, 1], np.int8), n), rng.exponential(1, n), labels,
                         grid.starts_us, 60000 + rng.normal(0, 1, grid.n_buckets).cumsum(), grid, ROLE_GROUPS)
    with pytest.warns(Warning):
        table = ic_table(sig, (1, 2))
    notes = _constant_notes(sig, [table], 4)
    assert notes[0].startswith("group opportunistic: no trades") and "signal is off" in notes[0]
    assert len(notes) == 2 and notes[1] == "4 IC values are NaN because a series was constant"


def test_planted_truth_on_the_default_tape(tmp_path, capsys):
    """Point 7: directional size-weighted OFI has the highest IC at h=1 and beats all trades, both
    by the planted agent column (independent of clustering) and by the roles of a fitted model."""
    from clusterlob.cluster.__main__ import main as cluster_main
    from conftest import DATA

    tape = DATA / "default_tape"
    by_agent = run_ic_study(tape, group_by="agent", settings=ICSettings(horizons=(1,), timeframes_min=(30,)))
    assert cluster_main([str(tape), "--out", str(tmp_path / "m"), "--seed", "0"]) == 0
    capsys.readouterr()
    from clusterlob.cluster.model import load_model
    by_role = run_ic_study(tape, model=load_model(tmp_path / "m" / "model.json"), group_by="role",
                           settings=ICSettings(horizons=(1,), timeframes_min=(30,)))
    for study in (by_agent, by_role):
        h1 = [r for r in study.pooled.rows if r.weighting == "size" and r.horizon == 1]
        best = max(h1, key=lambda r: r.pearson)
        assert best.group == "directional", study.group_by
        assert best.pearson > study.pooled.get("all", "size", 1).pearson + 0.1
        assert study.pooled.get("opportunistic", "size", 1).pearson < 0


def test_cli_on_the_real_binance_sample(tmp_path, capsys):
    """5.7 minutes of real BTCUSDT futures: 10 s buckets, roles from a model fit on the same data."""
    from clusterlob.cluster.__main__ import main as cluster_main
    from clusterlob.convert.__main__ import main as convert_main
    from clusterlob.tape import read_tape
    from conftest import shared_file

    raw = shared_file("binance-futures", "btcusdt_20240808.gz")
    assert convert_main([str(raw), "--out", str(tmp_path / "tape")]) == 0
    assert cluster_main([str(tmp_path / "tape"), "--out", str(tmp_path / "m"), "--seed", "0"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "tape"), "--model", str(tmp_path / "m" / "model.json"), "--bucket", "10",
                 "--timeframes", "1", "--threshold-min-history", "3", "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "ic.json").read_text())
    rows = {(r["group"], r["weighting"], r["horizon"]): r for r in doc["ic_pooled"]["rows"]}
    assert 30 <= rows[("all", "size", 1)]["n_buckets"] <= 36       # the buckets with a close mid
    tape = read_tape(tmp_path / "tape")
    assert doc["counts"]["trades_known_side"] == int(np.count_nonzero(tape.trades.side))
    assert sum(doc["counts"][f"trades_{g}"] for g in ("directional", "opportunistic", "passive")) \
        == doc["counts"]["valid_rows"]
