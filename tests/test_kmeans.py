"""K-Means++: hand-computed fixtures, kernels vs the NumPy reference, optimality on small data."""

import numpy as np
import pytest

from twins import kmeans as ref
from cluster_fixtures import z_blobs
from clusterlob import _core
from clusterlob.errors import ParameterError
from clusterlob.cluster.kmeans import assign_clusters, kmeans, kmeans_plusplus
from clusterlob.cluster.roles import adjusted_rand_index

# Four points worked out by hand: two pairs one unit apart, the pairs four units apart.
#   p0 = (0, 0), p1 = (0, 1), p2 = (4, 0), p3 = (4, 1)
FOUR = np.array([[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0]])


def test_four_points_assignment_pass_by_hand():
    # centres c0 = (0, 0), c1 = (4, 1): squared distances
    #   p0: 0 | 17 -> 0    p1: 1 | 16 -> 0    p2: 16 | 1 -> 1    p3: 17 | 0 -> 1
    centers = np.array([[0.0, 0.0], [4.0, 1.0]])
    labels = np.full(4, -1, np.int32)
    sums, counts = np.zeros((2, 2)), np.zeros(2, np.int64)
    inertia, changed = _core.kmeans_lloyd_pass(FOUR, centers, labels, sums, counts)
    assert labels.tolist() == [0, 0, 1, 1]
    assert inertia == 0 + 1 + 1 + 0
    assert changed == 4
    assert sums.tolist() == [[0.0, 1.0], [8.0, 1.0]]
    assert counts.tolist() == [2, 2]
    # same centres again: nothing changes
    assert _core.kmeans_lloyd_pass(FOUR, centers, labels, sums, counts)[1] == 0


def test_four_points_seeding_by_hand():
    closest, cumulative = np.full(4, np.inf), np.zeros(4)
    # first centre p0: squared distances 0, 1, 16, 17
    assert _core.kmeans_seed_update(FOUR, FOUR[0], closest, cumulative) == 34.0
    assert closest.tolist() == [0.0, 1.0, 16.0, 17.0]
    assert cumulative.tolist() == [0.0, 1.0, 17.0, 34.0]
    # candidates p1, p2, p3 would lower the potential to 0+0+16+16, 0+1+0+1, 0+1+1+0
    out = np.zeros(3)
    _core.kmeans_seed_potentials(FOUR, FOUR[1:], closest, out)
    assert out.tolist() == [32.0, 2.0, 2.0]
    assert closest.tolist() == [0.0, 1.0, 16.0, 17.0]      # not modified
    assert _core.kmeans_seed_update(FOUR, FOUR[3], closest, cumulative) == 2.0
    assert closest.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert cumulative.tolist() == [0.0, 1.0, 2.0, 2.0]


def test_four_points_column_moments_by_hand():
    mean, sq_dev = np.zeros(2), np.zeros(2)
    # means (2, 0.5); squared deviations 4 * 4 = 16 and 4 * 0.25 = 1
    assert _core.kmeans_column_moments(FOUR, mean, sq_dev) == 0
    assert mean.tolist() == [2.0, 0.5] and sq_dev.tolist() == [16.0, 1.0]
    bad = FOUR.copy()
    bad[1, 1], bad[3, 0] = np.nan, -np.inf
    assert _core.kmeans_column_moments(bad, mean, sq_dev) == 2


def test_four_points_lloyd_by_hand():
    # from (0,0) and (4,0): partition {p0,p1},{p2,p3}, centres (0,0.5), (4,0.5), inertia 4 * 0.25
    res = kmeans(FOUR, 2, init=np.array([[0.0, 0.0], [4.0, 0.0]]), tol=0)
    assert res.labels.tolist() == [0, 0, 1, 1]
    assert res.centers.tolist() == [[0.0, 0.5], [4.0, 0.5]]
    assert res.inertia == 1.0
    assert res.converged and res.n_iter == 2   # second pass sees the same partition
    # K-Means++ finds that optimum from any seed (the other 2+2 split costs 16)
    for seed in range(20):
        assert kmeans(FOUR, 2, seed=seed).inertia == 1.0


