"""The fitted model: fit, JSON round trip and validation, per-trade labels."""
import json

import numpy as np
import pytest

from cluster_fixtures import LOG_CENTERS, make_tape, z_blobs
from clusterlob import __version__
from clusterlob.errors import ParameterError
from clusterlob.features import FEATURE_NAMES, FeatureSettings, build_features
from clusterlob.cluster.model import ClusterModel, fit_model, label_trades, load_model, save_model
from clusterlob.cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE, UNASSIGNED
from clusterlob.tape import Tape, Trades, Book

SETTINGS = FeatureSettings(window=20)


@pytest.fixture(scope="module")
def log_model():
    z, truth = z_blobs(400, LOG_CENTERS, 0.3, 1)
    model, labels = fit_model(z, SETTINGS, k=3, n_init=2, seed=3)
    return model, labels, z, truth


def test_fit_model_recovers_the_logs_roles(log_model):
    model, labels, z, truth = log_model
    # truth 0 passive, 1 opportunistic, 2 directional (LOG_CENTERS order)
    planted_role = np.array([PASSIVE, OPPORTUNISTIC, DIRECTIONAL])[truth]
    np.testing.assert_array_equal(model.roles[labels], planted_role)
    assert model.counts.tolist() == [400, 400, 400]
    assert model.seed == 3 and model.fit["n_init"] == 2 and model.package_version == __version__
    assert model.inertia == pytest.approx(((z - model.centers_z[labels]) ** 2).sum())
    assert "directional" in repr(model)


