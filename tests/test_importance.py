"""Feature importance: hand-computed fixture, two-pass reference over seeded cases, planted features."""
import json
import warnings

import numpy as np
import pytest

from compare_fixtures import planted_tape
from twins.importance import moments_update, two_pass
from clusterlob import _core
from clusterlob.errors import ParameterError
from clusterlob.features import FEATURE_NAMES, FeatureSettings, build_features
from clusterlob.cluster.importance import IMPORTANCE_HEADER, feature_importance, importance_for_centers
from clusterlob.cluster.kmeans import assign_clusters
from clusterlob.cluster.model import fit_model
from clusterlob.report import markdown_table, write_json


def test_hand_computed_fixture():
    # clusters {0,2} and {10,12} on feature a; feature b only varies inside cluster 1
    z = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 1.0], [12.0, -1.0]])
    fi = feature_importance(z, np.array([0, 0, 1, 1]), 2, feature_names=("a", "b"))
    # grand mean (6, 0); cluster means (1, 0), (11, 0)
    np.testing.assert_allclose(fi.between_ss, [100.0, 0.0])     # 2*25 + 2*25
    np.testing.assert_allclose(fi.within_ss, [4.0, 2.0])        # 1+1+1+1, 0+0+1+1
    np.testing.assert_allclose(fi.share, [1.0, 0.0])
    np.testing.assert_allclose(fi.r2, [100 / 104, 0.0])
    np.testing.assert_allclose(fi.f_ratio, [(100 / 1) / (4 / 2), 0.0])   # k'=2, n=4
    np.testing.assert_allclose(fi.cluster_means, [[1.0, 0.0], [11.0, 0.0]])
    assert fi.ranking == ("a", "b") and fi.counts.tolist() == [2, 2] and fi.n_rows == 4
    assert fi.top(1) == (("a", 1.0),) and fi.summary(1) == "a 100%"


@pytest.mark.parametrize("seed", range(8))
def test_matches_the_two_pass_two_pass(seed):
    rng = np.random.default_rng(seed)
    n, f, k = int(rng.integers(1, 3000)), int(rng.integers(1, 8)), int(rng.integers(1, 6))
    offset = [0.0, 1e6][seed % 2]     # a large common offset: the one-pass merge must not cancel
    labels = rng.integers(0, k, n)
    if k > 2 and seed % 3 == 0:
        labels[labels == 1] = 0        # an empty cluster
    z = offset + rng.standard_normal((n, f)) + rng.standard_normal((k, f))[labels] * 2
    between, within = two_pass(z, labels, k)
    names = tuple(f"x{j}" for j in range(f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # k=1 or n=1: degenerate by design
        for chunk in (3, 7, 256, n):
            fi = feature_importance(z, labels, k, feature_names=names, chunk_rows=chunk)
            np.testing.assert_allclose(fi.between_ss, between, rtol=1e-7, atol=1e-6 * n)
            np.testing.assert_allclose(fi.within_ss, within, rtol=1e-7, atol=1e-6 * n)
            assert fi.counts.tolist() == np.bincount(labels, minlength=k).tolist()
    if between.sum() > 0:
        np.testing.assert_allclose(fi.share.sum(), 1.0)
        assert list(fi.order) == list(np.argsort(-between, kind="stable"))


@pytest.mark.parametrize("seed", range(10))
def test_kernel_matches_its_numpy_twin(seed):
    """_core.cluster_moments_update against tests/twins/importance.moments_update, block by block."""
    rng = np.random.default_rng(1000 + seed)
    k, f = int(rng.integers(1, 7)), int(rng.integers(1, 8))
    state_fast = (np.zeros(k, np.int64), np.zeros((k, f)), np.zeros((k, f)))
    state_slow = (np.zeros(k, np.int64), np.zeros((k, f)), np.zeros((k, f)))
    for block in range(int(rng.integers(1, 6))):
        m = int(rng.integers(0, 400))
        z = rng.normal(rng.normal(0, 10), rng.uniform(0.01, 5), (m, f))
        labels = rng.integers(0, k, m).astype(np.int64)
        if m and rng.random() < 0.3:
            z[int(rng.integers(0, m)), int(rng.integers(0, f))] = [np.nan, np.inf, -np.inf][block % 3]
        bad_fast = _core.cluster_moments_update(np.ascontiguousarray(z), labels, *state_fast)
        bad_slow = moments_update(z, labels, *state_slow)
        assert bad_fast == bad_slow
        np.testing.assert_array_equal(state_fast[0], state_slow[0])
        np.testing.assert_allclose(state_fast[1], state_slow[1], rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(state_fast[2], state_slow[2], rtol=1e-9, atol=1e-9)


def test_kernel_hand_computed():
    z = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 20.0]])
    count, mean, m2 = np.zeros(2, np.int64), np.zeros((2, 2)), np.zeros((2, 2))
    assert _core.cluster_moments_update(z, np.array([0, 0, 1], np.int64), count, mean, m2) == -1
    assert count.tolist() == [2, 1]
    np.testing.assert_allclose(mean, [[2.0, 10.0], [5.0, 20.0]])
    np.testing.assert_allclose(m2, [[2.0, 0.0], [0.0, 0.0]])      # (1-2)^2 + (3-2)^2


