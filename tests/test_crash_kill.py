"""Crash safety (issue 21, point 5; issue 18, point 1): SIGKILL ``convert``, ``walkforward`` and ``sweep`` in a subprocess at
random moments and during their final writes, then check that

* nothing a later read would accept is half written (a tape is whole and equal to an
  uninterrupted run's, or absent; a results folder marked ``complete`` holds every file, and each
  file present is whole);
* the rerun, without ``--force``, succeeds and gives results identical to an uninterrupted run,
  and leaves no staging folder or temporary file behind;
* no worker process of ``walkforward --workers 2`` outlives its killed parent.

``CLUSTERLOB_KILLS=N`` sets the random kills per command (default 1; the final-write kill, and for
walkforward the kill while its workers run, always run).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clusterlob._io import MARKER_FILE
from clusterlob.tape.store import read_tape
from conftest import DATA, ROOT

KILLS = int(os.environ.get("CLUSTERLOB_KILLS", "1"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _start(argv, cwd):
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _children(pid: int) -> set[int]:
    out = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _orphans(kids, wait_s: float = 10.0) -> list[int]:
    """The processes of ``kids`` still alive ``wait_s`` after their parent was killed (killed
    now, so a failing test leaves none behind)."""
    deadline = time.monotonic() + wait_s
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [k for k in kids if _alive(k)]
    for k in orphans:
        os.kill(k, signal.SIGKILL)
    return orphans


def _kill_when(proc, until, timeout=120.0):
    """SIGKILL ``proc`` as soon as ``until()`` is true (or when it ends first); returns
    (whether it was killed, the children it had then)."""
    deadline = time.monotonic() + timeout
    kids = set()
    while proc.poll() is None and time.monotonic() < deadline:
        kids |= _children(proc.pid)
        if until():
            kids |= _children(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True, kids
        time.sleep(0.002)
    proc.wait()
    return False, kids


def _after(event, delay):
    """A condition true ``delay`` seconds after ``event()`` first is."""
    seen = []

    def until():
        if not seen and event():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= delay
    return until


def _csv(tmp_path, rows=60_000):
    rng = np.random.default_rng(3)
    ts = 1714521600_000_000 + np.cumsum(rng.integers(1, 3_000_000, rows))  # spans ~2 days
    price = np.round(60000 + np.cumsum(rng.normal(0, 0.5, rows)), 1)
    amount = np.round(rng.uniform(0.001, 2, rows), 3)
    side = np.where(rng.random(rows) < 0.5, "buy", "sell")
    lines = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    lines += [f"binance-futures,BTCUSDT,{t - 500},{t},{i},{s},{p:.1f},{a:.3f}"
              for i, (t, s, p, a) in enumerate(zip(ts, side, price, amount))]
    path = tmp_path / "trades.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _tape_arrays(path):
    t = read_tape(path)
    return {k: v for k, v in t.trades.columns().items()}, json.loads((path / "manifest.json").read_text())


def _same_tape(a, b):
    (ca, ma), (cb, mb) = a, b
    assert ma["days"] == mb["days"] and ma["totals"] == mb["totals"] and ma["instrument"] == mb["instrument"]
    for name in ca:
        np.testing.assert_array_equal(ca[name], cb[name])


def test_kill_convert_then_rerun(tmp_path):
    src = _csv(tmp_path)
    from clusterlob.tape.convert import convert
    ref = tmp_path / "ref"
    started = time.monotonic()
    convert([src], ref)                               # in process: the work, without start-up
    took = time.monotonic() - started
    reference = _tape_arrays(ref)
    rng = random.Random(7)
    plans = [("final writes", None)] + [("random", rng.uniform(0.05, 1.0) * took) for _ in range(KILLS)]
    for i, (mode, delay) in enumerate(plans):
        out = tmp_path / f"t{i}"
        proc = _start(["clusterlob.convert", str(src), "--out", str(out)], tmp_path)
        if mode == "random":      # a random moment of the work: after start-up (the staging folder exists)
            killed, _ = _kill_when(proc, _after(lambda: any(tmp_path.glob(f".t{i}.clusterlob-staging-*")), delay))
        else:   # the staging folder's final layout exists: the day files are being moved / sorted
            killed, _ = _kill_when(proc, lambda: any((p / "trades").is_dir() for p in
                                                     tmp_path.glob(f".t{i}.clusterlob-staging-*")))
        if out.exists():                       # the rename is atomic: whole, or not there
            _same_tape(_tape_arrays(out), reference)
            continue
        assert killed, proc.stderr.read().decode()
        rerun = subprocess.run([sys.executable, "-m", "clusterlob.convert", str(src), "--out", str(out)], env=ENV,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        _same_tape(_tape_arrays(out), reference)
        assert not list(tmp_path.glob(f".t{i}.*")), "a staging folder of the killed run was left"
        print(f"convert killed ({mode}); rerun: {rerun.stderr.strip().splitlines()[:1]}")


RESULT_FILES = ("windows.json", "ic_windows.csv", "ic_aggregate.csv", "equity.csv", "stability.csv",
                "models/window_000.json")


def _results(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in RESULT_FILES}


def _check_whole(folder: Path) -> None:
    """Every result file present parses; a folder marked complete has all of them."""
    marker = json.loads((folder / MARKER_FILE).read_text()) if (folder / MARKER_FILE).exists() else None
    for name in RESULT_FILES + ("summary.json", "summary.md"):
        p = folder / name
        if p.exists() and p.suffix == ".json":
            json.loads(p.read_text())
    if marker is not None and marker.get("state") == "complete":
        for name in marker["files"]:
            assert (folder / name).is_file(), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_kill_walkforward_then_rerun_and_no_orphan_workers(tmp_path):
    tape = DATA / "default_tape"
    argv = ["clusterlob.walkforward", str(tape), "--train-days", "1", "--workers", "2"]
    from clusterlob.walkforward.__main__ import main
    ref = tmp_path / "ref"
    started = time.monotonic()
    assert main([*argv[1:-2], "--workers", "1", "--out", str(ref)]) == 0     # in process: the same results
    took = time.monotonic() - started
    reference = _results(ref)
    rng = random.Random(11)
    plans = [("final writes", None), ("workers busy", None)] + [("random", rng.uniform(0.1, 1.0) * took)
                                                                for _ in range(KILLS)]
    for i, (mode, delay) in enumerate(plans):
        out = tmp_path / f"w{i}"
        proc = _start([*argv, "--out", str(out)], tmp_path)
        if mode == "random":    # a random moment of the work: after start-up (the cache folder exists)
            killed, kids = _kill_when(proc, _after(lambda: (out / "cache").exists(), delay))
        elif mode == "workers busy":
            killed, kids = _kill_when(proc, lambda: len(_children(proc.pid)) >= 2)
        else:
            def writing():
                try:
                    doc = json.loads((out / MARKER_FILE).read_text())
                except (OSError, ValueError):
                    return False
                return doc.get("state") == "writing"
            killed, kids = _kill_when(proc, writing)
        orphans = _orphans(kids)
        assert not orphans, f"{mode}: worker processes {orphans} outlived their killed parent"
        complete = False
        if out.exists():
            _check_whole(out)
            complete = (out / MARKER_FILE).exists() and json.loads((out / MARKER_FILE).read_text())["state"] == "complete"
        rerun = subprocess.run([sys.executable, "-m", *argv, "--out", str(out)], env=ENV, capture_output=True,
                               text=True, timeout=300)
        if complete:                            # it finished before the kill: the rerun refuses
            assert rerun.returncode == 2 and "already has" in rerun.stderr, rerun.stderr
        else:
            assert rerun.returncode == 0, f"{mode}: {rerun.stderr}"
        assert _results(out) == reference, mode
        assert json.loads((out / MARKER_FILE).read_text())["state"] == "complete"
        assert not [p for p in out.rglob(".*tmp-*")], "temporary files left behind"
        print(f"walkforward {mode}: killed {killed}, workers {sorted(kids)}")


SWEEP_GRID = ('[strategy]\nskew_ticks = [10, 20, 30, 40, 50, 60]\nhazard_k = [0, 5]\n'
              'mapping = ["inverted", "traditional"]\n[fit]\ntrain_days = 1\n')


def _sweep_rows(folder: Path) -> list:
    table = pq.read_table(folder / "results.parquet")
    return sorted(json.dumps(row, sort_keys=True) for row in table.to_pylist())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_kill_sweep_mid_tasks_then_resume(tmp_path):
    """SIGKILL ``python -m clusterlob.sweep --workers 2`` once some task results are written:
    no worker outlives it, every task file left is whole, and the same command resumes from the
    finished tasks (without ``--force``) to results identical to an uninterrupted run."""
    from walkforward_fixtures import write_random_tape
    tape = tmp_path / "tape"
    write_random_tape(tape, 5, ["2024-05-01", "2024-05-02", "2024-05-03"], trades_per_day=60_000,
                      snaps_per_day=20_000)
    grid = tmp_path / "grid.toml"
    grid.write_text(SWEEP_GRID)
    argv = ["clusterlob.sweep", str(tape), "--grid", str(grid), "--days", "2024-05-02:2024-05-03",
            "--workers", "2"]
    ref = tmp_path / "ref"
    done = subprocess.run([sys.executable, "-m", *argv, "--out", str(ref)], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = _sweep_rows(ref)
    assert len(reference) == 48
    out = tmp_path / "killed"
    proc = _start([*argv, "--out", str(out)], tmp_path)
    tasks = out / "tasks"
    killed, kids = _kill_when(proc, lambda: tasks.is_dir() and len(list(tasks.glob("*.json"))) >= 3)
    assert killed, "the sweep finished before it could be killed: " + proc.stderr.read().decode()[-300:]
    orphans = _orphans(kids)
    assert not orphans, f"worker processes {orphans} outlived their killed parent"
    finished = sorted(tasks.glob("*.json"))
    assert 3 <= len(finished) < 48 and not (out / "results.parquet").exists()
    for f in finished:                                 # each task result is whole (written atomically)
        json.loads(f.read_text())
    rerun = subprocess.run([sys.executable, "-m", *argv, "--out", str(out)], env=ENV, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    reused = [line for line in rerun.stderr.splitlines() if "finished task(s) reused" in line]
    assert reused and int(reused[0].split(": ")[-1].split()[0]) >= len(finished), rerun.stderr
    assert _sweep_rows(out) == reference
    assert not [p for p in out.rglob(".*tmp-*")], "temporary files left behind"
    print(f"sweep killed after {len(finished)} task(s); rerun: {reused[0]}")
