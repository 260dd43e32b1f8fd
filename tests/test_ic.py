"""Information coefficients: hand values, agreement with scipy.stats, windows, in vs out of sample."""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from clusterlob.errors import ParameterError
from clusterlob.signals.ic import _vs, below_its_error, ic_standard_error
from clusterlob.ic import (ConstantSeriesWarning, ICRow, ICTable, aggregate_ic, ic_table,
                           in_vs_out_of_sample, information_coefficient, plot_in_vs_out,
                           window_ic_tables)
from clusterlob.signals import ROLE_GROUPS, BucketGrid, bucket_signals


def test_hand_values():
    # x = 1,2,3,4 ; y = 2,1,4,3: centred (-1.5,-.5,.5,1.5).(-.5,-1.5,1.5,.5) = 3, both sums of squares 5
    v = information_coefficient([1, 2, 3, 4], [2, 1, 4, 3])
    assert v.pearson == pytest.approx(0.6, abs=1e-15)
    assert v.spearman == pytest.approx(0.6, abs=1e-15)
    assert v.n == 4
    # Spearman ignores the scale, Pearson does not
    v = information_coefficient([1, 2, 3, 100], [1, 2, 3, 4])
    assert v.spearman == pytest.approx(1.0, abs=1e-15) and v.pearson < 0.8
    # NaN pairs are dropped
    assert information_coefficient([1, np.nan, 2, 3, 4], [2, 9, 1, 4, 3]).n == 4


@pytest.mark.parametrize("seed", range(30))
def test_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    x = rng.standard_t(3, n) * 10 ** rng.uniform(-6, 6)
    y = 0.1 * x / np.std(x) + rng.normal(0, 1, n) * 10 ** rng.uniform(-6, 2)
    if seed % 3 == 0:                      # ties, as counts of trades give
        x = np.round(x / np.std(x) * 2)
        y = np.round(y / np.std(y) * 3)
    if np.all(x == x[0]) or np.all(y == y[0]):
        pytest.skip("drew a constant series")
    v = information_coefficient(x, y)
    assert abs(v.pearson - stats.pearsonr(x, y).statistic) <= 1e-12
    assert abs(v.spearman - stats.spearmanr(x, y).statistic) <= 1e-12


def test_constant_series_gives_nan_and_warns():
    with pytest.warns(ConstantSeriesWarning, match="signal is constant over 4 buckets"):
        v = information_coefficient([0, 0, 0, 0], [1, 2, 3, 4])
    assert math.isnan(v.pearson) and math.isnan(v.spearman) and v.n == 4
    with pytest.warns(ConstantSeriesWarning, match="target is constant"):
        information_coefficient([1, 2, 3], [5, 5, 5])


def test_too_few_buckets_is_an_error():
    with pytest.raises(ParameterError, match=r"at least 3 usable buckets .* got 2 of 4"):
        information_coefficient([1, 2, np.nan, 4], [1, 2, 3, np.nan])
    with pytest.raises(ParameterError, match="1-d of one length"):
        information_coefficient([1, 2, 3], [1, 2])


def _signals(seed=0, days=3, bucket_us=300_000_000):
    """Random flow where the directional group's flow moves the next bucket's mid."""
    rng = np.random.default_rng(seed)
    grid = BucketGrid.for_days([f"2024-05-0{d + 1}" for d in range(days)], bucket_us)
    n = grid.n_buckets
    per = 30
    ts = np.repeat(grid.starts_us, per) + rng.integers(0, bucket_us, n * per)
    side = rng.choice(np.array([-1, 1], np.int8), n * per)
    amount = rng.exponential(1.0, n * per)
    labels = rng.integers(0, 3, n * per).astype(np.int8)
    flow = np.bincount((ts - grid.start_us) // bucket_us, weights=side * amount * (labels == 0), minlength=n)
    log_mid = np.log(60000) + np.cumsum(np.r_[0, 2e-4 * flow[:-1]] + rng.normal(0, 1e-3, n))
    book_ts = grid.starts_us + bucket_us - 1
    return bucket_signals(ts, side, amount, labels, book_ts, np.exp(log_mid), grid, ROLE_GROUPS)


def test_ic_table_rows_and_benchmark():
    s = _signals()
    t = ic_table(s, horizons=(1, 2), label="3 days")
    assert len(t.rows) == 2 * 2 * 4
    r_all = t.get("all", "size", 1)
    r_dir = t.get("directional", "size", 1)
    frnb = s.frnb()
    assert r_dir.pearson == pytest.approx(stats.pearsonr(s.ofi("directional")[:-1], frnb[:-1]).statistic, abs=1e-12)
    assert r_dir.n_buckets == s.grid.n_buckets - 1
    assert r_dir.vs_benchmark_pearson_pct == pytest.approx(100 * (r_dir.pearson - r_all.pearson) / abs(r_all.pearson))
    assert math.isnan(r_all.vs_benchmark_pearson_pct)
    # the planted group leads; the others carry nothing at horizon 1
    assert r_dir.pearson > 0.3 and r_dir.pearson > r_all.pearson > t.get("passive", "size", 1).pearson
    d = t.to_dict()
    assert d["label"] == "3 days" and d["rows"][0]["group"] == "all"
    with pytest.raises(ParameterError, match="`horizons` must be integers >= 1"):
        ic_table(s, horizons=(0,))
    with pytest.raises(ParameterError, match="`weightings` must be among"):
        ic_table(s, weightings=("volume",))


def test_day_windows_and_aggregate():
    s = _signals(days=4)
    tables, skipped = window_ic_tables(s, horizons=(1,))
    assert [t.label for t in tables] == ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]
    assert not skipped
    assert tables[0].get("all", "size", 1).n_buckets == 288
    agg = aggregate_ic(tables)
    row = agg.get("directional", "size", 1, "pearson")
    values = np.array([t.get("directional", "size", 1).pearson for t in tables])
    assert row.n_windows == 4
    assert row.mean == pytest.approx(values.mean(), abs=1e-15)
    assert row.std == pytest.approx(values.std(ddof=1), abs=1e-15)
    assert row.t_stat == pytest.approx(values.mean() / (values.std(ddof=1) / 2.0), abs=1e-12)
    assert row.share_positive == np.mean(values > 0)


