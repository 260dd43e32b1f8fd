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
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence, overload

from ._typing import PathLike
from .errors import ParameterError

__all__ = ["read_toml", "MARKER_FILE", "Progress", "atomic_write", "available_memory", "begin_output", "check_choice",
           "check_int", "check_local_dir", "check_memory", "check_number", "check_output_dir", "check_output_name",
           "clean_staging", "finish_output", "interrupted_output", "is_uri", "mark_output_dir",
           "output_kind", "output_marker", "output_overwrite", "replace_dir",
           "require_complete_output", "staging_dir",
           "write_bytes", "write_text"]

#: The file that marks a folder as a clusterlob output of a kind (``--force`` replaces only those).
MARKER_FILE = ".clusterlob-output.json"


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()        # read once: os.umask can only be read by setting it


# -- local paths and URIs --------------------------------------------------------------------------

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(location) -> bool:
    """True for ``scheme://...`` text (a tape may be read from one: ``clusterlob.tape.location``)."""
    return isinstance(location, str) and _URI.match(location) is not None


def check_local_dir(path, what: str) -> None:
    """Outputs are written to local folders only: a URI is one line naming ``what``."""
    if is_uri(path):
        raise ParameterError(f"{what} must be a local folder (outputs are not written to URIs), got {path!r}")


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


# -- TOML files --------------------------------------------------------------------------------------

