"""Every command: a usage error (unknown flag, a number that is not one, a missing argument) is
one line on stderr and exit status 2, like the commands' other user errors; --help still works."""
from __future__ import annotations

import importlib

import pytest

COMMANDS = {
    "clusterlob.convert": ["in.csv", "--out", "o", "--tick-size", "abc"],
    "clusterlob.synth": ["--start", "2024-05-01", "--days", "x", "--trades-per-day", "10", "--seed", "1",
                         "--out", "o"],
    "clusterlob.features": ["tape", "--window", "x"],
    "clusterlob.cluster": ["tape", "--out", "o", "--k", "three"],
    "clusterlob.compare": ["a", "b", "--out", "o", "--seed", "1.5"],
    "clusterlob.ic": ["tape", "--out", "o", "--bucket", "five"],
    "clusterlob.walkforward": ["tape", "--out", "o", "--train-days", "x"],
    "clusterlob.replay": ["--skew-ticks", "abc"],
    "clusterlob.inventory": ["--seeds", "x"],
    "clusterlob.sweep": ["tape", "--grid", "g.toml", "--out", "o", "--workers", "x"],
}


def _main(name):
    return importlib.import_module(name + ".__main__").main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bad_number_is_one_line(name, capsys):
    with pytest.raises(SystemExit) as exc:
        _main(name)(COMMANDS[name])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --") and "invalid" in err, err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unknown_flag_and_missing_arguments_are_one_line(name, capsys):
    with pytest.raises(SystemExit) as exc:
        _main(name)(["--no-such-flag"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and err.endswith("(see --help)\n"), err
    assert "--no-such-flag" in err or "required" in err, err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_still_prints_usage(name, capsys):
    with pytest.raises(SystemExit) as exc:
        _main(name)(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {name}")


@pytest.mark.parametrize("name", ["clusterlob.cluster", "clusterlob.walkforward", "clusterlob.compare",
                                  "clusterlob.ic", "clusterlob.replay", "clusterlob.inventory", "clusterlob.sweep"])
def test_every_option_has_help(name):
    parser = importlib.import_module(name + ".__main__")._parser()
    assert [a.option_strings or a.dest for a in parser._actions if not a.help] == []


def _impossible_out_cases(tmp_path):
    from conftest import DATA
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = str(blocker / "out")                      # its parent is a file: cannot be created
    tape = str(DATA / "default_tape")
    grid = tmp_path / "grid.toml"
    grid.write_text("skew_ticks = [10, 50]\n")
    return {
        "clusterlob.sweep": [tape, "--grid", str(grid), "--workers", "1", "--out", out],
        "clusterlob.convert": [str(DATA / "tardis" / "trades_tiny.csv"), "--out", out],
        "clusterlob.synth": ["--start", "2024-05-01", "--days", "1", "--trades-per-day", "100", "--seed", "1",
                             "--snapshot-ms", "60000", "--levels", "2", "--out", out],
        "clusterlob.cluster": [tape, "--out", out],
        "clusterlob.compare": [tape, tape, "--out", out],
        "clusterlob.ic": [tape, "--group-by", "agent", "--out", out],
        "clusterlob.walkforward": [tape, "--train-days", "1", "--workers", "1", "--out", out],
        "clusterlob.replay": ["--out", out],
        "clusterlob.inventory": ["--seeds", "1", "--events", "2000", "--theta", "2", "--out", out],
    }, blocker


@pytest.mark.parametrize("name", ["clusterlob.convert", "clusterlob.synth", "clusterlob.cluster",
                                  "clusterlob.compare", "clusterlob.ic", "clusterlob.walkforward",
                                  "clusterlob.replay", "clusterlob.inventory", "clusterlob.sweep"])
def test_output_folder_that_cannot_be_created_is_one_line(name, tmp_path, capsys):
    cases, blocker = _impossible_out_cases(tmp_path)
    assert _main(name)(cases[name]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and str(blocker) in last, err
    assert [line for line in err.splitlines() if line.startswith("error")] == [last]
    assert blocker.read_text() == "not a folder"
