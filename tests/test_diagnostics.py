"""Feature diagnostics, the feature selection, t_queue (kernel vs a plain-Python twin) and the
stability of a fit (agreement between starts, bootstrap)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from cluster_fixtures import make_tape
from clusterlob.cluster.__main__ import main
from clusterlob.cluster.diagnostics import (RawMoments, bootstrap_fit, check_bootstrap, feature_diagnostics,
                                            start_agreement)
from clusterlob.cluster.fit import FitSettings
from clusterlob.cluster.model import fit_model, load_model
from clusterlob.errors import ParameterError
from clusterlob.features import (ALL_FEATURES, FEATURE_NAMES, FeatureSettings, RollingState, build_features,
                                 compute_raw_features)
from clusterlob.tape import Book, Tape, Trades, read_manifest, read_tape, write_tape
from test_features import hand_tape, random_tape

NAN = np.nan
_NO = None


# -- t_queue: a plain-Python twin of the kernel -------------------------------------------------

def reference_t_queue(tape, settings):
    """t_queue of every feature row, written as a loop over snapshots and trades (the spec)."""
    col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
    t_tr, t_bk = getattr(tape.trades, col), getattr(tape.book, col)
    tr_order = np.argsort(t_tr, kind="stable")
    bk_order = np.argsort(t_bk, kind="stable")
    book = tape.book
    two = book.bid_px.shape[1] > 1
    # per side: [p1, q1, p2, q2], [g1, g2]
    state = {+1: [NAN] * 4, -1: [NAN] * 4}
    grow = {+1: [_NO, _NO], -1: [_NO, _NO]}
    seen_any = False

    def pass_side(sign, p1, q1, p2, q2, t, has_prev):
        P1, Q1, P2, Q2 = state[sign]
        G1, G2 = grow[sign]
        if np.isnan(p1):
            return
        if has_prev and not np.isnan(P1):
            if p1 == P1:
                g1 = t if q1 > Q1 else G1
            elif sign * (p1 - P1) > 0:
                g1 = t
            elif p1 == P2:
                g1 = t if q1 > Q2 else G2
            else:
                g1 = t
            if np.isnan(p2):
                g2 = _NO
            elif p2 == P2:
                g2 = t if q2 > Q2 else G2
            elif p2 == P1:
                g2 = t if q2 > Q1 else G1
            else:
                g2 = t
        else:
            g1 = g2 = _NO
        grow[sign] = [g1, g2]
        state[sign] = [p1, q1, p2, q2]

    out = []
    j = 0
    strict = settings.asof == "strict"
    for r in tr_order:
        if tape.trades.side[r] == 0:
            continue
        t = t_tr[r]
        while j < len(bk_order) and (t_bk[bk_order[j]] < t or (not strict and t_bk[bk_order[j]] == t)):
            b = bk_order[j]
            has_prev = not (np.isnan(state[+1][0]) and np.isnan(state[-1][0]))
            pass_side(+1, book.bid_px[b, 0], book.bid_sz[b, 0], book.bid_px[b, 1] if two else NAN,
                      book.bid_sz[b, 1] if two else NAN, int(t_bk[b]), has_prev)
            pass_side(-1, book.ask_px[b, 0], book.ask_sz[b, 0], book.ask_px[b, 1] if two else NAN,
                      book.ask_sz[b, 1] if two else NAN, int(t_bk[b]), has_prev)
            seen_any = True
            j += 1
        if not seen_any:
            continue
        g = grow[-1][0] if tape.trades.side[r] > 0 else grow[+1][0]   # a buy consumes the asks
        out.append(NAN if g is None else (t - g) * 1e-6)
    return np.array(out)


def test_t_queue_on_the_hand_tape():
    # S0 t=1 first snapshot: unknown.  S1 t=2: bid same price, size 1 -> 1.5 (grew at 2); ask best
    # 100.1 -> 100.2 worsened to the old level 2 (size 2 <= 4: keeps level 2's time, unknown).
    # S2 t=3: bid improved to 100.1 (new queue at 3); ask same price, size 2 -> 1 (no growth).
    _, raw, _ = compute_raw_features(hand_tape(), FeatureSettings(levels=2, features=("v_rel", "t_queue")))
    np.testing.assert_array_equal(raw[:2, 1], [NAN, NAN])        # T1, T2 see S0 only
    np.testing.assert_allclose(raw[2:, 1], [NAN, 2.0])   # T4 buy (t=4): asks unknown; T5 sell (t=5): bids grew at 3
    np.testing.assert_allclose(raw[:, 0], [2 / 4, 1 / 4, 0.5 / 1.5, 4 / 1.5])


@pytest.mark.parametrize("asof", ["strict", "at_or_before"])
@pytest.mark.parametrize("levels", [1, 3])
def test_t_queue_kernel_matches_the_python_twin(asof, levels):
    for seed in range(3):
        tape = random_tape([seed, 99], n_trades=2000, n_book=800, levels=levels)
        settings = FeatureSettings(levels=levels, asof=asof, features=ALL_FEATURES)
        _, raw, _ = compute_raw_features(tape, settings)
        ref = reference_t_queue(tape, settings)
        np.testing.assert_array_equal(np.isnan(raw[:, 6]), np.isnan(ref))
        np.testing.assert_allclose(raw[:, 6], ref, rtol=1e-12, atol=0)
        assert np.isfinite(raw[:, 6]).mean() > 0.5


def test_default_six_features_are_bit_identical_with_a_selection():
    tape = random_tape(4)
    default = build_features(tape, FeatureSettings(window=20))
    every = build_features(tape, FeatureSettings(window=20, features=ALL_FEATURES))
    np.testing.assert_array_equal(every.raw[:, :6], default.raw)
    np.testing.assert_array_equal(every.z[:, :6], default.z)
    picked = build_features(tape, FeatureSettings(window=20, features=("t_age", "sbs")))
    np.testing.assert_array_equal(picked.raw, default.raw[:, [5, 1]])
    assert picked.z.shape[1] == 2 and picked.to_dict()["feature_names"] == ["t_age", "sbs"]
    # the default set keeps the settings' dict, key and therefore old caches and models
    assert "features" not in FeatureSettings().to_dict()
    assert FeatureSettings(features=list(FEATURE_NAMES)).key() == FeatureSettings().key()


def test_t_queue_day_by_day_equals_one_pass(tmp_path):
    tape = random_tape(6, n_trades=4000, n_book=1500, days=3)
    write_tape(tape, tmp_path / "tape")
    days = [d["date"] for d in read_manifest(tmp_path / "tape")["days"]]
    settings = FeatureSettings(window=30, features=("sbs", "obs", "t_queue"))
    whole = build_features(read_tape(tmp_path / "tape"), settings)
    state, raws = None, []
    for day in days:
        f = build_features(read_tape(tmp_path / "tape", [day]), settings, state)
        state = RollingState.from_dict(json.loads(json.dumps(f.state.to_dict())))
        raws.append(f.raw)
    np.testing.assert_array_equal(np.concatenate(raws), whole.raw)
    assert state.to_dict() == whole.state.to_dict()


@pytest.mark.parametrize("features, fragment", [
    (("v_rel", "nope"), "unknown feature 'nope'"),
    (("sbs", "obs", "sbs"), "'sbs' is named more than once"),
    (("sbs",), "at least two features"),
    ("sbs,obs", "must be a list"),
])
def test_bad_feature_selection(features, fragment):
    with pytest.raises(ParameterError, match=fragment):
        FeatureSettings(features=features)


# -- diagnostics -----------------------------------------------------------------------------------

def test_raw_moments_match_numpy_in_parts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 4)) * [1, 10, 1e-3, 5] + [0, 1e4, 3, -2]
    x[:, 3] = 2 * x[:, 0] + 1e-4 * rng.standard_normal(3000)       # a near-copy of column 0
    m = RawMoments(4)
    for part in np.array_split(x, 7):
        m.add(part)
    np.testing.assert_allclose(m.correlation(), np.corrcoef(x.T), atol=1e-10)
    diag = feature_diagnostics(m, ("a", "b", "c", "d"), {"c": 12, "total": 12}, 3000)
    assert [(a, b) for a, b, _ in diag.high_pairs] == [("a", "d")]
    warnings = diag.warnings()
    assert "features a and d" in warnings[0] and "--features" in warnings[0]
    assert "c 12 (0.4%)" in warnings[1]
    const = RawMoments(2)
    const.add(np.column_stack([np.ones(10), np.arange(10.0)]))
    assert np.isnan(const.correlation()[0, 1])


def test_start_agreement_and_bootstrap_on_clear_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[3, -3, 0], [-3, 3, 0], [0, 0, 3]], dtype=float)
    z = np.concatenate([c + 0.3 * rng.standard_normal((300, 3)) for c in centres])
    rng.shuffle(z)
    settings = FeatureSettings(features=("sbs", "obs", "t_m"))
    model, _ = fit_model(z, settings, k=3, seed=0)
    assert model.fit["n_init"] == 3 and len(model.fit["init_centers"]) == 3
    agree = start_agreement(z, model)
    assert agree.ari[agree.kept] == 1.0 and min(agree.ari) > 0.99
    boot = bootstrap_fit(z, [300, 300, 300], model, 5, seed=2)
    assert boot.unit == "day" and boot.n_units == 3 and boot.swapped == 0
    assert boot.center_std.max() < 0.2
    np.testing.assert_allclose(boot.center_mean, model.centers_z, atol=0.2)
    assert "stayed on the same clusters" in boot.summary()
    one_day = bootstrap_fit(z, [900], model, 3, seed=2)
    assert one_day.unit == "block" and one_day.n_units == 20
    with pytest.raises(ParameterError, match="`--bootstrap` must be an integer >= 2"):
        check_bootstrap(1)


def test_bootstrap_says_when_roles_swap():
    # two clusters whose sbs - obs scores are nearly equal: the directional role flips between them
    rng = np.random.default_rng(3)
    z = np.concatenate([[0.3, 0.0, 2.0] + 0.8 * rng.standard_normal((200, 3)),
                        [0.0, 0.3, -2.0] + 0.8 * rng.standard_normal((200, 3)),
                        [0.0, 0.0, 0.0] + 0.8 * rng.standard_normal((200, 3))])
    model, _ = fit_model(z, FeatureSettings(features=("sbs", "obs", "t_m")), k=3, seed=0, margin=0.0)
    boot = bootstrap_fit(z, [100] * 6, model, 12, seed=0)
    assert boot.swapped > 0 and "ROLES SWAP" in boot.summary()


def test_model_records_and_checks_the_selection(tmp_path):
    rng = np.random.default_rng(0)
    settings = FeatureSettings(features=("v_rel", "sbs", "obs", "t_queue"))
    model, _ = fit_model(rng.standard_normal((200, 4)), settings, k=2, seed=0)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    doc = json.loads(path.read_text())
    assert doc["feature_names"] == ["v_rel", "sbs", "obs", "t_queue"]
    assert doc["feature_settings"]["features"] == ["v_rel", "sbs", "obs", "t_queue"]
    assert load_model(path, settings=settings).feature_names == settings.features
    with pytest.raises(ParameterError, match="features="):
        load_model(path, settings=FeatureSettings())
    doc["feature_names"] = ["v_rel", "sbs", "obs", "t_age"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ParameterError, match="do not match the feature settings"):
        load_model(path)


def test_fit_settings_default_three_starts():
    assert FitSettings().n_init == 3


# -- the command ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_day_tape(tmp_path_factory):
    day1 = make_tape(n_snapshots=400, seed=10, day="2024-05-01")
    day2 = make_tape(n_snapshots=400, seed=11, day="2024-05-02")
    tape = Tape(day1.instrument, Trades.concat([day1.trades, day2.trades]),
                Book.concat([day1.book, day2.book]), ["2024-05-01", "2024-05-02"])
    path = tmp_path_factory.mktemp("tape") / "t"
    write_tape(tape, path)
    return path


def test_cli_reports_diagnostics_and_stability(two_day_tape, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(two_day_tape), "--out", str(out), "--json", "--window", "20",
                 "--features", "v_rel,sbs,obs,t_m,t_queue", "--bootstrap", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    diag = doc["feature_diagnostics"]
    assert diag["feature_names"] == ["v_rel", "sbs", "obs", "t_m", "t_queue"]
    assert len(diag["raw_correlation"]) == 5 and diag["raw_correlation"][0][0] == 1.0
    assert set(diag["zero_std_rows"]) == {"v_rel", "sbs", "obs", "t_m", "t_queue", "total"}
    assert doc["start_agreement"]["kept_start"] in (0, 1, 2) and len(doc["start_agreement"]["ari_vs_kept"]) == 3
    assert doc["bootstrap"]["n"] == 3 and doc["bootstrap"]["unit"] == "day"
    assert list(doc["clusters"][0]["centroid_z"]) == ["v_rel", "sbs", "obs", "t_m", "t_queue"]
    md = (out / "centroids.md").read_text()
    assert "## Feature diagnostics" in md and "## Stability" in md and "bootstrap: 3 refits" in md
    assert load_model(out / "model.json").feature_names == ("v_rel", "sbs", "obs", "t_m", "t_queue")


@pytest.mark.parametrize("argv, message", [
    (["--features", "v_rel,bogus"], "error: --features 'v_rel,bogus': `features`: unknown feature 'bogus' (known: v_rel, sbs, obs, spread, t_m, t_age, t_queue)"),
    (["--features", "sbs,sbs"], "error: --features 'sbs,sbs': `features`: 'sbs' is named more than once"),
    (["--features", "sbs"], "error: --features 'sbs': `features` must name at least two features, got ['sbs']"),
    (["--bootstrap", "1"], "error: `--bootstrap` must be an integer >= 2 (refits on resampled days), got 1"),
])
def test_cli_one_line_errors_as_a_user_runs_it(two_day_tape, tmp_path, argv, message):
    proc = subprocess.run([sys.executable, "-m", "clusterlob.cluster", str(two_day_tape), "--out",
                           str(tmp_path / "o")] + argv, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == message


def test_features_command_takes_the_selection(two_day_tape):
    proc = subprocess.run([sys.executable, "-m", "clusterlob.features", str(two_day_tape), "--window", "20",
                           "--features", "t_m,t_age,t_queue", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["feature_names"] == ["t_m", "t_age", "t_queue"]
    assert set(doc["counts"]["zero_std_rows"]) == {"t_m", "t_age", "t_queue", "total"}