def test_kernel_matches_reference_pass():
    for seed in range(25):
        rng = np.random.default_rng(seed)
        n, d, k = int(rng.integers(1, 300)), int(rng.integers(1, 8)), int(rng.integers(1, 7))
        X = rng.standard_normal((n, d)) * rng.uniform(0.1, 10)
        C = rng.standard_normal((k, d))
        labels = np.full(n, -1, np.int32)
        sums, counts = np.zeros((k, d)), np.zeros(k, np.int64)
        inertia, changed = _core.kmeans_lloyd_pass(X, C, labels, sums, counts)
        r_labels, r_inertia, r_sums, r_counts = ref.lloyd_pass(X, C)
        np.testing.assert_array_equal(labels, r_labels)
        np.testing.assert_allclose(inertia, r_inertia, rtol=1e-12)
        np.testing.assert_allclose(sums, r_sums, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(counts, r_counts)
        assert changed == n
        # the bounded-memory NumPy version used by the benchmark agrees too
        n_labels, n_inertia, n_sums, _ = ref.lloyd_pass_numpy(X, C, chunk_rows=37)
        np.testing.assert_array_equal(n_labels, r_labels)
        np.testing.assert_allclose(n_inertia, r_inertia, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(n_sums, r_sums, rtol=1e-12, atol=1e-12)


def test_kernel_ties_go_to_lowest_index():
    X = np.array([[0.5], [1.5]])
    labels = np.full(2, -1, np.int32)
    _core.kmeans_lloyd_pass(X, np.array([[0.0], [1.0], [2.0]]), labels, np.zeros((3, 1)), np.zeros(3, np.int64))
    assert labels.tolist() == [0, 1]


def test_seeding_kernels_match_reference():
    for seed in range(15):
        rng = np.random.default_rng(100 + seed)
        n = int(rng.integers(1, 300))
        X = rng.standard_normal((n, 6))
        closest = rng.uniform(0, 20, n)
        candidates = rng.standard_normal((int(rng.integers(1, 5)), 6))
        out = np.zeros(candidates.shape[0])
        _core.kmeans_seed_potentials(X, candidates, closest, out)
        expect = [ref.seed_potential(X, c, closest)[0] for c in candidates]
        np.testing.assert_allclose(out, expect, rtol=1e-12)
        total, lowered = ref.seed_potential(X, candidates[0], closest)
        work, cumulative = closest.copy(), np.zeros(n)
        assert _core.kmeans_seed_update(X, candidates[0], work, cumulative) == pytest.approx(total, rel=1e-12)
        np.testing.assert_allclose(work, lowered, rtol=1e-12)
        np.testing.assert_allclose(cumulative, np.cumsum(lowered), rtol=1e-12)
        mean, sq_dev = np.zeros(6), np.zeros(6)
        assert _core.kmeans_column_moments(X, mean, sq_dev) == 0
        r_mean, r_sq = ref.column_moments(X)
        np.testing.assert_allclose(mean, r_mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sq_dev, r_sq, rtol=1e-12)


def test_kmeans_matches_reference_loop():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 6))
        X, _ = z_blobs(int(rng.integers(20, 80)), rng.normal(0, 2, (k, 4)), 1.0, seed)
        res = kmeans(X, k, n_init=3, seed=seed)
        g = np.random.default_rng(seed)
        tol_abs = 1e-4 * X.var(axis=0).mean()
        best = None
        for _ in range(3):
            start, _ = ref.kmeans_plusplus(X, k, g, 2 + int(np.log(k)))
            out = ref.lloyd(X, start, 300, tol_abs)
            if best is None or out[2] < best[2]:
                best = out
        np.testing.assert_allclose(res.centers, best[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(res.labels, best[1])
        assert res.inertia == pytest.approx(best[2], rel=1e-10)


def test_plusplus_spreads_centres_and_is_seeded():
    X, truth = z_blobs(50, [[0, 0], [50, 0], [0, 50], [50, 50]], 0.5, 3)
    for seed in range(10):
        centers, idx = kmeans_plusplus(X, 4, seed=seed)
        assert sorted(truth[idx].tolist()) == [0, 1, 2, 3]   # one seed in every blob
        np.testing.assert_array_equal(centers, X[idx])
    a = kmeans_plusplus(X, 4, seed=np.random.default_rng(7))[1]
    b = kmeans_plusplus(X, 4, seed=7)[1]
    np.testing.assert_array_equal(a, b)


def test_separated_blobs_recovered_exactly_up_to_permutation():
    for seed in range(8):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 7))
        centers = 20.0 * np.eye(6)[:k] + rng.normal(0, 0.5, (k, 6))
        X, truth = z_blobs(int(rng.integers(30, 200)), centers, 1.0, seed)
        order = rng.permutation(truth.size)
        X, truth = X[order], truth[order]
        res = kmeans(X, k, n_init=2, seed=seed)
        table = np.zeros((k, k), int)
        np.add.at(table, (res.labels, truth), 1)
        assert ((table > 0).sum(axis=1) == 1).all() and ((table > 0).sum(axis=0) == 1).all()
        assert adjusted_rand_index(res.labels, truth) == 1.0


def _partitions(n, k):
    """All labelings of n items into exactly k non-empty groups (canonical: first use order)."""
    def rec(i, labels, used):
        if i == n:
            if used == k:
                yield list(labels)
            return
        for g in range(min(used + 1, k)):
            labels.append(g)
            yield from rec(i + 1, labels, max(used, g + 1))
            labels.pop()
    yield from rec(0, [], 0)