def test_json_round_trip(tmp_path, log_model):
    model = log_model[0]
    path = save_model(model, tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "clusterlob-model" and doc["feature_names"] == list(FEATURE_NAMES)
    assert doc["feature_settings"]["window"] == 20 and doc["feature_settings"]["levels"] == 5
    assert set(doc["roles"]) == {"directional", "opportunistic", "passive"}
    back = load_model(path, settings=SETTINGS)
    np.testing.assert_array_equal(back.centers_z, model.centers_z)     # exact: repr floats
    np.testing.assert_array_equal(back.roles, model.roles)
    assert back.to_dict() == model.to_dict()
    assert not list(tmp_path.glob(".*tmp*"))                           # temp file renamed away


def test_save_refuses_to_overwrite(tmp_path, log_model):
    save_model(log_model[0], tmp_path / "m.json")
    with pytest.raises(ParameterError, match="exists"):
        save_model(log_model[0], tmp_path / "m.json")
    save_model(log_model[0], tmp_path / "m.json", overwrite=True)


def test_load_refuses_other_settings(tmp_path, log_model):
    path = save_model(log_model[0], tmp_path / "m.json")
    with pytest.raises(ParameterError) as info:
        load_model(path, settings=FeatureSettings(window=50, convention="aggressor"))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == (f"model file {path} was fit with features window=20, convention='paper' "
                   f"but the features use window=50, convention='aggressor'")


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d.update(feature_names=["v_rel", "sbs", "obs", "spread", "t_m", "other"]), "unknown feature 'other'"),
    (lambda d: d.update(feature_names=["sbs", "v_rel", "obs", "spread", "t_m", "t_age"]), "do not match"),
    (lambda d: d.update(format="pickle"), "`format` must be 'clusterlob-model'"),
    (lambda d: d.update(version=9), "model version 9 is not supported"),
    (lambda d: d["centers_z"].pop(), "`k` must equal the number of centres (2), got 3"),
    (lambda d: (d["centers_z"].pop(), d.pop("k")), "`role_codes` must have 2 entries"),
    (lambda d: d["centers_z"][0].pop(), "`centers_z` must be rectangular"),
    (lambda d: [row.pop() for row in d["centers_z"]], "`centers_z` must be (k, 6)"),
    (lambda d: d.update(role_codes=[0, 1, 7]), "`role_codes` must hold integers in -1..2, got 7"),
    # the hand edits that gave tracebacks, and more of the same kind
    (lambda d: d.update(inertia="abc"), "`inertia` must be a finite number >= 0, got 'abc'"),
    (lambda d: d.update(feature_names=3), "`feature_names` must be a list of names, got 3"),
    (lambda d: d.update(fit=[1, 2]), "`fit` must be an object, got [1, 2]"),
    (lambda d: d.update(n_iter=None), "`n_iter` must be an integer >= 0, got None"),
    (lambda d: d.update(source="x"), "`source` must be an object, got 'x'"),
    (lambda d: d["centers_z"][1].__setitem__(2, "1"), "`centers_z` must hold finite numbers, got '1'"),
    (lambda d: d["centers_z"][1].__setitem__(2, None), "`centers_z` must hold finite numbers, got None"),
    (lambda d: d.update(counts=[1, -2, 3]), "`counts` must hold integers >= 0, got -2"),
    (lambda d: d.update(counts=[1, 2 ** 70, 3]), "`counts` must hold integers >= 0"),
    (lambda d: d.update(converged="yes"), "`converged` must be true or false, got 'yes'"),
    (lambda d: d.update(seed=-1), "`seed` must be an integer >= 0, got -1"),
    (lambda d: d.update(alignment=[]), "`alignment` must be an object"),
    (lambda d: d["alignment"].update(margin=float("nan")), "`alignment.margin` must be a finite number"),
    (lambda d: d["fit"].update(n_init=0), "`fit.n_init` must be an integer >= 1, got 0"),
    (lambda d: d.update(feature_settings="x"), "`feature_settings` must be an object, got 'x'"),
    (lambda d: d.update(roles=["a", "b", "c"]), "do not match `role_codes`"),
    (lambda d: d["feature_settings"].update(levels=0), "`levels` must be an integer in 1..25, got 0"),
    (lambda d: d.pop("inertia"), "missing keys ['inertia']"),
])
def test_load_validates(tmp_path, log_model, edit, fragment):
    doc = log_model[0].to_dict()
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ParameterError) as info:
        load_model(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_missing_and_broken_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_model(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ParameterError, match="not valid JSON"):
        load_model(tmp_path / "x.json")


def _tape_model(tape):
    feats = build_features(tape, SETTINGS)
    model, labels = fit_model(feats.z[feats.valid], SETTINGS, k=3, seed=0, margin=0.0)
    return feats, model, labels


def test_label_trades_on_a_tape():
    tape = make_tape(n_snapshots=300, seed=2)
    feats, model, labels = _tape_model(tape)
    out = label_trades(tape, model)
    n = len(tape.trades)
    assert out.cluster.dtype == np.int8 and out.role.dtype == np.int8
    assert out.cluster.shape == (n,) and out.role.shape == (n,)
    # unknown-side trades and warm-up rows have no label
    assert (out.cluster[tape.trades.side == 0] == -1).all()
    assert (out.cluster >= 0).sum() == feats.counts["valid_rows"]
    # same labels as the fit, in tape row order
    np.testing.assert_array_equal(out.cluster[feats.trade_index[feats.valid]], labels)
    has = out.cluster >= 0
    np.testing.assert_array_equal(out.role[has], model.roles[out.cluster[has]])
    assert (out.role[~has] == UNASSIGNED).all()
    # margin 0 gives every role to some cluster
    assert sorted(model.roles.tolist()) == [DIRECTIONAL, OPPORTUNISTIC, PASSIVE]
    # a Features object gives the same arrays
    again = label_trades(feats, model)
    np.testing.assert_array_equal(again.cluster, out.cluster)
    assert again.state is None


def _take_day(tape, lo, hi):
    t, b = tape.trades, tape.book
    tm = (t.ts_local_us >= lo) & (t.ts_local_us < hi)
    bm = (b.ts_local_us >= lo) & (b.ts_local_us < hi)
    return Tape(tape.instrument, t.take(tm), b.take(bm), [])


def test_label_trades_day_by_day_equals_one_pass():
    from clusterlob.tape import US_PER_DAY
    day1 = make_tape(n_snapshots=200, seed=3, day="2024-05-01", start_offset_us=US_PER_DAY - 30_000_000)
    day2 = make_tape(n_snapshots=200, seed=4, day="2024-05-02")
    whole = Tape(day1.instrument, Trades.concat([day1.trades, day2.trades]),
                 Book.concat([day1.book, day2.book]), ["2024-05-01", "2024-05-02"])
    _, model, _ = _tape_model(whole)
    one = label_trades(whole, model)
    first = label_trades(day1, model)
    second = label_trades(day2, model, state=first.state)
    np.testing.assert_array_equal(np.concatenate([first.cluster, second.cluster]), one.cluster)
    np.testing.assert_array_equal(np.concatenate([first.role, second.role]), one.role)
    # without the state the second day starts with a new warm-up
    fresh = label_trades(day2, model)
    assert (fresh.cluster == -1).sum() > (second.cluster == -1).sum()


def test_label_trades_refuses_mismatched_features():
    tape = make_tape(n_snapshots=100, seed=5)
    _, model, _ = _tape_model(tape)
    other = build_features(tape, FeatureSettings(window=30))
    with pytest.raises(ParameterError, match="window=20 but the features use window=30"):
        label_trades(other, model)
    with pytest.raises(ParameterError, match="`source` must be a Tape or Features"):
        label_trades(np.zeros((3, 6)), model)
    with pytest.raises(ParameterError, match="`model` must be a ClusterModel"):
        label_trades(tape, {"centers_z": []})


def test_fit_model_validates():
    with pytest.raises(ParameterError, match=r"`z` must have shape \(n, 6\)"):
        fit_model(np.zeros((10, 5)), SETTINGS)
    with pytest.raises(ParameterError, match="`settings` must be a FeatureSettings"):
        fit_model(np.zeros((10, 6)), {"window": 20})
    with pytest.raises(ParameterError, match="`seed` must be an integer >= 0"):
        fit_model(np.zeros((10, 6)), SETTINGS, seed=None)
    assert isinstance(ClusterModel.from_dict(fit_model(np.eye(6), SETTINGS, k=2)[0].to_dict()), ClusterModel)
