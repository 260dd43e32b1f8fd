"""What every command shares for its outputs and its parameters: one output-folder check with
one wording, one atomic writer with one file mode, one progress printer, one set of validators.

The library never prints: a long library call takes a ``progress`` callable (a :class:`Progress`
or any ``f(str)``), and the command decides where the lines go (stderr, or nowhere with
``--quiet``).
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import ParameterError

__all__ = ["MARKER_FILE", "Progress", "atomic_write", "check_choice", "check_int", "check_number",
           "check_output_dir", "mark_output_dir", "output_kind", "write_bytes", "write_text"]

#: The file that marks a folder as a clusterlob output of a kind (``--force`` replaces only those).
MARKER_FILE = ".clusterlob-output.json"


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()        # read once: os.umask can only be read by setting it


# -- atomic files ----------------------------------------------------------------------------------

def atomic_write(path, write: Callable[[str], Any], *, force: bool = False) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file beside it, which is then
    renamed into place with the usual file mode (0666 less the umask).  An existing ``path`` is
    refused unless ``force``; a failed write leaves nothing behind.  Returns the path."""
    path = Path(path)
    if path.exists() and not force:
        raise ParameterError(f"output file {path} exists (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str, *, force: bool = False) -> Path:
    """Write a text file atomically (UTF-8)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), force=force)


def write_bytes(path, data: bytes, *, force: bool = False) -> Path:
    """Write a binary file atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), force=force)


# -- output folders --------------------------------------------------------------------------------

def output_kind(path) -> str | None:
    """The kind of clusterlob output a folder holds (its marker, or ``tape`` for a tape directory
    with a clusterlob manifest), or None."""
    path = Path(path)
    marker = path / MARKER_FILE
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            return None
        return kind if isinstance(kind, str) else None
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            if json.loads(manifest.read_text()).get("format") == "clusterlob-tape":
                return "tape"
        except (OSError, ValueError, AttributeError):
            return None
    return None


def check_output_dir(path, *, kind: str, force: bool = False, inputs: Iterable = (),
                     files: Sequence[str] | None = None) -> Path:
    """Check, before any work, that ``path`` may receive a command's outputs.

    Refused in one line: an empty name, ``.``, a path that is a file, an input's own folder or
    any folder that holds an input.  An existing folder is accepted when it is empty, or when
    none of ``files`` (the names the command writes) is in it; otherwise only with ``force``,
    and then only when it is a clusterlob output of the same ``kind``, so ``--force`` never
    deletes or replaces what clusterlob did not write.
    """
    if path is None or str(path).strip() == "":
        raise ParameterError("output folder must be named, got an empty name")
    out = Path(path)
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or str(out) in (".", "./"):
        raise ParameterError(f"output folder {out} is the current folder: name a new folder")
    for item in inputs:
        src = Path(item).resolve()
        if src == resolved or resolved in src.parents:
            raise ParameterError(f"output folder {out} holds the input {item}: choose another folder")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output folder {out} is a file, expected a folder")
    if not out.exists():
        return out
    present = sorted(p.name for p in out.iterdir() if p.name != MARKER_FILE)
    clashing = present if files is None else [n for n in files if (out / n).exists()]
    if not clashing:
        return out
    if not force:
        shown = ", ".join(clashing[:4]) + (" ..." if len(clashing) > 4 else "")
        raise ParameterError(f"output folder {out} already has {shown} (use --force to replace)")
    found = output_kind(out)
    if found != kind:
        what = f"a clusterlob {found} output" if found else "not a clusterlob output"
        raise ParameterError(f"--force replaces only a clusterlob {kind} output, and {out} is {what}: "
                             f"nothing was touched; choose another folder")
    return out


def mark_output_dir(path, kind: str, **extra) -> Path:
    """Mark a folder as a clusterlob output of ``kind`` (what :func:`check_output_dir` looks for)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    from . import __version__
    doc = {"kind": kind, "written_by": f"clusterlob {__version__}", **extra}
    return write_text(path / MARKER_FILE, json.dumps(doc, indent=2) + "\n", force=True)


# -- progress ---------------------------------------------------------------------------------------

class Progress:
    """Progress lines on stderr: count of total, rows, elapsed time and ETA.

    ``Progress("replay", total=6, unit="day")``; call :meth:`step` after each unit of work
    (``step(rows=1_234_567, note="2024-05-02")``) and :meth:`say` for a free line.  With
    ``quiet=True`` nothing is printed.  The object is also a ``f(str)`` callable, so it can be
    passed where a library function takes ``progress``.
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "step", *, quiet: bool = False,
                 stream=None, clock: Callable[[], float] = time.perf_counter):
        self.label, self.total, self.unit, self.quiet = label, total, unit, quiet
        self.stream = stream
        self._clock = clock
        self.start = clock()
        self.done = 0
        self.rows = 0

    def __call__(self, line: str) -> None:
        self.say(line)

    def say(self, line: str) -> None:
        """Print one free line (prefixed by the label)."""
        if not self.quiet:
            print(f"{self.label}: {line}", file=self.stream or sys.stderr, flush=True)

    def step(self, n: int = 1, *, rows: int = 0, note: str = "") -> str:
        """Count ``n`` more units (and ``rows``) done; print and return the progress line."""
        self.done += n
        self.rows += rows
        elapsed = self._clock() - self.start
        parts = [f"{self.unit} {self.done:,}" + (f" of {self.total:,}" if self.total else "")]
        if note:
            parts[0] += f" ({note})"
        if self.rows:
            parts.append(f"{self.rows:,} rows")
        parts.append(f"{elapsed:.1f} s elapsed")
        if self.total and 0 < self.done < self.total:
            parts.append(f"ETA {elapsed / self.done * (self.total - self.done):.0f} s")
        line = ", ".join(parts)
        self.say(line)
        return line


# -- validators -------------------------------------------------------------------------------------

def check_int(name: str, value, lo: int | None = None, hi: int | None = None, *,
              none_ok: bool = False) -> int | None:
    """``value`` as an int, or a one-line error naming ``name``: "`k` must be an integer >= 2, got 1".

    ``none_ok``: None is allowed (and returned); the message then says "None or an integer ...".
    """
    if none_ok and value is None:
        return None
    rule = ("an integer" + (f" >= {lo}" if lo is not None and hi is None else "")
            + (f" in {lo}..{hi}" if lo is not None and hi is not None else "")
            + (f" <= {hi}" if hi is not None and lo is None else ""))
    if none_ok:
        rule = "None or " + rule
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}")
    return value


def check_number(name: str, value, lo: float | None = None, hi: float | None = None, *,
                 lo_open: bool = False, hi_open: bool = False, finite: bool = True) -> float:
    """``value`` as a float within the bounds, or a one-line error naming ``name``:
    "`tol` must be a finite number >= 0, got -1.0".  NaN is always refused; ``finite=False``
    lets +-inf through (still subject to the bounds)."""
    rule = ("a finite number" if finite else "a number")
    if lo is not None and hi is not None:
        rule += f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        rule += f" {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        rule += f" {'<' if hi_open else '<='} {hi:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}")
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi)):
        raise ParameterError(f"`{name}` must be {rule}, got {value!r}")
    return v


def check_choice(name: str, value, choices: Sequence) -> Any:
    """``value`` if it is one of ``choices``, or a one-line error listing them:
    "`asof` must be one of strict, at_or_before, got 'before'"."""
    if isinstance(value, bool) or value not in choices:
        raise ParameterError(f"`{name}` must be one of {', '.join(str(c) for c in choices)}, got {value!r}")
    return value