def read_toml(path: PathLike, what: str) -> dict:
    """A TOML file as a dict; a missing, unreadable or invalid file is one line naming ``what``
    (``"config file"``, ``"grid file"``) and the path."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:                                   # Python 3.10: the same parser as a package
        try:
            import tomli as tomllib
        except ImportError:
            raise ParameterError(f"reading a {what} needs Python >= 3.11 (tomllib) or the `tomli` package") from None
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ParameterError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ParameterError(f"{what} {path} is a folder, expected a TOML file") from None
    except OSError as exc:
        raise ParameterError(f"{what} {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{what} {path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ParameterError(f"{what} {path}: not valid TOML (not UTF-8 text)") from None


# -- output folders --------------------------------------------------------------------------------
#
# The protocol every command follows (``docs/reliability.md``):
#
# 1. before any work, :func:`check_output_dir` (refuses in one line what may not be written to);
# 2. before the first output file, :func:`begin_output` marks the folder ``state: writing``;
# 3. after the last one, :func:`finish_output` marks it ``state: complete``.
#
# A run killed between 2 and 3 leaves a folder marked ``writing``: the rerun of the same kind
# resumes into it without ``--force`` (:func:`output_overwrite` says so), and a reader can tell
# the set of files is not whole.  A tape is written into a staging folder beside its target
# (:func:`staging_dir`) and renamed into place; a staging folder left by a killed run is removed
# by the next run (:func:`clean_staging`) or, while its process still runs, left and reported.

_STAGING_TAG = ".clusterlob-staging"        # the file inside a staging folder: pid and host


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:        # exists, owned by someone else
        return True
    return True


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def output_marker(path) -> dict | None:
    """The marker document of a folder (kind, state, pid, ...), or None."""
    doc = _read_json(Path(path) / MARKER_FILE)
    return doc if isinstance(doc, dict) else None


def output_kind(path) -> str | None:
    """The kind of clusterlob output a folder holds (its marker, or ``tape`` for a tape directory
    with a clusterlob manifest), or None."""
    path = Path(path)
    if (path / MARKER_FILE).is_file():
        kind = (output_marker(path) or {}).get("kind")
        return kind if isinstance(kind, str) else None
    manifest = path / "manifest.json"
    if manifest.is_file():
        doc = _read_json(manifest)
        if isinstance(doc, dict) and doc.get("format") == "clusterlob-tape":
            return "tape"
    return None


def interrupted_output(path, kind: str) -> bool:
    """True when ``path`` holds a ``kind`` output whose writing was interrupted (marked
    ``writing`` by a process that is gone): the rerun may resume into it without ``--force``."""
    doc = output_marker(path)
    return (doc is not None and doc.get("kind") == kind and doc.get("state") == "writing"
            and not _pid_alive(doc.get("pid")))


def output_overwrite(path, kind: str, force: bool) -> bool:
    """Whether a command may replace its own files in ``path``: with ``--force``, or when the
    folder holds an interrupted run of the same kind (resumed without ``--force``)."""
    return bool(force) or interrupted_output(path, kind)


def check_output_name(path, *, inputs: Iterable = ()) -> Path:
    """The checks that need no look inside the folder: refused in one line are an empty name,
    ``.`` (the current folder or any folder holding it), a path that is a file, an input's own
    folder, any folder that holds an input, and any folder inside an input folder (a tape)."""
    if path is None or str(path).strip() == "":
        raise ParameterError("output folder must be named, got an empty name")
    check_local_dir(path, "output folder")
    out = Path(path)
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or str(out) in (".", "./") or resolved in cwd.parents:
        raise ParameterError(f"output folder {out} is the current folder or holds it: name a new folder")
    for item in inputs:
        if item is None or str(item) == "" or is_uri(item):
            continue                  # a URI: local_tape_path() gives the folder of a file:// one
        src = Path(item).resolve()
        if src == resolved or resolved in src.parents:
            raise ParameterError(f"output folder {out} holds the input {item}: choose another folder")
        if src in resolved.parents and src.is_dir():
            raise ParameterError(f"output folder {out} is inside the input {item}: choose another folder")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output folder {out} is a file, expected a folder")
    return out


def check_output_dir(path, *, kind: str, force: bool = False, inputs: Iterable = (),
                     files: Sequence[str] | None = None, allowed: Callable[[str], bool] | None = None,
                     progress: Callable[[str], object] | None = None) -> Path:
    """Check, before any work, that ``path`` may receive a command's outputs.

    Refused in one line: everything :func:`check_output_name` refuses.  An existing folder is
    accepted when it is empty, or when none of ``files`` (the names the command writes) is in
    it, or when it holds an interrupted run of the same ``kind`` (resumed); otherwise only with
    ``force``, and then only when it is a clusterlob output of the same ``kind`` -- so
    ``--force`` never deletes or replaces what clusterlob did not write.  When the command
    replaces the whole folder (``files=None``), ``allowed(name)`` says which top-level names
    clusterlob writes there; any other name is refused, even with ``force``.  Temporary files
    a killed run left beside the outputs are removed (and reported through ``progress``).
    """
    out = check_output_name(path, inputs=inputs)
    if not out.exists():
        return out
    _clean_temp_files(out, files, progress)
    present = sorted(p.name for p in out.iterdir() if p.name != MARKER_FILE)
    clashing = present if files is None else [n for n in files if (out / n).exists()]
    if not clashing:
        return out
    if interrupted_output(out, kind):
        if progress is not None:
            progress(f"{out}: resuming an interrupted {kind} run (its files are replaced)")
        return out
    if not force:
        shown = ", ".join(clashing[:4]) + (" ..." if len(clashing) > 4 else "")
        raise ParameterError(f"output folder {out} already has {shown} (use --force to replace)")
    found = output_kind(out)
    if found != kind:
        what = f"a clusterlob {found} output" if found else "not a clusterlob output"
        raise ParameterError(f"--force replaces only a clusterlob {kind} output, and {out} is {what}: "
                             f"nothing was touched; choose another folder")
    if files is None and allowed is not None:
        foreign = [n for n in present if not allowed(n)]
        if foreign:
            shown = ", ".join(foreign[:4]) + (" ..." if len(foreign) > 4 else "")
            raise ParameterError(f"--force would delete {out}, which also holds {shown} that clusterlob did "
                                 f"not write: nothing was touched; move them or choose another folder")
    return out


def _clean_temp_files(out: Path, files, progress) -> None:
    """Remove ``.NAME.tmp-*`` files (an atomic write cut short by a kill) of the names the
    command writes, and inside the folders it writes (``models/``), unless the process that
    wrote the folder still runs."""
    doc = output_marker(out)
    if doc is not None and doc.get("state") == "writing" and _pid_alive(doc.get("pid")):
        return
    names = set(files) if files is not None else None
    folders = [out] + [out / n for n in (names or ()) if (out / n).is_dir()]
    for folder in folders:
        for p in folder.iterdir():
            name = p.name
            if not (name.startswith(".") and ".tmp-" in name and p.is_file()):
                continue
            base = name[1:name.index(".tmp-")]
            if folder == out and names is not None and base not in names and base != MARKER_FILE:
                continue
            try:
                p.unlink()
            except OSError:
                continue
            if progress is not None:
                progress(f"removed {p}, a temporary file left by an interrupted run")


def mark_output_dir(path, kind: str, **extra) -> Path:
    """Mark a folder as a clusterlob output of ``kind`` (what :func:`check_output_dir` looks for)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    from . import __version__
    doc = {"kind": kind, "written_by": f"clusterlob {__version__}", **extra}
    return write_text(path / MARKER_FILE, json.dumps(doc, indent=2) + "\n", force=True)


def begin_output(path, kind: str) -> Path:
    """Mark ``path`` as a ``kind`` output being written by this process (before its first file)."""
    return mark_output_dir(path, kind, state="writing", pid=os.getpid())


def finish_output(path, kind: str, files: Iterable = ()) -> Path:
    """Mark ``path`` as a complete ``kind`` output (after its last file), listing ``files``."""
    root = Path(path)
    names = sorted({str(Path(f).relative_to(root)) if Path(f).parts[:len(root.parts)] == root.parts
                    else str(f) for f in files})
    return mark_output_dir(path, kind, state="complete", files=names)