def _table(label, values, n=100):
    rows = tuple(ICRow(g, "size", 1, v, v / 2, n, math.nan, math.nan) for g, v in values.items())
    return ICTable(label, rows, 300.0)


def test_aggregate_by_hand():
    tables = [_table("d1", {"all": 0.1, "x": -0.2}), _table("d2", {"all": 0.3, "x": np.nan}),
              _table("d3", {"all": -0.1, "x": 0.4})]
    agg = aggregate_ic(tables)
    a = agg.get("all", "size", 1)
    assert (a.n_windows, a.share_positive) == (3, 2 / 3)
    assert a.mean == pytest.approx(0.1) and a.std == pytest.approx(0.2)
    assert a.t_stat == pytest.approx(0.1 / (0.2 / math.sqrt(3)))
    x = agg.get("x", "size", 1)          # the NaN window is left out
    assert x.n_windows == 2 and x.mean == pytest.approx(0.1) and x.share_positive == 0.5
    assert agg.get("x", "size", 1, "spearman").mean == pytest.approx(0.05)
    one = aggregate_ic(tables[:1]).get("all", "size", 1)
    assert one.n_windows == 1 and math.isnan(one.std) and math.isnan(one.t_stat)
    with pytest.raises(ParameterError, match="at least one ICTable"):
        aggregate_ic([])


def test_in_vs_out_of_sample_by_hand(tmp_path):
    ins = _table("2024-05-01..2024-05-07", {"all": 0.05, "x": 0.08}, n=2016)
    oos = [_table("2024-05-08", {"all": 0.01, "x": 0.02}), _table("2024-05-09", {"all": 0.03, "x": -0.04})]
    # over 100 buckets an IS IC of 0.08 is below its standard error (0.10): no ratio
    noisy = [r for r in in_vs_out_of_sample(_table("is", {"all": 0.05, "x": 0.08}), oos).rows if r.group == "x"][0]
    assert math.isnan(noisy.ratio_pearson) and noisy.in_sample_buckets == 100
    t = in_vs_out_of_sample(ins, oos)
    x = [r for r in t.rows if r.group == "x"][0]
    assert x.in_sample_pearson == 0.08 and x.oos_pearson_mean == pytest.approx(-0.01)
    assert x.oos_pearson_std == pytest.approx(np.std([0.02, -0.04], ddof=1))
    assert x.ratio_pearson == pytest.approx(-0.125) and x.oos_windows == 2
    assert x.ratio_spearman == pytest.approx(-0.125)
    assert t.to_dict()["out_of_sample"] == ["2024-05-08", "2024-05-09"]
    drew = plot_in_vs_out(t, tmp_path / "p.png")
    try:
        import matplotlib  # noqa: F401
        assert drew and (tmp_path / "p.png").stat().st_size > 1000
    except ImportError:
        assert drew is False and not (tmp_path / "p.png").exists()


def test_windows_with_too_few_buckets_are_skipped():
    s = _signals(days=2)
    windows = [("ok", slice(0, 288)), ("tiny", slice(288, 290))]
    tables, skipped = window_ic_tables(s, windows, horizons=(1,))
    assert [t.label for t in tables] == ["ok"]
    assert skipped[0][0] == "tiny" and "at least 3 usable buckets" in skipped[0][1]


def test_constant_group_in_a_table_is_nan():
    s = _signals()
    s.ofi_size[2] = 0.0            # the opportunistic group never traded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = ic_table(s, horizons=(1,), weightings=("size",))
    assert math.isnan(t.get("opportunistic", "size", 1).pearson)
    assert any(issubclass(w.category, ConstantSeriesWarning) for w in caught)


def test_ratio_against_noise_is_not_a_percentage():
    assert ic_standard_error(0.0, 102) == pytest.approx(0.1)
    assert ic_standard_error(0.6, 66) == pytest.approx(0.1)
    assert math.isnan(ic_standard_error(0.5, 2))
    assert below_its_error(0.05, 102) and not below_its_error(0.2, 102) and below_its_error(math.nan, 500)
    # a benchmark IC of 0.002 over 288 buckets (SE 0.059): no "vs benchmark +3370%"
    assert math.isnan(_vs(0.07, 0.002, 288))
    assert _vs(0.3, 0.2, 2016) == pytest.approx(50.0)
