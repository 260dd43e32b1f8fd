"""FitSettings: one parameter object for every fit, its flags, its dict / TOML form, and the
commands that take it (flags defined once, bad values refused before any work)."""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cluster_fixtures import LOG_CENTERS, z_blobs
from clusterlob.cluster.fit import FitSettings
from clusterlob.cluster.model import fit_model
from clusterlob.errors import ParameterError
from clusterlob.features import FeatureSettings
from clusterlob.walkforward import WalkForwardSettings
from clusterlob.walkforward.windows import DEFAULT_FIT

ROOT = Path(__file__).resolve().parents[1]


def test_dict_and_toml_forms_round_trip():
    fit = FitSettings(k=4, n_init=2, seed=7, fit_sample=1000, max_iter=50, tol=1e-6, margin=-1.0)
    assert FitSettings.from_dict(fit.to_dict()) == fit
    assert FitSettings.from_dict({"k": 5, "fit_sample": "all"}) == FitSettings(k=5)   # TOML has no null
    tomllib = pytest.importorskip("tomllib")
    assert FitSettings.from_dict(tomllib.loads('k = 4\nseed = 7\nfit_sample = "all"\n')) == FitSettings(k=4, seed=7)
    with pytest.raises(ParameterError, match="fit.toml: unknown fit setting `clusters`"):
        FitSettings.from_dict({"clusters": 3}, source="fit.toml")
    assert FeatureSettings.from_dict(FeatureSettings(window=20, z_clip=float("inf")).to_dict()) \
        == FeatureSettings(window=20, z_clip=float("inf"))


@pytest.mark.parametrize("changes, message", [
    ({"k": 1}, "`k` must be an integer in 2..127, got 1"),
    ({"k": 128}, "`k` must be an integer in 2..127, got 128"),
    ({"k": True}, "`k` must be an integer in 2..127, got True"),
    ({"n_init": 0}, "`n_init` must be an integer >= 1, got 0"),
    ({"seed": -1}, "`seed` must be an integer >= 0, got -1"),
    ({"fit_sample": 2, "k": 3}, "`fit_sample` must be >= `k` (3), got 2"),
    ({"tol": -1.0}, "`tol` must be a finite number >= 0, got -1.0"),
    ({"margin": float("nan")}, "`margin` must be a finite number, got nan"),
])
def test_validation_is_one_line(changes, message):
    with pytest.raises(ParameterError) as info:
        FitSettings(**changes)
    assert str(info.value) == message


def test_flags_defined_once_round_trip():
    p = argparse.ArgumentParser()
    FitSettings.add_arguments(p, defaults=DEFAULT_FIT)
    assert FitSettings.from_args(p.parse_args([])) == DEFAULT_FIT
    args = p.parse_args(["--k", "4", "--fit-sample", "all", "--margin", "-2", "--tol", "0"])
    assert FitSettings.from_args(args) == FitSettings(k=4, margin=-2.0, tol=0.0)
    with pytest.raises(ParameterError, match="`--fit-sample` must be an integer or 'all', got 'x'"):
        FitSettings.from_args(p.parse_args(["--fit-sample", "x"]))


def test_feature_flags_unset_take_the_base():
    p = argparse.ArgumentParser()
    FeatureSettings.add_arguments(p, unset=True)
    base = FeatureSettings(window=20, levels=3)
    assert FeatureSettings.from_args(p.parse_args([]), base=base) == base
    assert FeatureSettings.from_args(p.parse_args(["--window", "30"]), base=base) == FeatureSettings(window=30, levels=3)
    with pytest.raises(ParameterError, match="`convention` must be one of paper, aggressor, got 'spot'"):
        FeatureSettings.from_args(p.parse_args(["--convention", "spot"]))


def test_fit_model_takes_fit_settings_and_the_old_keywords_alike():
    z, _ = z_blobs(200, LOG_CENTERS, 0.3, 0)
    a, la = fit_model(z, FeatureSettings(), FitSettings(k=3, n_init=2, seed=5, margin=0.1))
    b, lb = fit_model(z, FeatureSettings(), k=3, n_init=2, seed=5, margin=0.1)
    assert np.array_equal(la, lb) and np.array_equal(a.centers_z, b.centers_z) and a.to_dict() == b.to_dict()
    assert a.fit["n_init"] == 2 and a.seed == 5 and a.margin == 0.1
    with pytest.raises(ParameterError, match="give either `fit` or the keyword arguments k, not both"):
        fit_model(z, FeatureSettings(), FitSettings(), k=3)
    with pytest.raises(ParameterError, match="fit_model: unknown fit setting `clusters`"):
        fit_model(z, FeatureSettings(), clusters=3)


def test_walkforward_settings_hold_a_fit():
    wf = WalkForwardSettings(train_days=2)
    assert wf.fit == DEFAULT_FIT and wf.fit.fit_sample == 1_000_000
    assert wf.to_dict()["fit"] == DEFAULT_FIT.to_dict()
    with pytest.raises(ParameterError, match="`fit` must be a FitSettings, got dict"):
        WalkForwardSettings(fit={"k": 3})


@pytest.mark.parametrize("command", ["cluster", "compare", "walkforward", "replay"])
def test_commands_refuse_a_bad_k_up_front(command, tmp_path):
    tape = str(ROOT / "data" / "default_tape")
    argv = {"cluster": [tape, "--out", str(tmp_path / "o")],
            "compare": [tape, tape, "--out", str(tmp_path / "o")],
            "walkforward": [tape, "--out", str(tmp_path / "o")],
            "replay": ["--out", str(tmp_path / "o")]}[command]
    proc = subprocess.run([sys.executable, "-m", f"clusterlob.{command}", *argv, "--k", "100000"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "error: `k` must be an integer in 2..127, got 100000\n"
    assert not (tmp_path / "o").exists()


def test_no_command_hand_writes_a_concern_flag():
    """The flags of FitSettings, FeatureSettings and StrategyConfig come from their
    add_arguments only (synth's --seed and --levels are the generator's, ic's --time-key the IC
    buckets' clock, inventory's --theta the list of thetas the experiment sweeps)."""
    import dataclasses
    import re

    from clusterlob.replay.strategy import StrategyConfig
    concern = {f.name for cls in (FitSettings, FeatureSettings, StrategyConfig) for f in dataclasses.fields(cls)}
    allowed = {("synth", "seed"), ("synth", "levels"), ("ic", "time_key"), ("inventory", "theta")}
    for main in sorted((ROOT / "clusterlob").glob("*/__main__.py")):
        flags = re.findall(r'add_argument\(\s*"--([a-z0-9-]+)"', main.read_text())
        own = {f.replace("-", "_") for f in flags} & concern
        assert own <= {name for cmd, name in allowed if cmd == main.parent.name}, (main, own)