@pytest.mark.parametrize("planted", range(len(FEATURE_NAMES)))
def test_planted_feature_ranks_first_in_a_z_matrix(planted):
    """Clusters differ only in one feature: it ranks first, with true and with K-Means labels."""
    rng = np.random.default_rng(100 + planted)
    n = 4000
    truth = rng.integers(0, 2, n)
    z = rng.standard_normal((n, 6))
    z[:, planted] = np.where(truth == 1, 1.5, -1.5) + 0.3 * rng.standard_normal(n)
    fi_true = feature_importance(z, truth, 2)
    assert fi_true.ranking[0] == FEATURE_NAMES[planted] and fi_true.share[planted] > 0.95
    _, labels = fit_model(z, FeatureSettings(), k=2, n_init=4, seed=planted)
    fi = feature_importance(z, labels, 2)
    assert fi.ranking[0] == FEATURE_NAMES[planted] and fi.share[planted] > 0.9
    assert fi.f_ratio[planted] > 10 * np.delete(fi.f_ratio, planted).max()


@pytest.mark.parametrize("k", [2, 3])
def test_planted_feature_ranks_first_on_a_generated_tape(k):
    """Through the whole pipeline: tape -> features -> K-Means -> importance."""
    tape, big = planted_tape(seed=k)
    feats = build_features(tape, FeatureSettings(window=50))
    z = feats.z[feats.valid]
    model, labels = fit_model(z, feats.settings, k=k, seed=0)
    fi = feature_importance(z, labels, model.k)
    assert fi.ranking[0] == "v_rel"
    assert fi.share[FEATURE_NAMES.index("v_rel")] > 0.5
    # the planted groups are what the clusters found (k=2: one cluster per group)
    if k == 2:
        group = big[feats.trade_index[feats.valid]]
        agree = (labels == labels[np.argmax(group)]) == group
        assert agree.mean() > 0.99


def test_importance_for_centers_labels_by_nearest_centre():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((5000, 6))
    centers = rng.standard_normal((4, 6))
    labels, _, _ = assign_clusters(z, centers)
    a = importance_for_centers(z, centers, chunk_rows=333)
    b = feature_importance(z, labels, 4)
    np.testing.assert_allclose(a.between_ss, b.between_ss)
    np.testing.assert_allclose(a.within_ss, b.within_ss)
    assert a.counts.tolist() == b.counts.tolist() and a.order == b.order


def test_reads_a_memmap_chunk_by_chunk(tmp_path):
    rng = np.random.default_rng(6)
    z = rng.standard_normal((3000, 6))
    labels = rng.integers(0, 3, 3000)
    mm = np.lib.format.open_memmap(tmp_path / "z.npy", mode="w+", dtype=np.float64, shape=z.shape)
    mm[:] = z
    mm.flush()
    fi = feature_importance(np.load(tmp_path / "z.npy", mmap_mode="r"), labels, 3, chunk_rows=500)
    np.testing.assert_allclose(fi.between_ss, two_pass(z, labels, 3)[0])