def _brute_force_inertia(X, k):
    best = np.inf
    for labels in _partitions(X.shape[0], k):
        labels = np.array(labels)
        cost = sum(((X[labels == g] - X[labels == g].mean(axis=0)) ** 2).sum() for g in range(k))
        best = min(best, cost)
    return best


def test_inertia_no_worse_than_brute_force_on_small_data():
    assert sum(1 for _ in _partitions(5, 2)) == 15          # Stirling S(5, 2)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        n, k = int(rng.integers(4, 9)), int(rng.integers(2, 4))
        X = rng.standard_normal((n, 2)) * [1.0, 3.0]
        optimum = _brute_force_inertia(X, k)
        res = kmeans(X, k, n_init=10, seed=seed, tol=0)
        assert res.inertia >= optimum - 1e-9               # nothing beats the optimum
        assert res.inertia <= optimum * (1 + 1e-9) + 1e-12  # and restarts reach it


def test_n_init_keeps_the_best_run():
    X, _ = z_blobs(60, np.random.default_rng(0).normal(0, 1, (5, 3)), 1.0, 0)
    res = kmeans(X, 5, n_init=6, seed=11)
    assert len(res.init_inertias) == 6
    assert res.fit_inertia == min(res.init_inertias)
    single = [kmeans(X, 5, n_init=1, seed=np.random.default_rng(s)).inertia for s in range(3)]
    assert res.inertia <= max(single)


def test_fit_sample_labels_every_row_reproducibly():
    X, truth = z_blobs(3000, 8.0 * np.eye(6)[:3], 1.0, 5)
    a = kmeans(X, 3, seed=4, fit_sample=500)
    b = kmeans(X, 3, seed=4, fit_sample=500)
    assert a.rows_fit == 500 and a.labels.shape == (9000,)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert adjusted_rand_index(a.labels, truth) > 0.99
    labels, inertia, counts = assign_clusters(X, a.centers)
    np.testing.assert_array_equal(labels, a.labels)
    assert inertia == pytest.approx(a.inertia, rel=1e-12)
    assert counts.sum() == 9000 and (counts == a.counts).all()
    full = kmeans(X, 3, seed=4, fit_sample=10 ** 6)    # larger than n: all rows
    assert full.rows_fit == 9000 and full.fit_inertia == full.inertia


def test_empty_cluster_is_relocated():
    X = np.array([[0.0], [0.1], [10.0], [10.1]])
    res = kmeans(X, 3, init=np.array([[0.0], [10.0], [1000.0]]), tol=0)
    assert (res.counts > 0).all()
    assert res.inertia < 0.02


def test_identical_rows_do_not_break():
    X = np.ones((10, 3))
    res = kmeans(X, 2, seed=0)
    assert res.inertia == 0.0 and res.labels.shape == (10,)


def test_result_to_dict_and_repr():
    res = kmeans(FOUR, 2, seed=0)
    d = res.to_dict()
    assert d["k"] == 2 and d["rows"] == 4 and d["inertia"] == 1.0 and "labels" not in d
    assert "KMeansResult(k=2" in repr(res)


@pytest.mark.parametrize("call, message", [
    (lambda: kmeans(np.array([[0.0, np.nan], [1.0, 1.0], [np.inf, 2.0]]), 2), "`X` has 2 rows with NaN or inf (first at row 0)"),
    (lambda: kmeans(FOUR, 5), "`k` must be <= the number of rows (4), got 5"),
    (lambda: kmeans(FOUR, 0), "`k` must be an integer >= 1, got 0"),
    (lambda: kmeans(FOUR, 2, n_init=0), "`n_init` must be an integer >= 1, got 0"),
    (lambda: kmeans(FOUR, 2, tol=-1.0), "`tol` must be a finite number >= 0, got -1.0"),
    (lambda: kmeans(FOUR, 2, seed=-3), "`seed` must be None, an integer >= 0 or a numpy Generator, got -3"),
    (lambda: kmeans(FOUR, 2, fit_sample=1), "`fit_sample` must be an integer >= 2, got 1"),
    (lambda: kmeans(np.zeros(4), 2), "`X` must be a 2-D (rows, features) array, got shape (4,)"),
    (lambda: kmeans(FOUR, 2, init=np.zeros((3, 2))), "`init` must have shape (2, 2), got (3, 2)"),
    (lambda: assign_clusters(FOUR, np.zeros((2, 3))), "`centers` must have 2 columns like `X`, got 3"),
])
def test_errors_are_one_line(call, message):
    with pytest.raises(ParameterError) as info:
        call()
    assert str(info.value) == message


def test_no_copy_of_float64_input():
    X = np.ascontiguousarray(np.random.default_rng(0).standard_normal((100, 6)))
    from clusterlob.cluster.kmeans import check_matrix
    assert check_matrix(X) is X
    assert not np.shares_memory(check_matrix(np.asfortranarray(X)), X)
