"""`python -m clusterlob.compare`: exact activity ratios, planted feature, outputs, errors, real data."""
import csv
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clusterlob._io import MARKER_FILE

from cluster_fixtures import make_tape
from compare_fixtures import planted_tape
from conftest import DATA, shared_file
from clusterlob.compare import MODEL_FILES, OUTPUT_FILES, activity_ratios, compare_tapes, tape_activity
from clusterlob.compare.__main__ import main
from clusterlob.errors import ParameterError
from clusterlob.features import FEATURE_NAMES, FeatureSettings, build_features
from clusterlob.cluster.model import load_model
from clusterlob.tape import US_PER_DAY, Book, Tape, Trades, read_tape, write_tape

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = FeatureSettings(window=20)


def two_days(n_snapshots, trades_per_snapshot, seeds, days):
    parts = [make_tape(n_snapshots=n_snapshots, trades_per_snapshot=trades_per_snapshot, seed=s, day=d)
             for s, d in zip(seeds, days)]
    return Tape(parts[0].instrument, Trades.concat([p.trades for p in parts]),
                Book.concat([p.book for p in parts]), list(days))


@pytest.fixture(scope="module")
def tapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("tapes")
    a = two_days(600, 3, (1, 2), ("2024-05-01", "2024-05-02"))      # 3,600 trades in 2 days
    b = two_days(400, 2, (3,), ("2024-06-03",))                       # 800 trades in 1 day
    write_tape(a, root / "a")
    write_tape(b, root / "b")
    planted, _ = planted_tape(seed=4)
    write_tape(planted, root / "planted")
    return root


def error_line(err):
    """The CLI's one-line error: the last stderr line, the only one starting with "error:"."""
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err
    assert "Traceback" not in err
    return lines[-1]


def test_activity_counts_and_exact_ratios(tapes):
    a = tape_activity(tapes / "a")
    b = tape_activity(tapes / "b")
    assert (a.trades, len(a.days), b.trades, len(b.days)) == (3600, 2, 800, 1)
    r = activity_ratios(a, b)
    assert r["trades_per_day"] == 2.25                                 # (3600 / 2) / (800 / 1), exactly
    ta, tb = read_tape(tapes / "a").trades, read_tape(tapes / "b").trades
    day_of = ta.ts_local_us // US_PER_DAY
    span_a = sum(int(ta.ts_local_us[day_of == d].max()) - int(ta.ts_local_us[day_of == d].min())
                 for d in np.unique(day_of))
    span_b = int(tb.ts_local_us.max()) - int(tb.ts_local_us.min())
    assert a.recorded_us == span_a and b.recorded_us == span_b
    assert r["trades_per_recorded_day"] == float(Fraction(3600 * span_b, 800 * span_a))
    assert a.per_recorded_day(a.trades) == pytest.approx(3600 * US_PER_DAY / span_a, rel=1e-15)
    assert a.unknown_side_trades == int((ta.side == 0).sum())
    assert a.volume_base == pytest.approx(ta.amount.sum())
    assert a.notional_quote == pytest.approx((ta.price * ta.amount).sum())
    assert r["volume_base_per_day"] == pytest.approx((ta.amount.sum() / 2) / tb.amount.sum(), rel=1e-12)
    assert r["notional_quote_per_recorded_day"] == pytest.approx(
        ((ta.price * ta.amount).sum() / span_a) / ((tb.price * tb.amount).sum() / span_b), rel=1e-12)
    # one day of A against itself: every ratio is 1
    one = tape_activity(tapes / "a", "2024-05-01")
    assert all(v == 1.0 for v in activity_ratios(one, one).values())


def test_exchange_clock_and_bad_time_key(tapes):
    local, exch = tape_activity(tapes / "b"), tape_activity(tapes / "b", time_key="exchange")
    assert local.trades == exch.trades and exch.recorded_us > 0
    with pytest.raises(ParameterError, match="`time_key` must be one of local, exchange, got 'utc'"):
        tape_activity(tapes / "b", time_key="utc")


