"""Every table-like result converts to a pyarrow.Table in one call (``to_arrow()``): the columns,
their dtypes and row counts, and values equal to the result's own arrays."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pyarrow as pa
import pytest

from clusterlob import read_tape
from clusterlob.cluster import centroid_table, centroids_to_arrow, feature_importance, label_trades
from clusterlob.cluster.compare import compare_tapes
from clusterlob.features import FEATURE_NAMES, FeatureSettings, build_features
from clusterlob.replay import DEFAULT_TAPE, EquitySeries, Fills, run_pipeline
from clusterlob.signals.ic import ICAggregateRow, ICRow, InOutRow
from clusterlob.signals.study import ICSettings, run_ic_study
from clusterlob.signals.timeframes import TakerResult
from clusterlob.walkforward import WalkForwardSettings, run_walkforward


def _same(column: pa.ChunkedArray, values) -> None:
    np.testing.assert_array_equal(column.to_numpy(zero_copy_only=False), np.asarray(values))


@pytest.fixture(scope="module")
def run():
    return run_pipeline(DEFAULT_TAPE)


@pytest.fixture(scope="module")
def study():
    return run_ic_study(DEFAULT_TAPE, group_by="agent", in_sample="2024-05-01",
                        settings=ICSettings(timeframes_min=(30,)))


def test_fills_and_equity(run):
    fills, equity = run.result.fills, run.result.equity
    assert len(fills) > 0
    for result, cls in ((fills, Fills), (equity, EquitySeries)):
        table = result.to_arrow()
        names = [f.name for f in fields(cls)]
        assert table.column_names == names and table.num_rows == len(result)
        for name in names:
            values = getattr(result, name)
            assert table.schema.field(name).type == pa.from_numpy_dtype(values.dtype)
            _same(table.column(name), values)
    assert fills.to_arrow().schema.field("side").type == pa.int8()
    assert fills.to_arrow().schema.field("ts_us").type == pa.int64()
    # the exchange's columns: the fill's reason and queue ahead, the funding paid
    assert fills.to_arrow().schema.field("reason").type == pa.int8()
    assert "queue_ahead" in fills.to_arrow().column_names and "funding" in equity.to_arrow().column_names


def test_results_built_without_the_exchange_columns_convert_too():
    z = np.zeros(2)
    fills = Fills(np.array([3, -1]), np.array([1, 2]), np.array([1, -1], np.int8), z, z, z, z, z, z)
    table = fills.to_arrow()
    _same(table.column("reason"), [-1, -1])
    assert np.isnan(table.column("queue_ahead").to_numpy()).all()
    equity = EquitySeries(np.array([0, 1]), z, z, z, z, z, z, z)
    _same(equity.to_arrow().column("funding"), [0.0, 0.0])


def test_features_and_labels(run):
    tape = read_tape(DEFAULT_TAPE, "2024-05-01")
    f = build_features(tape, FeatureSettings())
    table = f.to_arrow()
    assert table.column_names == (["trade_index"] + [f"raw_{n}" for n in FEATURE_NAMES]
                                  + [f"z_{n}" for n in FEATURE_NAMES] + ["valid"])
    assert table.num_rows == len(f)
    assert table.schema.field("trade_index").type == pa.int64()
    assert table.schema.field("valid").type == pa.bool_()
    assert table.schema.field("z_sbs").type == pa.float64()
    _same(table.column("trade_index"), f.trade_index)
    _same(table.column("valid"), f.valid)
    for j, name in enumerate(FEATURE_NAMES):
        _same(table.column(f"raw_{name}"), f.raw[:, j])
        _same(table.column(f"z_{name}"), f.z[:, j])       # NaN warm-up rows stay NaN, not null
    assert table.column("z_v_rel").null_count == 0 and np.isnan(f.z[:, 0]).any()
    assert table.schema.metadata[b"settings_key"] == f.settings.key().encode()

    labels = label_trades(tape, run.model)
    lt = labels.to_arrow()
    assert lt.column_names == ["cluster", "role"] and lt.num_rows == len(tape.trades)
    assert lt.schema.field("cluster").type == pa.int8() and lt.schema.field("role").type == pa.int8()
    _same(lt.column("cluster"), labels.cluster)
    _same(lt.column("role"), labels.role)


def test_signal_tables(study):
    pooled = study.pooled.to_arrow()
    assert pooled.column_names == [f.name for f in fields(ICRow)]
    assert pooled.num_rows == len(study.pooled.rows) > 0
    assert pooled.schema.field("horizon").type == pa.int64()
    assert pooled.schema.field("pearson").type == pa.float64()
    _same(pooled.column("pearson"), [r.pearson for r in study.pooled.rows])
    _same(pooled.column("group"), [r.group for r in study.pooled.rows])
    assert pooled.schema.metadata[b"label"] == study.pooled.label.encode()

    agg = study.aggregate.to_arrow()
    assert agg.column_names == [f.name for f in fields(ICAggregateRow)]
    assert agg.num_rows == len(study.aggregate.rows)
    _same(agg.column("t_stat"), [r.t_stat for r in study.aggregate.rows])

    in_out = study.in_out.to_arrow()
    assert in_out.column_names == [f.name for f in fields(InOutRow)]
    assert in_out.num_rows == len(study.in_out.rows)
    _same(in_out.column("ratio_pearson"), [r.ratio_pearson for r in study.in_out.rows])

    taker = study.timeframes.to_arrow()
    assert taker.column_names == [f.name for f in fields(TakerResult)]
    assert taker.num_rows == len(study.timeframes.rows)
    assert taker.schema.field("biased").type == pa.bool_()
    _same(taker.column("net_return_pct"), [r.net_return_pct for r in study.timeframes.rows])

    sig = study.signals
    st = sig.to_arrow()
    assert st.num_rows == sig.grid.n_buckets
    assert st.column_names[:3] == ["bucket_start_us", "covered", "mid_close"]
    _same(st.column("bucket_start_us"), sig.grid.starts_us)
    for i, name in enumerate(sig.group_names):
        _same(st.column(f"ofi_size_{name}"), sig.ofi_size[i])
        _same(st.column(f"ofi_count_{name}"), sig.ofi_count[i])


def test_cluster_tables(run):
    rows = centroid_table(run.model)
    table = centroids_to_arrow(rows)
    assert table.num_rows == run.model.k
    assert table.column_names == (["cluster", "role", "count", "share"] + [f"z_{n}" for n in FEATURE_NAMES]
                                  + ["directional_score", "opportunistic_score", "interpretation"])
    for j, name in enumerate(FEATURE_NAMES):
        _same(table.column(f"z_{name}"), run.model.centers_z[:, j])
    _same(table.column("count"), run.model.counts)

    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 6))
    labels = np.repeat(np.arange(3), 100)
    z[labels == 1, 2] += 3.0
    imp = feature_importance(z, labels, 3)
    it = imp.to_arrow()
    assert it.column_names == ["feature", "rank", "share", "r2", "f_ratio", "between_ss", "within_ss"]
    assert it.num_rows == 6
    _same(it.column("share"), imp.share)
    ranked = it.sort_by("rank").column("feature").to_pylist()
    assert tuple(ranked) == imp.ranking and ranked[0] == FEATURE_NAMES[2]


def test_comparison_table():
    c = compare_tapes(DEFAULT_TAPE, DEFAULT_TAPE, FeatureSettings(), days_a="2024-05-01", days_b="2024-05-02",
                      k=3, seed=0)
    table = c.to_arrow()
    rows = c.activity_rows()
    assert table.column_names == ["metric", "a", "b", "a_over_b"] and table.num_rows == len(rows)
    assert table.schema.field("a").type == pa.float64()
    _same(table.column("a"), [float(r[1]) for r in rows])
    assert table.column("metric").to_pylist() == [r[0] for r in rows]


def test_walkforward_tables(tmp_path):
    wf = run_walkforward(DEFAULT_TAPE, tmp_path / "wf", FeatureSettings(),
                         WalkForwardSettings(train_days=1, test_days=1))
    assert len(wf.fitted) == 1
    ic = wf.ic_to_arrow()
    window = wf.fitted[0]
    assert ic.column_names == ["window", "test_days"] + [f.name for f in fields(ICRow)]
    assert ic.num_rows == len(window.ic.rows)
    _same(ic.column("spearman"), [r.spearman for r in window.ic.rows])
    eq = wf.equity_to_arrow()
    assert eq.num_rows == wf.equity_times_us.shape[0]
    assert eq.column_names == ["bucket_start_us"] + [f"equity_{g}" for g in wf.equity]
    for g, v in wf.equity.items():
        _same(eq.column(f"equity_{g}"), v)
    st = wf.stability_to_arrow()
    assert st.num_rows == len(wf.stability) and "adjusted_rand" in st.column_names


def test_the_package_imports_neither_pandas_nor_polars():
    code = ("import sys, clusterlob, clusterlob.replay, clusterlob.features, clusterlob.cluster, "
            "clusterlob.signals, clusterlob.walkforward; "
            "print(sorted(m for m in ('pandas', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_inventory_experiment_tables():
    from clusterlob.replay.inventory import PolicyStats, SeedRun, SyntheticMarket, run_experiment
    exp = run_experiment(SyntheticMarket(n_events=3_000, mean_regime_events=300), seeds=[4, 9], thetas=[2.0, 5.0])
    stats = exp.to_arrow()
    assert stats.column_names == [f.name for f in fields(PolicyStats)] and stats.num_rows == 4
    assert stats.column("policy").to_pylist() == ["fixed", "dynamic", "fixed", "dynamic"]
    _same(stats.column("pnl_mean"), [getattr(r, p).pnl_mean for r in exp.results for p in ("fixed", "dynamic")])
    runs = exp.runs_to_arrow()
    assert runs.column_names == [f.name for f in fields(SeedRun)] and runs.num_rows == 8
    assert runs.schema.field("fills").type == pa.int64()
    _same(runs.column("pnl_total"), [s.pnl_total for r in exp.results for s in r.runs])