def require_complete_output(path, kind: str) -> dict:
    """The marker of a complete ``kind`` output at ``path``, for a command that reads another's
    results: an interrupted run (``state: writing``), a missing listed file or another kind is
    one line, so half a set of results is never taken for a whole one."""
    doc = output_marker(path)
    if doc is None or doc.get("kind") != kind:
        found = f"a clusterlob {doc.get('kind')} output" if doc and doc.get("kind") else "not a clusterlob output"
        raise ParameterError(f"{path} is {found}, expected the results of a {kind} run")
    if doc.get("state") != "complete":
        raise ParameterError(f"{path} holds an interrupted {kind} run: rerun the same command to complete it")
    files = doc.get("files", [])
    missing = [f for f in files if not (Path(path) / str(f)).is_file()] if isinstance(files, list) else ["files"]
    if missing:
        raise ParameterError(f"{path}: the {kind} results lack {', '.join(map(str, missing[:4]))}: rerun the command")
    return doc


# -- staging folders --------------------------------------------------------------------------------

def staging_dir(target) -> Path:
    """A new staging folder beside ``target`` (``.NAME.clusterlob-staging-PID-XXXX``), tagged with
    this process's id so that :func:`clean_staging` can tell a leftover from a running write."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.clusterlob-staging-{os.getpid()}-", dir=target.parent))
    (tmp / _STAGING_TAG).write_text(json.dumps({"pid": os.getpid(), "target": target.name}) + "\n")
    return tmp


def _folder_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return total


def clean_staging(target, progress: Callable[[str], object] | None = None) -> list[Path]:
    """Remove the staging folders a killed run left beside ``target`` (and the ``.NAME.old-PID``
    folder of a replacement cut short); one still in use by a running process is left and
    reported.  Only folders carrying clusterlob's staging tag (or, for older versions, holding
    only a tape's staging layout) are touched.  Returns the folders removed."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return []
    removed = []
    prefixes = (f".{target.name}.clusterlob-staging-", f".{target.name}.tmp-", f".{target.name}.old-")
    for p in sorted(parent.iterdir()):
        if not p.name.startswith(prefixes) or not p.is_dir() or p.is_symlink():
            continue
        tag = _read_json(p / _STAGING_TAG)
        if isinstance(tag, dict):
            pid = tag.get("pid")
        elif p.name.startswith(prefixes[2]) and output_kind(p) == "tape":
            pid = _pid_of(p.name)
        elif p.name.startswith(prefixes[1]) and {q.name for q in p.iterdir()} <= {"_stage", "trades", "book",
                                                                                    "manifest.json"}:
            pid = None          # an older version's staging folder: no pid recorded
        else:
            continue            # not ours: never touched
        if _pid_alive(pid) and pid != os.getpid():
            if progress is not None:
                progress(f"left {p}: a staging folder in use by running process {pid}")
            continue
        size = _folder_bytes(p)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
        if progress is not None:
            progress(f"removed {p} ({size / 1e6:.1f} MB), left by an interrupted run")
    return removed


def _pid_of(name: str):
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def replace_dir(staged, target) -> None:
    """Move a finished staging folder onto ``target`` (an existing ``target`` is replaced: the
    caller checked with :func:`check_output_dir` that it may be).  The staging tag is dropped."""
    staged, target = Path(staged), Path(target)
    (staged / _STAGING_TAG).unlink(missing_ok=True)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        try:
            os.replace(staged, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)


# -- memory ------------------------------------------------------------------------------------------

def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``, else None)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(what: str, need_bytes: float, *, available: int | None = None) -> None:
    """Refuse in one line, before allocating, a job whose estimated memory (``need_bytes``, from
    its arguments) exceeds the memory available: "synth needs about 1.2 TB ...".

    ``CLUSTERLOB_MEMORY_LIMIT`` (bytes) overrides the machine's figure (tests use it)."""
    limit = os.environ.get("CLUSTERLOB_MEMORY_LIMIT")
    if limit:
        try:
            available = int(float(limit))
        except ValueError:
            raise ParameterError(f"CLUSTERLOB_MEMORY_LIMIT must be a number of bytes, got {limit!r}") from None
    elif available is None:
        available = available_memory()
    if available is None or not math.isfinite(need_bytes) or need_bytes <= available:
        if math.isfinite(need_bytes):
            return
    raise ParameterError(f"{what} needs about {_human(need_bytes)} of memory, more than the "
                         f"{_human(available) if available is not None else 'unknown amount'} available: "
                         f"reduce the size")


def _human(n: float) -> str:
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000.0
    return f"{n:.1f} PB"


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

@overload
def check_int(name: str, value: object, lo: int | None = None, hi: int | None = None, *,
              none_ok: Literal[False] = False) -> int: ...
@overload
def check_int(name: str, value: object, lo: int | None = None, hi: int | None = None, *,
              none_ok: bool) -> int | None: ...
def check_int(name: str, value: object, lo: int | None = None, hi: int | None = None, *,
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
