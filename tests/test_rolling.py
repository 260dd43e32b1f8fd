"""Rolling z-scores: the Cython kernel against a plain NumPy reference (the specification)."""
import json

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.features import FEATURE_NAMES, FeatureSettings, RollingState, rolling_zscore
from twins.features import rolling_zscore as twin_rolling_zscore

F = len(FEATURE_NAMES)


def counts_matrix(counts):
    keys = ("warmup_rows", "nonfinite_raw", "zero_std_rows", "clipped")
    return np.array([[counts[k][name] for k in keys] for name in FEATURE_NAMES])


def random_raw(rng, m, pattern):
    """Seeded test columns: each column gets its own flavour of trouble."""
    cols = []
    for f in range(F):
        kind = pattern if pattern != "mixed" else ("normal", "offset", "runs", "nan", "heavy", "burst")[f]
        if kind == "normal":
            x = rng.normal(size=m)
        elif kind == "offset":           # prices near 60000 moving by ticks
            x = 60000.0 + np.cumsum(rng.choice([-0.1, 0.0, 0.1], size=m))
        elif kind == "runs":             # constant stretches shorter and longer than the window
            lengths = rng.integers(1, 250, size=m)
            levels = rng.normal(60000.0, 5.0, size=m)
            x = np.repeat(levels, lengths)[:m]
        elif kind == "nan":
            x = rng.normal(3.0, 2.0, size=m)
            x[rng.random(m) < 0.2] = np.nan
            x[: m // 10] = np.nan
        elif kind == "heavy":            # t_m-like: seconds, heavy tailed, a few inf
            x = rng.exponential(1.0, size=m) ** 3
            x[rng.random(m) < 0.01] = np.inf
        else:                            # bursts of variance then near-constant values
            scale = np.where((np.arange(m) // 150) % 2 == 0, 1e4, 1e-3)
            x = 1.0 + scale * rng.normal(size=m)
        cols.append(x)
    return np.column_stack(cols)


def test_hand_window_of_three():
    # column 0: 1, 2, 3, 4, 10 with W=3 -> windows (1,2,3) (2,3,4) (3,4,10)
    raw = np.zeros((5, F))
    raw[:, 0] = [1, 2, 3, 4, 10]
    raw[:, 1] = [5, 5, 5, 5, 5]           # constant: z = 0 once the window is full
    raw[:, 2] = [1, np.nan, 2, 3, 4]      # NaN skipped: windows (1,2,3) (2,3,4)
    z, state, counts = rolling_zscore(raw, FeatureSettings(window=3, z_clip=5.0))
    assert np.isnan(z[:2, 0]).all()
    np.testing.assert_allclose(z[2:, 0], [1.0, 1.0, (10 - 17 / 3) / np.std([3, 4, 10], ddof=1)])
    np.testing.assert_array_equal(z[:, 1], [np.nan, np.nan, 0, 0, 0])
    np.testing.assert_allclose(z[:, 2], [np.nan, np.nan, np.nan, 1.0, 1.0])
    assert counts["warmup_rows"]["v_rel"] == 2 and counts["warmup_rows"]["obs"] == 2
    assert counts["nonfinite_raw"]["obs"] == 1 and counts["nonfinite_raw"]["total"] == 1
    assert counts["zero_std_rows"]["sbs"] == 3
    assert counts["valid_rows"] == 2          # rows 3 and 4 have all six z finite
    assert state.n_seen.tolist() == [5, 5, 4, 5, 5, 5]


def test_clip_counts():
    raw = np.zeros((4, F))
    raw[:, 0] = [0, 0, 0, 1000]             # W=4: z of 1000 is 1.5 ... use W=4 with clip 1
    z, _, counts = rolling_zscore(raw, FeatureSettings(window=4, z_clip=1.0))
    assert z[3, 0] == 1.0                   # (1000-250)/500 = 1.5 -> clipped to 1
    assert counts["clipped"]["v_rel"] == 1 and counts["clipped"]["total"] == 1


@pytest.mark.parametrize("window", [2, 3, 5, 17, 100])
@pytest.mark.parametrize("pattern", ["mixed", "offset", "runs", "burst"])
def test_kernel_matches_reference(window, pattern):
    for seed in range(3):
        rng = np.random.default_rng([window, seed, len(pattern)])
        raw = random_raw(rng, 1500, pattern)
        settings = FeatureSettings(window=window, z_clip=4.0)
        z, _, counts = rolling_zscore(raw, settings)
        z_ref, counts_ref = twin_rolling_zscore(raw, window, 4.0)
        np.testing.assert_array_equal(np.isnan(z), np.isnan(z_ref))
        np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(counts_matrix(counts), counts_ref)


def test_long_series_stays_accurate():
    # 120k rows of prices near 60000 with constant stretches and bursts: no drift
    rng = np.random.default_rng(7)
    m, window = 120_000, 100
    raw = np.column_stack([
        60000.0 + np.cumsum(rng.choice([-0.1, 0.0, 0.0, 0.1], size=m)),
        np.repeat(rng.normal(60000.0, 1.0, size=m), rng.integers(1, 400, size=m))[:m],
        1.0 + np.where((np.arange(m) // 1000) % 2 == 0, 1e5, 1e-5) * rng.normal(size=m),
        rng.exponential(size=m) ** 4,
        rng.normal(size=m) * 1e-3 + 1e3,
        rng.normal(size=m),
    ])
    z, _, counts = rolling_zscore(raw, FeatureSettings(window=window, z_clip=5.0))
    z_ref, counts_ref = twin_rolling_zscore(raw, window, 5.0)
    np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(counts_matrix(counts), counts_ref)


@pytest.mark.parametrize("window", [2, 7, 100])
def test_chunks_with_state_equal_one_pass(window):
    rng = np.random.default_rng(window)
    raw = random_raw(rng, 3000, "mixed")
    settings = FeatureSettings(window=window)
    z_all, state_all, counts_all = rolling_zscore(raw, settings)
    cuts = [0, 1, 57, 58, 1000, 2999, 3000]
    state, parts = None, []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        z, state, _ = rolling_zscore(raw[lo:hi], settings, state)
        state = RollingState.from_dict(json.loads(json.dumps(state.to_dict())))
        parts.append(z)
    np.testing.assert_array_equal(np.concatenate(parts), z_all)   # exact, bit for bit
    assert state.to_dict() == state_all.to_dict()


def test_state_is_not_modified_and_must_match_settings():
    raw = np.random.default_rng(1).normal(size=(50, F))
    settings = FeatureSettings(window=10)
    _, state, _ = rolling_zscore(raw, settings)
    before = json.dumps(state.to_dict())
    rolling_zscore(raw, settings, state)
    assert json.dumps(state.to_dict()) == before
    with pytest.raises(ParameterError, match="other feature settings"):
        rolling_zscore(raw, FeatureSettings(window=11), state)


def test_bad_shape_raises():
    with pytest.raises(ParameterError, match=r"`raw` must have shape \(m, 6\)"):
        rolling_zscore(np.zeros((5, 4)))


def test_two_threads_give_the_same_answer(monkeypatch):
    import clusterlob.features.build as features

    rng = np.random.default_rng(3)
    raw = random_raw(rng, 5000, "mixed")
    settings = FeatureSettings(window=20)
    z1, state1, counts1 = rolling_zscore(raw, settings)
    monkeypatch.setattr(features, "_THREADED_ROWS", 100)
    z2, state2, counts2 = rolling_zscore(raw, settings)
    np.testing.assert_array_equal(z1, z2)
    assert counts1 == counts2 and state1.to_dict() == state2.to_dict()
