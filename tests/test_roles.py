"""Alignment of clusters to roles, label stability and the adjusted Rand index."""
import itertools

import numpy as np
import pytest

from cluster_fixtures import LOG_CENTERS
from clusterlob.errors import ParameterError
from clusterlob.cluster.roles import (DIRECTIONAL, OPPORTUNISTIC, PASSIVE, ROLE_NAMES, UNASSIGNED,
                              adjusted_rand_index, align_by_rule, align_to_reference,
                              label_stability, role_name)


def test_constants_unchanged():
    assert (DIRECTIONAL, OPPORTUNISTIC, PASSIVE, UNASSIGNED) == (0, 1, 2, -1)
    assert ROLE_NAMES == ("directional", "opportunistic", "passive")
    assert [role_name(c) for c in (-1, 0, 1, 2)] == ["unassigned", "directional", "opportunistic", "passive"]


def test_rule_alignment_on_the_logs_table():
    # cluster 0: obs - sbs = -0.12, cluster 1: -2.60, cluster 2: +1.56
    a = align_by_rule(LOG_CENTERS)
    assert a.roles.tolist() == [PASSIVE, OPPORTUNISTIC, DIRECTIONAL]
    np.testing.assert_allclose(a.directional_score, [-0.12, -2.60, 1.56])
    np.testing.assert_allclose(a.opportunistic_score, [0.12, 2.60, -1.56])
    assert a.cluster_of(DIRECTIONAL) == 2 and a.cluster_of(OPPORTUNISTIC) == 1
    assert a.unassigned_roles == ()
    assert a.to_dict()["roles"] == ["passive", "opportunistic", "directional"]


def test_rule_alignment_is_invariant_to_cluster_order():
    for perm in itertools.permutations(range(3)):
        a = align_by_rule(LOG_CENTERS[list(perm)])
        np.testing.assert_array_equal(a.roles, align_by_rule(LOG_CENTERS).roles[list(perm)])


def test_margin_leaves_roles_unassigned():
    # quiet regime: every |z_sbs - z_obs| below 0.25
    quiet = np.array([[0, 0.10, 0.00, 0, 1, 0], [0, 0.0, 0.20, 0, -1, 0], [0, 0.05, 0.05, 0, 0, 0]], float)
    a = align_by_rule(quiet)
    assert a.roles.tolist() == [PASSIVE] * 3
    assert a.unassigned_roles == ("directional", "opportunistic")
    assert a.cluster_of(DIRECTIONAL) == -1
    # directional clears 0.25 exactly at the margin, opportunistic does not
    edge = np.array([[0, 0.0, 0.25, 0, 0, 0], [0, 0.2, 0.0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], float)
    a = align_by_rule(edge, margin=0.25)
    assert a.roles.tolist() == [DIRECTIONAL, PASSIVE, PASSIVE]
    assert a.unassigned_roles == ("opportunistic",)
    assert align_by_rule(edge, margin=0.1).roles.tolist() == [DIRECTIONAL, OPPORTUNISTIC, PASSIVE]


def test_rule_alignment_two_clusters_and_one_cluster():
    a = align_by_rule(LOG_CENTERS[1:])
    assert a.roles.tolist() == [OPPORTUNISTIC, DIRECTIONAL]
    assert a.unassigned_roles == ("passive",)
    single = align_by_rule(LOG_CENTERS[2:])
    assert single.roles.tolist() == [DIRECTIONAL]
    assert "opportunistic" in single.unassigned_roles


def test_rule_alignment_uses_named_columns():
    names = ("obs", "sbs", "v_rel", "spread", "t_m", "t_age")
    swapped = LOG_CENTERS[:, [2, 1, 0, 3, 4, 5]]
    assert align_by_rule(swapped, names).roles.tolist() == [PASSIVE, OPPORTUNISTIC, DIRECTIONAL]
    with pytest.raises(ParameterError, match="must contain 'sbs'"):
        align_by_rule(np.zeros((3, 2)), ("a", "b"))
    with pytest.raises(ParameterError, match="must be finite"):
        align_by_rule(np.full((3, 6), np.nan))


def test_distance_alignment_inverts_a_permutation():
    rng = np.random.default_rng(0)
    reference_roles = np.array([PASSIVE, OPPORTUNISTIC, DIRECTIONAL], np.int8)
    for perm in itertools.permutations(range(3)):
        noise = rng.normal(0, 0.05, (3, 6))
        new = LOG_CENTERS[list(perm)] + noise
        al = align_to_reference(new, LOG_CENTERS, reference_roles)
        assert al.reference_of.tolist() == list(perm)
        np.testing.assert_allclose(al.distances, np.sqrt((noise ** 2).sum(axis=1)))
        assert al.roles.tolist() == reference_roles[list(perm)].tolist()
        assert al.total_distance == pytest.approx(al.distances.sum())


def test_distance_alignment_is_optimal_against_brute_force():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        new, refc = rng.normal(0, 1, (4, 6)), rng.normal(0, 1, (4, 6))
        cost = np.sqrt(((new[:, None] - refc[None]) ** 2).sum(axis=2))
        best = min(sum(cost[i, p[i]] for i in range(4)) for p in itertools.permutations(range(4)))
        assert align_to_reference(new, refc).total_distance == pytest.approx(best, rel=1e-12)


def test_distance_alignment_rectangular_and_max_distance():
    al = align_to_reference(LOG_CENTERS, LOG_CENTERS[:2], [PASSIVE, OPPORTUNISTIC])
    assert al.reference_of.tolist() == [0, 1, -1]
    assert al.roles.tolist() == [PASSIVE, OPPORTUNISTIC, UNASSIGNED]
    assert np.isnan(al.distances[2])
    far = LOG_CENTERS + np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 3.0, 0], [0, 0, 0, 0, 0, 0]])
    al = align_to_reference(far, LOG_CENTERS, [PASSIVE, OPPORTUNISTIC, DIRECTIONAL], max_distance=1.0)
    assert al.reference_of.tolist() == [0, -1, 2]
    assert al.roles.tolist() == [PASSIVE, UNASSIGNED, DIRECTIONAL]
    assert al.distances[1] == pytest.approx(3.0)
    assert al.to_dict()["roles"] == ["passive", "unassigned", "directional"]
    with pytest.raises(ParameterError, match="`reference_roles` must have shape"):
        align_to_reference(LOG_CENTERS, LOG_CENTERS, [0, 1])


