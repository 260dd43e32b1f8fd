"""Seeded fuzz of hand-edited files and of command lines (issue 21, point 4).

Model JSON, tape manifest.json and strategy TOML: a valid document with random edits (a field
set to a hostile value, deleted, an unknown one added, nested ones replaced) is either read or
refused with a one-line ClusterlobError.  Command lines: every command with a hostile value for
one of its flags exits 0 or 2 with one ``error:`` line, never a traceback.

``CLUSTERLOB_FUZZ_MUTANTS`` (default 1000) scales the file mutants (a tenth of it per file
kind... at least 100); ``CLUSTERLOB_FUZZ_ARGV`` (default 3 per command) the command lines.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import traceback

import pytest

from clusterlob.errors import ClusterlobError
from conftest import DATA

N_FILES = max(100, int(os.environ.get("CLUSTERLOB_FUZZ_MUTANTS", "1000")) // 5)
N_ARGV = int(os.environ.get("CLUSTERLOB_FUZZ_ARGV", "3"))

HOSTILE = [None, True, False, -1, 0, 1, 2 ** 64, -(2 ** 70), 1e308, -1e-300, float("nan"), float("inf"), "",
           "abc", "1_00.10", [], {}, [1, 2], {"a": 1}, [[1, "x"]], "2024-13-45", 3.5, "0", [None]]


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            yield from _paths(v, prefix + (i,))


def _edit(doc, rng):
    doc = json.loads(json.dumps(doc))
    paths = [p for p in _paths(doc) if p]
    what = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        path = rng.choice(paths)
        parent = doc
        for key in path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            key = path[-1]
            op = rng.choice(["set", "set", "set", "delete", "add"])
            try:
                if op == "set":
                    parent[key] = rng.choice(HOSTILE)
                elif op == "delete":
                    del parent[key]
                elif isinstance(parent, dict):
                    parent["unknown_" + str(key)] = rng.choice(HOSTILE)
            except (KeyError, IndexError, TypeError):
                pass
            what.append(f"{op} {'.'.join(map(str, path))}")
    return doc, "; ".join(what)


def _json_text(doc) -> str:
    return json.dumps(doc, allow_nan=True)


def _check(seed, what, fn):
    try:
        fn()
    except ClusterlobError as exc:
        assert "\n" not in str(exc) and str(exc).strip(), f"seed {seed} ({what}): {exc!r}"
    except Exception:  # noqa: BLE001 - the point of the fuzz
        pytest.fail(f"seed {seed} ({what}): {traceback.format_exc().strip().splitlines()[-1]}")


@pytest.fixture(scope="module")
def model_doc(tmp_path_factory):
    from clusterlob.cluster.__main__ import main
    out = tmp_path_factory.mktemp("m") / "fit"
    assert main([str(DATA / "default_tape"), "--out", str(out), "--days", "2024-05-01"]) == 0
    return json.loads((out / "model.json").read_text())


def test_hand_edited_model_files(tmp_path, model_doc):
    from clusterlob.cluster.model import load_model
    from clusterlob.features.settings import FeatureSettings
    for seed in range(N_FILES):
        doc, what = _edit(model_doc, random.Random(seed))
        path = tmp_path / "model.json"
        path.write_text(_json_text(doc))

        def load():
            model = load_model(path, settings=FeatureSettings())
            assert model.centers_z.shape == (model.k, 6)
        _check(seed, what, load)


def test_hand_edited_manifests(tmp_path):
    from clusterlob.features.build import build_features
    from clusterlob.features.settings import FeatureSettings
    from clusterlob.tape.store import read_tape
    doc = json.loads((DATA / "default_tape" / "manifest.json").read_text())
    tape = tmp_path / "tape"
    shutil.copytree(DATA / "default_tape", tape)
    for seed in range(N_FILES):
        edited, what = _edit(doc, random.Random(10_000 + seed))
        (tape / "manifest.json").write_text(_json_text(edited))

        def read():
            t = read_tape(tape, days="2024-05-01", book=seed % 10 == 0)
            if seed % 10 == 0:
                build_features(t, FeatureSettings())
        _check(seed, what, read)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    return None


def test_hand_edited_strategy_configs(tmp_path):
    import dataclasses
    from clusterlob.replay.strategy import StrategyConfig, load_config
    base = dataclasses.asdict(StrategyConfig())
    for seed in range(N_FILES):
        rng = random.Random(20_000 + seed)
        doc = dict(base)
        for _ in range(rng.choice([1, 2])):
            key = rng.choice(sorted(doc) + ["mapping", "unknown_knob"])
            doc[key] = rng.choice(HOSTILE + ["inverted", "traditional", "touch"])
        lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if _toml_value(v) is not None]
        path = tmp_path / "c.toml"
        path.write_text(("[strategy]\n" if seed % 2 else "") + "\n".join(lines) + "\n")
        _check(seed, f"config {doc}", lambda: load_config(path))


# -- command lines -------------------------------------------------------------------------------

COMMANDS = {
    "convert": lambda t: [str(DATA / "tardis" / "trades_tiny.csv"), "--out", str(t / "o")],
    "synth": lambda t: ["--start", "2024-05-01", "--days", "1", "--trades-per-day", "2000", "--seed", "1",
                        "--snapshot-ms", "1000", "--out", str(t / "o")],
    "features": lambda t: [str(DATA / "default_tape"), "--days", "2024-05-01"],
    "cluster": lambda t: [str(DATA / "default_tape"), "--days", "2024-05-01", "--out", str(t / "o")],
    "ic": lambda t: [str(DATA / "default_tape"), "--out", str(t / "o")],
    "walkforward": lambda t: [str(DATA / "default_tape"), "--train-days", "1", "--workers", "1",
                              "--out", str(t / "o")],
    "replay": lambda t: ["--tape", str(DATA / "default_tape")],
    "inventory": lambda t: ["--events", "300", "--seeds", "1", "--theta", "0.5"],
}
ARG_VALUES = ["-1", "0", "1e308", "nan", "inf", "-inf", "abc", "", "100000", "1e400", "99999999999999999999",
              "2024-13-45", "1:0", ",", "0.5", "-0"]


_NO_PARSER = {   # commands that build their parser inside main()
    "convert": ["--symbol", "--exchange", "--tick-size", "--lot-size", "--price-increment", "--amount-increment"],
    "synth": ["--start", "--days", "--trades-per-day", "--seed", "--snapshot-ms", "--levels"],
    "features": ["--days", "--levels", "--window", "--z-clip", "--convention", "--asof", "--time-key"],
}


def _flags(command):
    mod = importlib.import_module(f"clusterlob.{command}.__main__")
    if not hasattr(mod, "_parser"):
        return _NO_PARSER[command]
    parser = mod._parser()
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and not isinstance(a, (argparse._StoreTrueAction, argparse._HelpAction,
                                                       argparse._StoreFalseAction))
            and a.option_strings[-1] != "--out"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_hostile_command_lines(command, tmp_path, capsys):
    main = importlib.import_module(f"clusterlob.{command}.__main__").main
    flags = _flags(command)
    rng = random.Random(sum(map(ord, command)))
    for i in range(N_ARGV):
        flag, value = rng.choice(flags), rng.choice(ARG_VALUES)
        work = tmp_path / f"r{i}"
        work.mkdir()
        argv = COMMANDS[command](work) + [flag, value]
        try:
            code = main(argv)
        except SystemExit as exc:                  # argparse's own usage errors
            code = exc.code
        except Exception:  # noqa: BLE001
            pytest.fail(f"{command} {flag} {value!r}: {traceback.format_exc().strip().splitlines()[-1]}")
        err = capsys.readouterr().err
        assert code in (0, 2), (command, flag, value, code, err)
        if code == 2:
            errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1 and "Traceback" not in err, (command, flag, value, err)


def test_damaged_tape_files(tmp_path):
    """A tape's day files truncated, byte-flipped or swapped: read, or one line naming the file."""
    from clusterlob.features.build import build_features
    from clusterlob.features.settings import FeatureSettings
    from clusterlob.tape.store import read_tape
    tape = tmp_path / "tape"
    for seed in range(N_FILES // 2):
        rng = random.Random(30_000 + seed)
        shutil.rmtree(tape, ignore_errors=True)
        shutil.copytree(DATA / "default_tape", tape)
        kind = rng.choice(["trades", "book"])
        f = tape / kind / "2024-05-01.parquet"
        data = bytearray(f.read_bytes())
        op = rng.choice(["truncate", "flip", "swap", "empty"])
        if op == "truncate":
            data = data[:rng.randrange(len(data))]
        elif op == "flip":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == "swap":
            data = bytearray((tape / ("book" if kind == "trades" else "trades") / "2024-05-01.parquet").read_bytes())
        else:
            data = bytearray()
        f.write_bytes(bytes(data))

        def read():
            build_features(read_tape(tape, days="2024-05-01"), FeatureSettings())
        _check(seed, f"{kind} {op}", read)
