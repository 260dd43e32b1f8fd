"""Sweeps and walk-forward strategy selection: grids, tasks, resume, executors, CSCV, the command."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clusterlob._exec import LocalProcesses
from clusterlob.errors import ParameterError, TapeError
from clusterlob.replay import StrategyConfig, run_pipeline
from clusterlob.sweep import make_grid, run_sweep
from clusterlob.sweep.pbo import cscv_pbo
from clusterlob.sweep.select import run_selection
from clusterlob.sweep.tasks import DIE_ONCE_ENV

from walkforward_fixtures import write_random_tape

ROOT = Path(__file__).resolve().parents[1]


def _text(rows) -> str:
    """Rows as JSON text: equal results compare equal even where a Sharpe is NaN."""
    import json
    return json.dumps(rows, sort_keys=True)
DEFAULT_TAPE = ROOT / "data" / "default_tape"
GRID = {"strategy": {"skew_ticks": [10.0, 50.0], "mapping": ["inverted", "traditional"]}, "fit": {"train_days": 1}}


@pytest.fixture(scope="module")
def tape5(tmp_path_factory):
    """Five days, the fourth without trades."""
    path = tmp_path_factory.mktemp("sweep") / "tape5"
    days = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "2024-05-05"]
    write_random_tape(path, 11, days, trades_per_day=600, snaps_per_day=300, no_trade_days=("2024-05-04",))
    return path


# -- grids ---------------------------------------------------------------------------------------

def test_grid_is_the_product_in_file_order_with_labels():
    g = make_grid({"strategy": {"skew_ticks": [10, 30], "theta": 2.0, "mapping": ["inverted", "traditional"]}})
    assert [p.label for p in g.points] == ["skew_ticks=10, mapping=inverted", "skew_ticks=10, mapping=traditional",
                                           "skew_ticks=30, mapping=inverted", "skew_ticks=30, mapping=traditional"]
    assert all(p.config.theta == 2.0 for p in g.points)
    assert g.points[3].config.alpha_role == "opportunistic" and g.points[3].config.skew_ticks == 30.0
    assert g.models.fit is not None and g.models.train_days == 1


def test_grid_accepts_every_strategy_field_generically():
    defaults = StrategyConfig()
    doc = {f.name: [getattr(defaults, f.name)] for f in dataclasses.fields(StrategyConfig)}
    g = make_grid({"strategy": doc})
    assert len(g) == 1 and g.points[0].config == defaults


@pytest.mark.parametrize("doc, message", [
    ({"strategy": {"skew_tics": [1, 2]}}, "unknown strategy field `skew_tics`"),
    ({"strategy": {"theta": []}}, "`theta` is an empty list"),
    ({"strategy": {"theta": [1.0, "x"]}}, "`theta`[1] must be a number, got 'x'"),
    ({"strategy": {"fill_model": [1]}}, "`fill_model`[0] must be a string, got 1"),
    ({"strategy": {"mapping": ["upside"]}}, "`mapping` must be one of"),
    ({"strategy": {"theta": [1.0, 1.0]}}, "lists a value twice"),
    ({"model": "nope.json", "fit": {"k": 3}}, "not both"),
    ({"fit": {"k": 1}}, "`k` must be an integer in 2..127"),
])
def test_grid_errors_are_one_line(doc, message):
    with pytest.raises(ParameterError) as err:
        make_grid(doc, source="grid g.toml")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("grid g.toml")


def test_rejected_combination_is_named_by_its_coordinates_or_skipped():
    # (an order latency above the requote interval was such a combination before the exchange
    # rules; now latencies are free, and two roles that must differ make one)
    doc = {"strategy": {"alpha_role": ["directional", "opportunistic"], "hazard_role": ["passive", "opportunistic"]}}
    with pytest.raises(ParameterError) as err:
        make_grid(doc, source="grid g.toml")
    msg = str(err.value)
    assert "grid point #3 (alpha_role[1]='opportunistic', hazard_role[1]='opportunistic')" in msg
    assert "`alpha_role` and `hazard_role` must differ" in msg and "skip_invalid" in msg
    g = make_grid({**doc, "skip_invalid": True})
    assert len(g) == 3 and len(g.rejected) == 1 and "#3" in g.rejected[0]


# -- sweeps --------------------------------------------------------------------------------------

def test_sweep_equals_the_main_job(tmp_path):
    res = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02")
    assert len(res.rows) == 4 and res.days == ("2024-05-02",)
    pipe = run_pipeline(None, "2024-05-01", "2024-05-02", StrategyConfig(skew_ticks=10.0),
                        mappings=("inverted", "traditional"))
    rows = {(r["cfg_skew_ticks"], r["cfg_mapping"]): r for r in res.rows}
    for mapping, result in pipe.results.items():
        s = result.summary
        r = rows[(10.0, mapping)]
        assert (r["pnl_total"], r["fills"], r["sharpe_1min"], r["minutes"]) == \
               (s.pnl_total, s.fills, s.sharpe_1min, s.minutes)
    # the hourly PnL of every task sums to its PnL
    for rec in res.records.values():
        assert math.isclose(sum(rec["hourly_pnl"]), rec["summary"]["pnl_total"], rel_tol=1e-9, abs_tol=1e-6)


def test_sweep_is_identical_on_local_processes_and_resumes(tmp_path):
    serial = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", out_dir=tmp_path / "a")
    tasks = sorted((tmp_path / "a" / "tasks").glob("*.json"))
    assert len(tasks) == 4
    for f in tasks[:2]:                       # as if the sweep had been killed after two tasks
        f.unlink()
    lines = []
    with LocalProcesses(2) as pool:
        resumed = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", pool, out_dir=tmp_path / "a", progress=lines.append)
    assert any("2 finished task(s) reused, 2 to run" in line for line in lines)
    assert _text(resumed.rows) == _text(serial.rows)
    with LocalProcesses(2) as pool:
        fresh = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", pool)
    assert _text(fresh.rows) == _text(serial.rows)


def test_a_killed_local_worker_costs_a_retry_not_the_sweep(tmp_path, monkeypatch):
    serial = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02")
    marker = tmp_path / "died"
    monkeypatch.setenv(DIE_ONCE_ENV, str(marker))
    with LocalProcesses(2) as pool:
        res = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", pool)
        retried = pool.retried
    assert marker.exists() and retried >= 1
    assert _text(res.rows) == _text(serial.rows)


def test_local_workers_exit_when_their_parent_dies(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from clusterlob._exec import LocalProcesses
        pool = LocalProcesses(2)
        pool.submit(time.sleep, 0.01).result()
        pool.submit(time.sleep, 0.01).result()
        print(" ".join(map(str, pool.worker_pids())), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    alive = pids
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
    assert not alive, f"workers {alive} outlived their parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_tasks_with_a_model_file_and_unknown_day(tmp_path):
    res = run_sweep(DEFAULT_TAPE, {"strategy": {"skew_ticks": [50.0]}, "fit": {"train_days": 1}}, "2024-05-02",
                    out_dir=tmp_path / "o")
    model = res.models[0]["file"]
    again = run_sweep(DEFAULT_TAPE, {"strategy": {"skew_ticks": [50.0]}, "model": model}, "2024-05-02")
    assert again.rows[0]["pnl_total"] == res.rows[0]["pnl_total"]
    with pytest.raises(TapeError, match="days not in the tape: 2024-06-01"):
        run_sweep(DEFAULT_TAPE, GRID, "2024-06-01")


def test_sweep_skips_a_day_without_training_days():
    res = run_sweep(DEFAULT_TAPE, GRID, "2024-05-01:2024-05-02")
    assert res.days == ("2024-05-02",)
    assert any("2024-05-01" in s and "fewer than 1 day" in s for s in res.skipped)


def test_sweep_skips_and_reports_days_without_trades_or_training(tape5):
    res = run_sweep(tape5, {"strategy": {"skew_ticks": [5.0]}, "fit": {"train_days": 1}, "features": {"window": 20}})
    assert res.days == ("2024-05-02", "2024-05-03")
    assert "2024-05-04: no trades in the tape" in res.skipped
    assert any(s.startswith("2024-05-05: training day(s) 2024-05-04") for s in res.skipped)


# -- selection ----------------------------------------------------------------------------------

def test_selection_chooses_on_the_training_days_only(tape5, tmp_path):
    grid = {"strategy": {"skew_ticks": [5.0, 50.0], "mapping": ["inverted", "traditional"],
                         "half_spread_bps": [0.0, 1.0]}, "fit": {"train_days": 1, "k": 3}, "features": {"window": 20}}
    res = run_selection(tape5, grid, out_dir=tmp_path / "s", n_blocks=4)
    status = [w.status for w in res.windows]
    # windows test 05-02, 05-03, 05-04 (no trades: skipped), 05-05 (trains on the empty day: skipped)
    assert status == ["selected", "selected", "skipped", "skipped"]
    assert "2024-05-04" in res.windows[2].reason and "2024-05-04" in res.windows[3].reason
    assert any("skipped" in n for n in res.notes)
    for w in res.selected:
        # the choice is the best pooled Sharpe of a sweep over the training day with the window's model
        check = run_sweep(tape5, {**{k: v for k, v in grid.items() if k not in ("fit", "features")},
                                  "model": w.model_file}, w.train_days[0])
        best = max(check.by_config(), key=lambda r: (r["sharpe_1min"] if math.isfinite(r["sharpe_1min"])
                                                    else -math.inf, -r["config"]))
        assert best["config"] == w.chosen
        assert 1 <= w.oos_rank <= w.n_configs == 8
        assert set(w.benchmarks) == {"default", "all_trades_ofi", "symmetric"}
    eq = res.equity
    assert len(eq["ts_us"]) == len(eq["selected"]) == len(eq["symmetric"]) > 0
    assert math.isclose(eq["selected"][-1], sum(w.oos_pnl for w in res.selected), abs_tol=1e-6)
    assert res.pbo.candidates == 8 and 0.0 <= res.pbo.pbo <= 1.0
    assert res.pbo.rows == 48
    mp = res.mapping_pairs                      # 2 test days x 4 configs equal but for the mapping
    assert mp["pairs"] == 8 and sum(mp["wins"].values()) + mp["ties"] == 8


def test_selection_bad_input(tape5):
    with pytest.raises(ParameterError, match="`objective` must be one of"):
        run_selection(tape5, GRID, objective="sortino")
    with pytest.raises(ParameterError, match="not model files"):
        run_selection(tape5, {"model": str(ROOT / "data" / "default_tape" / "manifest.json")})


def test_min_fills_leaves_windows_without_an_eligible_config(tape5):
    res = run_selection(tape5, GRID, min_fills=10 ** 9, days="2024-05-01:2024-05-03", n_blocks=2)
    assert [w.status for w in res.windows] == ["no_eligible", "no_eligible"]
    assert float(res.equity["selected"][-1]) == 0.0


# -- CSCV -------------------------------------------------------------------------------------

def _pbo_reference(m, s):
    """Plain loops over Bailey et al.'s definition."""
    t, n = m.shape
    m = m[t % s:]
    size = m.shape[0] // s
    blocks = [m[i * size:(i + 1) * size] for i in range(s)]
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        ins = np.vstack([blocks[i] for i in combo])
        oos = np.vstack([blocks[i] for i in range(s) if i not in combo])
        perf_is = [ins[:, j].mean() / ins[:, j].std(ddof=1) for j in range(n)]
        perf_oos = [oos[:, j].mean() / oos[:, j].std(ddof=1) for j in range(n)]
        best = int(np.argmax(perf_is))
        rank = 1 + sum(p < perf_oos[best] for p in perf_oos) + 0.5 * (sum(p == perf_oos[best] for p in perf_oos) - 1)
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0)), np.array(logits)