def test_degenerate_cases_warn_and_give_nan():
    z = np.random.default_rng(0).standard_normal((50, 6))
    with pytest.warns(RuntimeWarning, match="no between-cluster separation"):
        fi = feature_importance(z, np.zeros(50, dtype=int), 3)     # one non-empty cluster of 3
    assert np.isnan(fi.share).all() and np.isnan(fi.f_ratio).all()
    assert fi.summary() == "no separation (all cluster means equal)"
    assert np.isnan(fi.cluster_means[1:]).all() and fi.counts.tolist() == [50, 0, 0]
    # constant within every cluster but not across: F is infinite, r2 is 1
    z2 = np.array([[0.0, 1.0], [0.0, -1.0], [3.0, 1.0], [3.0, -1.0]])
    fi2 = feature_importance(z2, np.array([0, 0, 1, 1]), feature_names=("a", "b"))
    assert np.isinf(fi2.f_ratio[0]) and fi2.r2[0] == 1.0 and fi2.k == 2
    assert fi2.markdown_rows()[0][4] == "inf"


def test_report_forms(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 600)
    z = rng.standard_normal((600, 6))
    z[:, 2] += 2 * labels
    fi = feature_importance(z, labels, 3)
    d = fi.to_dict()
    assert d["ranking"][0] == "obs" and d["features"][0]["rank"] == 1 and d["k"] == 3
    assert sum(f["share"] for f in d["features"]) == pytest.approx(1.0)
    assert set(d["cluster_means"]) == set(FEATURE_NAMES)
    doc = json.loads(write_json(tmp_path / "fi.json", d).read_text())
    assert doc["features"][0]["feature"] == "obs"
    rows = fi.markdown_rows()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[0][1] == "obs"
    table = markdown_table(list(IMPORTANCE_HEADER), rows)
    assert table.splitlines()[0].startswith("| rank | feature | share_pct")
    assert "obs" in repr(fi)


@pytest.mark.parametrize("call, message", [
    (lambda z, l: feature_importance(z[:, :5], l, 3), "`z` must have shape (n, 6)"),
    (lambda z, l: feature_importance(z, l[:-1], 3), "`labels` must have shape (10,)"),
    (lambda z, l: feature_importance(z, l.astype(float), 3), "`labels` must be integers"),
    (lambda z, l: feature_importance(z, l + 3, 3), "`labels` must be in 0..2 (k=3), got 5"),
    (lambda z, l: feature_importance(z, l - 1, 3), "`labels` must be in 0..2 (k=3), got -1"),
    (lambda z, l: feature_importance(z, l, 0), "`k` must be an integer >= 1, got 0"),
    (lambda z, l: feature_importance(z, l, 3, chunk_rows=0), "`chunk_rows` must be an integer >= 1, got 0"),
    (lambda z, l: feature_importance(z[:0], l[:0], 3), "`z` has no rows"),
    (lambda z, l: importance_for_centers(z, np.zeros((2, 5))), "`centers_z` must have shape (k, 6)"),
])
def test_errors_name_the_parameter(call, message):
    z = np.random.default_rng(0).standard_normal((10, 6))
    labels = np.arange(10) % 3
    with pytest.raises(ParameterError) as info:
        call(z, labels)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_non_finite_rows_are_refused_with_their_position():
    z = np.zeros((1000, 6))
    z[777, 3] = np.nan
    with pytest.raises(ParameterError, match=r"first at row 777"):
        feature_importance(z, np.zeros(1000, dtype=int), 1, chunk_rows=100)


def test_centroid_report_ranks_the_separating_features(tmp_path, capsys):
    """Needs the small cluster.py patch of issue 12 (write_cluster_outputs(..., importance=))."""
    import inspect

    from cluster_fixtures import make_tape
    from clusterlob.cluster import write_cluster_outputs
    from clusterlob.cluster.__main__ import main as cluster_main
    from clusterlob.tape import write_tape
    if "importance" not in inspect.signature(write_cluster_outputs).parameters:
        pytest.skip("the centroid report does not take the importance yet (cluster.py patch of issue 12)")
    write_tape(make_tape(n_snapshots=400, seed=10), tmp_path / "tape")
    out = tmp_path / "out"
    assert cluster_main([str(tmp_path / "tape"), "--out", str(out), "--window", "20", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["feature_importance"]
    doc = json.loads((out / "centroids.json").read_text())
    report = doc["feature_importance"]
    assert report == printed and [f["rank"] for f in report["features"]] == [1, 2, 3, 4, 5, 6]
    assert sum(f["share"] for f in report["features"]) == pytest.approx(1.0)
    assert report["counts"] == [c["count"] for c in doc["clusters"]]
    md = (out / "centroids.md").read_text()
    assert "## Which features separate the clusters" in md and f"| 1 | {report['ranking'][0]} |" in md
