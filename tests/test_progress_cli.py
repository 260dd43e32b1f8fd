"""Every long command, run as a user runs it: progress on stderr (day N of M, rows, elapsed),
nothing of it on stdout or in --json output, and nothing at all with --quiet."""
import importlib
import json
import subprocess
import sys

import pytest

from conftest import DATA, ROOT

TAPE = str(DATA / "default_tape")


def run(*args):
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("progress") / "model"
    proc = run("clusterlob.cluster", TAPE, "--days", "2024-05-01", "--out", str(out), "--quiet")
    assert proc.stderr == "" and "wrote" in proc.stdout          # as a user runs it: quiet is quiet
    return out / "model.json"


def check(name, stdout, stderr, as_json):
    unit = "file" if name == "convert" else "day"
    assert f"{name}: {unit} 1 of " in stderr and "s elapsed" in stderr, stderr
    if as_json:
        json.loads(stdout)                      # stdout is the JSON document and nothing else
    assert " elapsed" not in stdout


@pytest.mark.parametrize("extra", [[], ["--online"]])
def test_replay_as_a_user_runs_it(extra):
    loud = run("clusterlob.replay", "--json", *extra)
    check("replay", loud.stdout, loud.stderr, True)
    quiet = run("clusterlob.replay", "--json", "--quiet", *extra)
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["runs"] == json.loads(loud.stdout)["runs"]


@pytest.mark.parametrize("command", [
    ["cluster", TAPE, "--json", "--out", "{tmp}/c"],
    ["ic", TAPE, "--json", "--model", "{model}", "--out", "{tmp}/i"],
    ["features", TAPE, "--json"],
    ["synth", "--start", "2024-05-01", "--days", "2", "--trades-per-day", "500", "--seed", "1",
     "--snapshot-ms", "60000", "--levels", "5", "--out", "{tmp}/s"],
    ["convert", str(DATA / "tardis" / "trades_tiny.csv"), str(DATA / "tardis" / "book_snapshot_5_tiny.csv"),
     "--json", "--out", "{tmp}/t"],
])
def test_progress_on_stderr_only_and_quiet(command, tmp_path, model_file, capsys):
    main = importlib.import_module(f"clusterlob.{command[0]}.__main__").main
    for sub, quiet in (("loud", []), ("quiet", ["--quiet"])):
        args = [a.format(tmp=tmp_path / sub, model=model_file) for a in command[1:]] + quiet
        assert main(args) == 0
        out, err = capsys.readouterr()
        if quiet:
            assert [line for line in err.splitlines() if not line.startswith(("note:", "synth: wrote"))] == []
        else:
            check(command[0], out, err, "--json" in command)