def test_label_stability_by_hand():
    a = np.array([0, 0, 1, 2, 2, -1, -1, 1], np.int8)
    b = np.array([0, 1, 1, 2, -1, -1, 2, 1], np.int8)
    # compared: rows with a role in a or b = all but row 5 (7 rows); agree: rows 0, 2, 3, 7
    s = label_stability(a, b)
    assert s.n_compared == 7
    assert s.share_agree == pytest.approx(4 / 7)
    assert s.confusion[0, 1] == 1 and s.confusion[2, 3] == 1 and s.confusion[3, 2] == 1
    assert s.confusion.sum() == 7
    s = label_stability(a, b, valid=np.ones(8, bool))
    assert s.n_compared == 8 and s.share_agree == pytest.approx(5 / 8)
    assert np.isnan(label_stability([-1, -1], [-1, -1]).share_agree)
    with pytest.raises(ParameterError, match="codes outside"):
        label_stability([0, 5], [0, 1])


def test_adjusted_rand_index_by_hand():
    # contingency a={0,0,1,1} vs b={0,0,1,2}: index pairs 1, row pairs 2, column pairs 1,
    # all pairs 6 -> expected 1/3, max 3/2, ARI = (1 - 1/3) / (3/2 - 1/3) = 4/7
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 3, 3]) == 1.0
    assert adjusted_rand_index([0, 0, 0], [1, 1, 1]) == 1.0


def _ari_by_pairs(a, b):
    """Reference: count agreeing pairs one by one."""
    n = len(a)
    same_a = np.array([a[i] == a[j] for i, j in itertools.combinations(range(n), 2)])
    same_b = np.array([b[i] == b[j] for i, j in itertools.combinations(range(n), 2)])
    index = float((same_a & same_b).sum())
    pairs = n * (n - 1) / 2
    expected = same_a.sum() * same_b.sum() / pairs
    maximum = (same_a.sum() + same_b.sum()) / 2
    return (index - expected) / (maximum - expected)


def test_adjusted_rand_index_matches_pair_counting():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, 3, 40), rng.integers(0, 4, 40)
        b[:20] = a[:20]
        assert adjusted_rand_index(a, b) == pytest.approx(_ari_by_pairs(a, b), rel=1e-12)
    rng = np.random.default_rng(99)
    assert abs(adjusted_rand_index(rng.integers(0, 3, 20000), rng.integers(0, 3, 20000))) < 0.01
