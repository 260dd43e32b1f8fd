"""--force never deletes what clusterlob did not write, in every command (issue 21, point 0).

Every command that writes outputs is run against: a folder holding a user's file named like one
of its outputs (refused without --force, and with --force: "not a clusterlob output", both
files intact); ``--out .``, ``--out ""``, the input's own folder and a folder holding the input
(one line each).  All are refused before any work, so the in-process runs are quick; convert
also runs as a user runs it (subprocess).
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from clusterlob._io import (MARKER_FILE, begin_output, check_output_dir, clean_staging, finish_output,
                            interrupted_output, output_overwrite, staging_dir)
from clusterlob.errors import ParameterError
from conftest import DATA, ROOT

TAPE = DATA / "default_tape"
CSV = DATA / "tardis" / "trades_tiny.csv"

# command -> (arguments before --out, a file name the command writes, the input path or None)
COMMANDS = {
    "convert": (lambda t: [str(t / "trades_tiny.csv")], "manifest.json", "csv"),
    "synth": (lambda t: ["--start", "2024-05-01", "--days", "1", "--trades-per-day", "1000", "--seed", "1"],
              "manifest.json", None),
    "cluster": (lambda t: [str(t / "tape")], "model.json", "tape"),
    "compare": (lambda t: [str(t / "tape"), str(t / "tape")], "compare.md", "tape"),
    "ic": (lambda t: [str(t / "tape")], "ic.md", "tape"),
    "walkforward": (lambda t: [str(t / "tape"), "--train-days", "1"], "summary.md", "tape"),
    "replay": (lambda t: ["--tape", str(t / "tape")], "summary.json", "tape"),
    "inventory": (lambda t: ["--events", "200", "--seeds", "1"], "inventory.md", None),
}


@pytest.fixture()
def inputs(tmp_path):
    shutil.copytree(TAPE, tmp_path / "tape")
    shutil.copy(CSV, tmp_path / "trades_tiny.csv")
    return tmp_path


def _run(command, argv, capsys):
    main = importlib.import_module(f"clusterlob.{command}.__main__").main
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _one_line_error(code, err):
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return code == 2 and len(lines) == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_force_never_deletes_a_users_folder(command, inputs, capsys):
    pre, name, _ = COMMANDS[command]
    user = inputs / "mine"
    user.mkdir()
    (user / name).write_text("the user's own file")
    (user / "notes.txt").write_text("precious")
    code, err = _run(command, pre(inputs) + ["--out", str(user)], capsys)
    assert _one_line_error(code, err) and "already has" in err and "--force" in err, err
    code, err = _run(command, pre(inputs) + ["--out", str(user), "--force"], capsys)
    assert _one_line_error(code, err) and "not a clusterlob output" in err, err
    assert (user / name).read_text() == "the user's own file" and (user / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in user.iterdir()) == sorted({name, "notes.txt"})


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_current_folder_empty_name_and_inputs_folders_are_refused(command, inputs, capsys, monkeypatch):
    pre, _, source = COMMANDS[command]
    monkeypatch.chdir(inputs)
    bad = [".", "", str(inputs.parent)]
    if source == "tape":
        bad += [str(inputs / "tape"), str(inputs / "tape" / "trades")]
    elif source == "csv":
        bad += [str(inputs)]
    for out in bad:
        code, err = _run(command, pre(inputs) + ["--out", out, "--force"], capsys)
        assert _one_line_error(code, err), (out, err)
        assert ("current folder" in err or "holds the input" in err or "empty name" in err
                or "inside the input" in err), (out, err)
    assert (inputs / "tape" / "manifest.json").is_file() and (inputs / "trades_tiny.csv").is_file()


def test_convert_as_a_user_runs_it(inputs):
    """Subprocess: the issue's data loss (--force over a folder holding the input) and `--out .`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    folder = inputs / "mix"
    folder.mkdir()
    shutil.copy(CSV, folder / "in.csv")
    (folder / "mine.txt").write_text("mine")
    for out in (str(folder), ".", ""):
        proc = subprocess.run([sys.executable, "-m", "clusterlob.convert", str(folder / "in.csv"), "--out", out,
                               "--force"], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["in.csv", "mine.txt"]
    tape = inputs / "out"
    for force in ([], ["--force"]):          # a tape replaces a tape
        proc = subprocess.run([sys.executable, "-m", "clusterlob.convert", str(folder / "in.csv"), "--out", str(tape)]
                              + force, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert json.loads((tape / "manifest.json").read_text())["format"] == "clusterlob-tape"


def test_interrupted_results_folder_is_resumed_without_force(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.md").write_text("old")
    (out / MARKER_FILE).write_text(json.dumps({"kind": "cluster", "state": "writing", "pid": 2 ** 22 + 7}))
    (out / ".model.json.tmp-abc").write_text("half")          # an atomic write cut short
    notes = []
    assert check_output_dir(out, kind="cluster", files=["summary.md", "model.json"], progress=notes.append) == out
    assert interrupted_output(out, "cluster") and output_overwrite(out, "cluster", False)
    assert not (out / ".model.json.tmp-abc").exists() and any("resuming" in n for n in notes)
    with pytest.raises(ParameterError, match="already has"):          # another kind: not resumed
        check_output_dir(out, kind="ic", files=["summary.md"])
    begin_output(out, "cluster")                                      # this process: alive, not "interrupted"
    assert not interrupted_output(out, "cluster")
    finish_output(out, "cluster", [out / "summary.md"])
    doc = json.loads((out / MARKER_FILE).read_text())
    assert doc["state"] == "complete" and doc["files"] == ["summary.md"]
    with pytest.raises(ParameterError, match="use --force"):
        check_output_dir(out, kind="cluster", files=["summary.md"])


def test_staging_folders_of_killed_runs_are_removed_or_reported(tmp_path):
    target = tmp_path / "tape"
    dead = staging_dir(target)
    (dead / ".clusterlob-staging").write_text(json.dumps({"pid": 2 ** 22 + 7}))
    (dead / "_stage").mkdir()
    (dead / "_stage" / "x.parquet").write_bytes(b"0" * 1000)
    live = staging_dir(target)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (live / ".clusterlob-staging").write_text(json.dumps({"pid": proc.pid}))
        user = tmp_path / ".tape.tmp-mine"                  # a user's folder with a similar name
        user.mkdir()
        (user / "data.txt").write_text("mine")
        notes = []
        removed = clean_staging(target, notes.append)
        assert removed == [dead] and not dead.exists() and live.exists() and user.exists()
        assert any("removed" in n and "MB" in n for n in notes) and any(str(proc.pid) in n for n in notes)
    finally:
        proc.kill()
        proc.wait()


# -- refusals up front: absurd sizes, a value another command rejects, a hand-edited manifest --------

@pytest.mark.parametrize("command, argv, word", [
    ("synth", ["--start", "2024-05-01", "--days", "1", "--trades-per-day", "1000000000000", "--seed", "1"], "synth"),
    ("inventory", ["--events", "1000000000000", "--seeds", "1"], "inventory"),
])
def test_memory_preflight_refuses_before_allocating(command, argv, word, tmp_path, capsys):
    code, err = _run(command, argv + ["--out", str(tmp_path / "o")], capsys)
    assert _one_line_error(code, err) and f"{word} needs about" in err and "TB of memory" in err, err
    assert not (tmp_path / "o").exists()


def test_memory_limit_can_be_set_for_tests(monkeypatch):
    from clusterlob._io import check_memory
    monkeypatch.setenv("CLUSTERLOB_MEMORY_LIMIT", "1000")
    check_memory("x", 999)
    with pytest.raises(ParameterError, match=r"x needs about 2.0 KB of memory, more than the 1.0 KB available"):
        check_memory("x", 2000)
    with pytest.raises(ParameterError, match="unbounded"):
        check_memory("x", float("inf"))


def test_walkforward_rejects_k_up_front(tmp_path, capsys):
    code, err = _run("walkforward", [str(TAPE), "--train-days", "1", "--k", "100000", "--out", str(tmp_path / "o")],
                     capsys)
    assert _one_line_error(code, err) and "`k` must be an integer in 2..127, got 100000" in err, err
    assert not (tmp_path / "o").exists()


def test_features_on_a_manifest_day_without_trades(tmp_path, capsys):
    tape = tmp_path / "tape"
    shutil.copytree(TAPE, tape)
    doc = json.loads((tape / "manifest.json").read_text())
    del doc["days"][0]["trades"]
    (tape / "manifest.json").write_text(json.dumps(doc))
    code, err = _run("features", [str(tape)], capsys)
    assert _one_line_error(code, err) and "`days[0].trades` must be a row count" in err, err


def test_a_reader_of_results_refuses_an_interrupted_run(tmp_path):
    from clusterlob._io import require_complete_output
    out = tmp_path / "wf"
    begin_output(out, "walkforward")
    (out / "windows.json").write_text("[]")
    with pytest.raises(ParameterError, match="interrupted walkforward run"):
        require_complete_output(out, "walkforward")
    finish_output(out, "walkforward", [out / "windows.json", out / "summary.json"])
    with pytest.raises(ParameterError, match="lack summary.json"):
        require_complete_output(out, "walkforward")
    (out / "summary.json").write_text("{}")
    assert require_complete_output(out, "walkforward")["state"] == "complete"
    with pytest.raises(ParameterError, match="expected the results of a sweep run"):
        require_complete_output(out, "sweep")
