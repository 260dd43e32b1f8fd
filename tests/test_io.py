"""The shared output and parameter toolkit (clusterlob._io)."""
from __future__ import annotations

import os
import stat

import pytest

from clusterlob._io import (MARKER_FILE, Progress, atomic_write, check_choice, check_int, check_number,
                            check_output_dir, mark_output_dir, output_kind, write_text)
from clusterlob.errors import ParameterError


def test_atomic_write_refuses_then_replaces_with_force(tmp_path):
    p = tmp_path / "a" / "x.txt"
    write_text(p, "one")
    with pytest.raises(ParameterError, match="exists"):
        write_text(p, "two")
    write_text(p, "two", force=True)
    assert p.read_text() == "two"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~_umask()
    assert [q.name for q in p.parent.iterdir()] == ["x.txt"]


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


def test_failed_write_leaves_nothing(tmp_path):
    def boom(tmp):
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "y.bin", boom)
    assert list(tmp_path.iterdir()) == []


def test_output_dir_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad in ("", ".", "./"):
        with pytest.raises(ParameterError):
            check_output_dir(bad, kind="replay")
    src = tmp_path / "in" / "data.csv"
    src.parent.mkdir()
    src.write_text("x")
    with pytest.raises(ParameterError, match="holds the input"):
        check_output_dir(src.parent, kind="tape", force=True, inputs=[src])
    with pytest.raises(ParameterError, match="current folder"):
        check_output_dir(tmp_path, kind="tape", force=True, inputs=[src])
    monkeypatch.chdir(src.parent)
    with pytest.raises(ParameterError, match="holds"):
        check_output_dir(tmp_path, kind="tape", force=True, inputs=[src])
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    with pytest.raises(ParameterError, match="use --force"):
        check_output_dir(user, kind="replay")
    with pytest.raises(ParameterError, match="not a clusterlob output"):
        check_output_dir(user, kind="replay", force=True)
    assert (user / "notes.txt").read_text() == "precious"
    assert check_output_dir(user, kind="replay", files=["fills.parquet"]) == user   # no clash
    ours = tmp_path / "ours"
    mark_output_dir(ours, "replay")
    (ours / "fills.parquet").write_text("old")
    assert output_kind(ours) == "replay" and (ours / MARKER_FILE).is_file()
    assert check_output_dir(ours, kind="replay", force=True) == ours
    with pytest.raises(ParameterError, match="clusterlob replay output"):
        check_output_dir(ours, kind="sweep", force=True)


def test_progress_counts_and_eta():
    lines = []
    ticks = iter([0.0, 2.0, 4.0])

    class Sink:
        def write(self, s):
            lines.append(s)

        def flush(self):
            pass

    p = Progress("replay", total=4, unit="day", stream=Sink(), clock=lambda: next(ticks))
    assert p.step(rows=1000, note="2024-05-02") == "day 1 of 4 (2024-05-02), 1,000 rows, 2.0 s elapsed, ETA 6 s"
    q = Progress("x", quiet=True, stream=Sink())
    q.say("hidden")
    assert "".join(lines).count("\n") == 1


def test_validators_name_the_parameter():
    assert check_int("k", 3, 2) == 3
    for bad in (1, True, 2.5, "3"):
        with pytest.raises(ParameterError, match="`k`"):
            check_int("k", bad, 2)
    assert check_number("tol", 0.5, 0) == 0.5
    for bad in (float("nan"), float("inf"), -1, "x", None):
        with pytest.raises(ParameterError, match="`tol`"):
            check_number("tol", bad, 0)
    with pytest.raises(ParameterError, match="> 0"):
        check_number("size", 0, 0, lo_open=True)
    with pytest.raises(ParameterError, match="one of a, b, got 'c'"):
        check_choice("mode", "c", ("a", "b"))
