"""The house: no import cycles, every command runs as a user runs it (``python -m`` in a
subprocess), public names keep working where they moved, and the compiled kernels import
nothing of the package above them."""
from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA

PACKAGE = Path(__file__).resolve().parent.parent / "clusterlob"
COMMANDS = ("convert", "synth", "features", "cluster", "compare", "ic", "walkforward", "replay", "inventory",
            "sweep")


# -- imports ---------------------------------------------------------------------------------

def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _import_graph() -> dict:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules.update({_module_name(p): p for p in PACKAGE.rglob("*.pyx")})
    graph: dict = {m: set() for m in modules}
    for name, path in modules.items():
        if path.suffix != ".py":
            continue
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t != "clusterlob":
                    graph[name].add(t)
    return graph


def _cycles(graph: dict) -> list:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_library_module_imports_a_command():
    graph = _import_graph()
    offenders = [(m, t) for m, targets in graph.items() for t in targets
                 if t.endswith(".__main__") and not m.endswith(".__main__")]
    assert offenders == []


def test_every_command_is_a_package_main():
    for name in COMMANDS:
        assert (PACKAGE / name / "__main__.py").is_file(), name


def test_kernels_import_nothing_of_the_package():
    for path in [PACKAGE / "_core.pyx", *(PACKAGE / "_kernels").glob("*.pxi")]:
        text = path.read_text()
        assert "from ." not in text and "import clusterlob" not in text and "from clusterlob" not in text, path


@pytest.mark.parametrize("old, name", [
    ("clusterlob", "read_tape"), ("clusterlob.features", "build_features"), ("clusterlob.model", "load_model"),
    ("clusterlob.replay", "replay"), ("clusterlob.online", "OnlineEngine"), ("clusterlob.strategy", "StrategyConfig"),
    ("clusterlob.tape", "TapeWriter"), ("clusterlob.kmeans", "kmeans"), ("clusterlob.roles", "ROLE_NAMES"),
    ("clusterlob.signals", "BucketSignals"), ("clusterlob.ic", "ic_table"), ("clusterlob.gateway", "SimulatedGateway"),
    ("clusterlob.readers", "detect_reader"), ("clusterlob.readers.binance", "BinanceReader"),
    ("clusterlob.convert", "convert"), ("clusterlob.synth", "generate_tape"), ("clusterlob.compare", "compare_tapes"),
    ("clusterlob.inventory", "run_experiment"), ("clusterlob.timeframes", "timeframe_analysis"),
    ("clusterlob.accumulator", "SignalAccumulator"), ("clusterlob.validate", "FileReport"),
])
def test_public_names_keep_working_where_they_moved(old, name):
    assert hasattr(importlib.import_module(old), name)


def test_a_moved_module_is_the_same_object():
    import clusterlob.cluster.model as new
    import clusterlob.model as old
    import clusterlob.readers.binance as old_reader
    import clusterlob.tape.readers.binance as new_reader

    assert old is new and old_reader is new_reader
    assert new.__spec__.name == "clusterlob.cluster.model"      # the real module's spec is kept


# -- every command, as a user runs it ----------------------------------------------------------

def _run(*args, cwd=None, timeout=240):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_as_a_subprocess(name):
    proc = _run(f"clusterlob.{name}", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m clusterlob.{name}")
    assert proc.stderr == ""


def test_bad_flag_as_a_subprocess_is_one_line():
    proc = _run("clusterlob.features", str(DATA / "default_tape"), "--window", "x")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def small_tape(tmp_path_factory):
    """A 4-day synthetic tape made by the synth command, for the commands that need several days."""
    out = tmp_path_factory.mktemp("synth") / "tape"
    proc = _run("clusterlob.synth", "--start", "2024-05-01", "--days", "4", "--trades-per-day", "3000",
                "--seed", "3", "--out", str(out), "--snapshot-ms", "1000", "--levels", "10")
    assert proc.returncode == 0, proc.stderr
    assert "synth: wrote" in proc.stderr
    return out


def test_replay_default_run_as_a_subprocess():
    proc = _run("clusterlob.replay")
    assert proc.returncode == 0, proc.stderr
    assert "OUT OF SAMPLE" in proc.stdout and "PnL total" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_replay_online_json_as_a_subprocess():
    import json
    proc = _run("clusterlob.replay", "--online", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["path"] == "online" and doc["runs"][0]["summary"]["trades"] > 0


def test_features_as_a_subprocess():
    proc = _run("clusterlob.features", str(DATA / "default_tape"))
    assert proc.returncode == 0, proc.stderr
    assert "valid rows" in proc.stdout


def test_cluster_then_ic_as_subprocesses(tmp_path):
    proc = _run("clusterlob.cluster", str(DATA / "default_tape"), "--out", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c" / "model.json").is_file()
    proc = _run("clusterlob.ic", str(DATA / "default_tape"), "--model", str(tmp_path / "c" / "model.json"),
                "--out", str(tmp_path / "ic"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ic" / "ic.md").is_file()


def test_compare_as_a_subprocess(tmp_path):
    tape = str(DATA / "default_tape")
    proc = _run("clusterlob.compare", tape, tape, "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cmp" / "compare.md").is_file()


def test_convert_as_a_subprocess(tmp_path):
    proc = _run("clusterlob.convert", str(DATA / "tardis" / "trades_tiny.csv"),
                str(DATA / "tardis" / "book_snapshot_5_tiny.csv"), "--out", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t" / "manifest.json").is_file()


def test_walkforward_as_a_subprocess(small_tape, tmp_path):
    proc = _run("clusterlob.walkforward", str(small_tape), "--out", str(tmp_path / "wf"), "--train-days", "2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "wf" / "windows.json").is_file()


def test_inventory_as_a_subprocess():
    proc = _run("clusterlob.inventory", "--events", "3000", "--seeds", "2", "--theta", "2")
    assert proc.returncode == 0, proc.stderr
    assert "fixed" in proc.stdout and "dynamic" in proc.stdout