def test_compare_finds_the_planted_feature(tapes):
    c = compare_tapes(tapes / "planted", tapes / "a", FeatureSettings(window=50), k=2, seed=0)
    assert c.a.importance.ranking[0] == "v_rel"
    assert c.a.fitted and c.b.fitted
    assert sum(r.count for r in c.a.centroids) == c.a.features.rows_used
    assert "A's clusters separate mainly by v_rel" in c.summary()
    assert c.ratios["trades_per_day"] == 3000 / 1800


def test_cli_writes_every_output_and_refuses_to_overwrite(tapes, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(tapes / "a"), str(tapes / "b"), "--out", str(out), "--window", "20", "--seed", "3",
            "--min-rows-per-cluster", "20"]
    assert main(argv + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ratios_a_over_b"]["trades_per_day"] == 2.25
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES + MODEL_FILES + (MARKER_FILE,))
    for side in ("a", "b"):
        s = doc[side]
        assert [f["rank"] for f in s["importance"]["features"]] == [1, 2, 3, 4, 5, 6]
        assert sum(cl["count"] for cl in s["clusters"]) == s["feature_summary"]["rows_used"]
        assert s["importance"]["counts"] == [cl["count"] for cl in s["clusters"]]
        assert s["importance"]["ranking"][0] in doc["summary"]
    with open(out / "importance.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["tape", "rank", "feature", "share_pct", "r2", "f_ratio", "between_ss", "within_ss"]
    assert len(rows) == 13 and sum(float(r[3]) for r in rows[1:7]) == pytest.approx(100.0, abs=1e-4)
    with open(out / "activity.csv", newline="") as fh:
        activity = {r[0]: r for r in csv.reader(fh)}
    assert float(activity["trades per day"][3]) == 2.25
    with open(out / "centroids.csv", newline="") as fh:
        cent = list(csv.reader(fh))
    assert cent[0][:5] == ["tape", "cluster", "role", "count", "share_pct"] and len(cent) == 7
    md = (out / "compare.md").read_text()
    assert "## Which features separate the clusters" in md and "| trades per day | 1,800 | 800 | 2.25 |" in md
    model = load_model(out / "model_a.json", settings=SETTINGS)
    assert model.seed == 3 and model.source["tape"] == str(tapes / "a")

    before = (out / "compare.md").read_text()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already has" in err and "--force" in err and err.count("\n") == 1   # refused before any work
    assert (out / "compare.md").read_text() == before
    assert main(argv + ["--force"]) == 0
    text = capsys.readouterr().out
    assert "summary: A has" in text and "trades per day" in text and "A centroids (z)" in text


def test_cli_with_given_models(tapes, tmp_path, capsys):
    first = tmp_path / "first"
    assert main([str(tapes / "a"), str(tapes / "b"), "--out", str(first), "--window", "20",
                 "--min-rows-per-cluster", "20", "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    out = tmp_path / "again"
    assert main([str(tapes / "a"), str(tapes / "b"), "--out", str(out), "--json",
                 "--min-rows-per-cluster", "20",
                 "--model-a", str(first / "model_a.json"), "--model-b", str(first / "model_b.json")]) == 0
    given = json.loads(capsys.readouterr().out)
    assert not given["a"]["fitted"] and given["feature_settings"]["window"] == 20   # taken from the model
    assert not any((out / m).exists() for m in MODEL_FILES)
    for side in ("a", "b"):
        assert given[side]["model"]["centers_z"] == fitted[side]["model"]["centers_z"]
        # the fit's labels are the nearest centres after convergence, up to a few rows
        na, nb = np.array(given[side]["importance"]["counts"]), np.array(fitted[side]["importance"]["counts"])
        assert np.abs(na - nb).sum() <= 0.01 * na.sum()
    # a model applied with other feature settings is refused in one line
    assert main([str(tapes / "a"), str(tapes / "b"), "--out", str(tmp_path / "x"), "--window", "30",
                 "--model-a", str(first / "model_a.json")]) == 2
    err = capsys.readouterr().err
    assert "was fit with features window=20" in err and err.count("\n") == 1   # before any work


def test_too_short_tape_says_how_many_rows(tapes, tmp_path, capsys):
    short = make_tape(n_snapshots=40, trades_per_snapshot=3, seed=9, unknown_share=0.0)
    write_tape(short, tmp_path / "short")
    rc = main([str(tapes / "a"), str(tmp_path / "short"), "--out", str(tmp_path / "o")])
    err = error_line(capsys.readouterr().err)
    assert rc == 2
    feats = build_features(short, FeatureSettings())
    valid, warmup = feats.counts["valid_rows"], feats.counts["warmup_rows"]["total"]
    assert 0 < valid < 150 and warmup >= 99
    assert (f"short (days 2024-05-01) is too short to fit: {valid} valid feature rows from 120 trades "
            f"({warmup} in the z-score warm-up of W=100, 0 of unknown side)") in err
    assert "need at least 150 (50 per cluster for k=3" in err
    assert not (tmp_path / "o").exists()


def test_cli_days_and_errors(tapes, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([str(tapes / "a"), str(tapes / "a"), "--days", "2024-05-01", "--days-b", "2024-05-02",
                 "--out", str(out), "--window", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["a"]["activity"]["days"] == ["2024-05-01"] and doc["b"]["activity"]["days"] == ["2024-05-02"]
    assert doc["ratios_a_over_b"]["trades_per_day"] == 1.0
    a, b = str(tapes / "a"), str(tapes / "b")
    for argv, message in (
            ([a, str(tmp_path / "nope")], "does not exist"),
            ([a, b, "--days", "2024-05-01"], "days not in the tape: 2024-05-01"),
            ([a, b, "--convention", "spot"], "`convention` must be one of"),
            ([a, b, "--min-rows-per-cluster", "0"], "`min_rows_per_cluster` must be an integer >= 1, got 0"),
            ([a, b, "--k", "0"], "`k` must be an integer in 2..127, got 0"),
            ([a, b, "--seed", "-1"], "`seed` must be an integer >= 0, got -1"),
            ([a, b, "--model-a", str(tmp_path / "none.json")], "does not exist")):
        assert main(argv + ["--out", str(tmp_path / "e")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error:") and err.count("\n") == 1   # checked up front


def test_module_entry_point(tapes, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "clusterlob.compare", str(tapes / "a"), str(tapes / "b"),
                           "--out", str(tmp_path / "o"), "--window", "20"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "summary: A has" in proc.stdout and "2024-05-01" in proc.stderr   # progress on stderr


def test_real_binance_recording_against_the_default_tape(tmp_path, capsys):
    """The BTCUSDT recording in ../shared/data, converted, against the committed generated tape."""
    raw = shared_file("binance-futures", "btcusdt_20240808.gz")
    pytest.importorskip("clusterlob.tape.readers.binance", reason="the Binance reader is not on this branch yet")
    default = DATA / "default_tape"
    if not (default / "manifest.json").exists():
        pytest.skip(f"the committed generated tape {default} is not on this branch yet")
    from clusterlob.convert import convert
    convert([raw], tmp_path / "btc")
    out = tmp_path / "cmp"
    assert main([str(tmp_path / "btc"), str(default), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    a = doc["a"]
    assert a["activity"]["trades"] > 20_000 and a["activity"]["days"] == ["2024-08-08"]
    assert 0.09 < a["activity"]["recorded_hours"] < 0.1          # 23:54:15 .. 23:59:59
    assert a["feature_summary"]["rows_used"] > 10_000
    assert sorted(a["importance"]["ranking"]) == sorted(FEATURE_NAMES)
    assert doc["ratios_a_over_b"]["trades_per_recorded_day"] > 1