@pytest.mark.parametrize("seed", range(4))
def test_cscv_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(27, 5))
    pbo, logits = _pbo_reference(m, 6)
    res = cscv_pbo(m, 6)
    assert res.n_splits == 20 and res.rows == 24 and "dropped the first 3" in res.note
    assert res.pbo == pbo
    np.testing.assert_allclose(res.logits, logits, rtol=1e-12)


def test_cscv_finds_no_overfitting_in_a_real_edge_and_half_in_noise():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(96, 30))
    m[:, 7] += 1.0
    assert cscv_pbo(m).pbo == 0.0
    noise = np.mean([cscv_pbo(np.random.default_rng(s).normal(size=(64, 40)), 8).pbo for s in range(6)])
    assert 0.25 < noise < 0.75
    with pytest.raises(ParameterError):
        cscv_pbo(m, 5)
    assert math.isnan(cscv_pbo(m[:, :1]).pbo)


# -- the command -------------------------------------------------------------------------------

def _run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "clusterlob.sweep", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_command_sweeps_resumes_and_refuses(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[strategy]\nskew_ticks = [10, 50]\nmapping = ["inverted", "traditional"]\n'
                    '[fit]\ntrain_days = 1\n')
    out = tmp_path / "out"
    r = _run(DEFAULT_TAPE, "--grid", grid, "--days", "2024-05-02", "--out", out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "best by pooled Sharpe" in r.stdout and "sweep: replays 4/4" in r.stderr
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 4 and {"pnl_total", "spread_capture", "inventory_drift", "fees", "sharpe_1min",
                                    "minutes", "fills", "volume", "largest_inventory", "cfg_skew_ticks"} \
        <= set(table.column_names)
    assert "Best 4 by Sharpe" in (out / "summary.md").read_text()
    again = _run(DEFAULT_TAPE, "--grid", grid, "--days", "2024-05-02", "--out", out)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    forced = _run(DEFAULT_TAPE, "--grid", grid, "--days", "2024-05-02", "--out", out, "--force", "--json")
    assert forced.returncode == 0 and "4 finished task(s) reused" in forced.stderr
    assert json.loads(forced.stdout)["tasks"] == 4


@pytest.mark.parametrize("grid_text, extra, message", [
    ("[strategy]\nskew = [1]\n", (), "unknown strategy field `skew`"),
    ("[strategy]\nskew_ticks = []\n", (), "empty list"),
    ("[strategy]\nskew_ticks = [1]\n", ("--select", "--objective", "calmar"), "`objective` must be one of"),
    ("[strategy]\nskew_ticks = [1]\n", ("--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"),
     "did not answer within 1 s"),
])
def test_command_bad_input_is_one_line(tmp_path, grid_text, extra, message, capsys):
    from clusterlob.sweep.__main__ import main
    if "--scheduler" in extra:
        pytest.importorskip("dask.distributed")
    grid = tmp_path / "g.toml"
    grid.write_text(grid_text)
    start = time.time()
    assert main([str(DEFAULT_TAPE), "--grid", str(grid), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert time.time() - start < 30


def test_command_select(tape5, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[strategy]\nskew_ticks = [5, 50]\nmapping = ["inverted", "traditional"]\n'
                    'half_spread_bps = [0.0, 1.0]\n[fit]\ntrain_days = 1\n[features]\nwindow = 20\n')
    r = _run(tape5, "--grid", grid, "--select", "--out", tmp_path / "sel", "--blocks", "4", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "selection: 2 of 4 window(s) traded" in r.stdout and r.stderr == ""
    md = (tmp_path / "sel" / "selection.md").read_text()
    assert "probability of backtest overfitting" in md and "all-trades OFI PnL" in md
    eq = pq.read_table(tmp_path / "sel" / "equity.parquet")
    assert set(eq.column_names) == {"ts_us", "window", "selected", "default", "all_trades_ofi", "symmetric"}


def test_pictures_with_the_plot_extra(tape5, tmp_path):
    from clusterlob.sweep.report import write_selection, write_sweep
    grid = {"strategy": {"skew_ticks": [5.0, 50.0], "half_spread_bps": [0.0, 1.0], "mapping": ["inverted"]},
            "fit": {"train_days": 1}, "features": {"window": 20}}
    sweep = run_sweep(tape5, grid, "2024-05-02:2024-05-03")
    sel = run_selection(tape5, grid, days="2024-05-01:2024-05-03", n_blocks=2)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        paths = write_sweep(sweep, tmp_path / "a") + write_selection(sel, tmp_path / "b")
        assert not any(p.suffix == ".png" for p in paths)
        assert "matplotlib is not installed" in (tmp_path / "a" / "summary.md").read_text()
        pytest.skip("the plot extra (matplotlib) is not installed: checked the note instead")
    paths = write_sweep(sweep, tmp_path / "a") + write_selection(sel, tmp_path / "b")
    for png in (tmp_path / "a" / "heatmap.png", tmp_path / "b" / "equity.png"):
        assert png in paths and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![heat map](heatmap.png)" in (tmp_path / "a" / "summary.md").read_text()
    with pytest.raises(ParameterError, match="exists"):
        write_sweep(sweep, tmp_path / "a")


def test_cscv_ranks_a_config_that_never_traded_as_sharpe_zero():
    rng = np.random.default_rng(3)
    losers = rng.normal(-1.0, 1.0, size=(32, 4))
    m = np.hstack([losers, np.zeros((32, 1))])          # the flat column is the best in every split
    res = cscv_pbo(m, 4)
    assert res.pbo == 0.0 and np.all(res.is_perf == 0.0)
    from clusterlob.sweep.tasks import pooled_sharpe
    assert pooled_sharpe(10, 0.0, 0.0) == 0.0 and math.isnan(pooled_sharpe(1, 1.0, 1.0))


def test_per_config_aggregates_pool_the_days_of_a_fit_per_day(tape5):
    grid = {"strategy": {"skew_ticks": [5.0, 50.0], "half_spread_bps": [0.0]}, "fit": {"train_days": 1},
            "features": {"window": 20}}
    res = run_sweep(tape5, grid, "2024-05-02:2024-05-03")
    by = res.by_config()
    assert len(by) == 2 and all(r["days"] == 2 for r in by)
    for r in by:
        rows = [x for x in res.rows if x["config"] == r["config"]]
        assert {x["model_name"] for x in rows} == {"fit-2024-05-02", "fit-2024-05-03"}
        assert math.isclose(r["pnl_total"], sum(x["pnl_total"] for x in rows), abs_tol=1e-9)
        assert r["minutes"] == sum(x["minutes"] for x in rows) and r["fills"] == sum(x["fills"] for x in rows)


# -- found by the type check ---------------------------------------------------------------------

def test_a_clusters_task_without_a_model_is_a_one_line_error(tmp_path):
    # was a TypeError from load_model(None), after reading the cache metadata
    from clusterlob.features import FeatureSettings
    from clusterlob.sweep.tasks import ReplayTask, run_replay_task
    task = ReplayTask(str(DEFAULT_TAPE), str(tmp_path), FeatureSettings(), "2024-05-02", "key", None, "",
                      "clusters", StrategyConfig())
    with pytest.raises(ParameterError, match='2024-05-02: signal "clusters" needs a model file'):
        run_replay_task(task)


def test_a_model_spec_without_a_fit_has_a_dict_form():
    # was an AttributeError (None.to_dict()) for ModelSpec() and any spec built without files or fit
    from clusterlob.sweep.grid import ModelSpec
    d = ModelSpec().to_dict()
    assert d["fit"] is None and d["train_days"] == 1 and isinstance(d["features"], dict)


def test_outputs_name_the_currency_of_their_pnl(tmp_path):
    # a linear tape's PnL is in its quote asset; an inverse contract's in the coin
    from clusterlob.sweep.report import write_selection, write_sweep
    from clusterlob.tape import Instrument, read_tape, write_tape
    plain = read_tape(DEFAULT_TAPE)
    inverse = tmp_path / "inverse"
    write_tape(dataclasses.replace(plain, instrument=Instrument(
        "binance-delivery", "BTCUSD_PERP", plain.instrument.tick_size, 1.0, 100.0, True)), inverse)
    grid = {"strategy": {"skew_ticks": [10.0]}, "fit": {"train_days": 1}}
    for tape, currency in ((DEFAULT_TAPE, "USDT"), (inverse, "BTC")):
        sweep = run_sweep(tape, grid, "2024-05-02")
        sel = run_selection(tape, grid, days="2024-05-01:2024-05-02")
        assert sweep.currency == sel.currency == currency
        out = tmp_path / currency
        write_sweep(sweep, out / "a")
        write_selection(sel, out / "b")
        assert pq.read_schema(out / "a" / "results.parquet").metadata[b"currency"] == currency.encode()
        assert pq.read_schema(out / "b" / "equity.parquet").metadata[b"currency"] == currency.encode()
        assert f"PnL in {currency}" in (out / "a" / "summary.md").read_text()
        assert f"(PnL in {currency})" in (out / "b" / "selection.md").read_text()
        assert json.loads((out / "a" / "summary.json").read_text())["currency"] == currency
