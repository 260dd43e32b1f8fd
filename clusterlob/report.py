"""Report writers: Markdown, CSV and JSON files, written atomically; results as Arrow tables.

Every writer puts the content in a temporary file beside the target and renames it into
place (``os.replace``), so a reader never sees half a file, and refuses to replace an
existing file unless ``overwrite=True`` (a CLI's ``--force``).  Values are converted for
JSON and CSV once, here: NumPy scalars and arrays become Python numbers and lists, and
NaN / inf become ``null`` (JSON) or an empty cell (CSV).

:func:`arrow_table` and :func:`rows_to_arrow` are what every result's ``to_arrow()`` uses, so a
pandas or polars user gets a data frame in one call (``result.fills.to_arrow().to_pandas()``,
``polars.from_arrow(...)``) without the package importing either.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from ._typing import PathLike
from .errors import ParameterError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["write_text", "write_markdown", "write_csv", "write_json", "to_jsonable",
           "markdown_table", "format_value", "arrow_table", "rows_to_arrow"]


def _check_target(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"output {path} is a directory, expected a file path")
    if path.exists() and not overwrite:
        raise ParameterError(f"output file {path} exists (use --force / overwrite=True to replace it)")
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_text(path: PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; create the folder if needed."""
    path = _check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the user's usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_markdown(path: PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write a Markdown document atomically (a final newline is added if missing)."""
    return write_text(path, text if text.endswith("\n") else text + "\n", overwrite=overwrite)


def format_value(value: Any, digits: int = 4) -> str:
    """A cell for CSV / Markdown: floats with ``digits`` significant decimals, NaN empty."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return ""
        return f"{float(value):.{digits}f}"
    return "" if value is None else str(value)


def write_csv(path: PathLike, header: Sequence[str], rows: Iterable[Sequence], *, overwrite: bool = False,
              digits: int = 6) -> Path:
    """Write a CSV table (header row, then ``rows``) atomically.

    Floats are written with ``digits`` decimals, NaN / inf / None as an empty cell.
    Every row must have as many cells as ``header``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(header))
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ParameterError(f"csv row {i} has {len(row)} cells, the header has {len(header)}")
        writer.writerow([format_value(v, digits) for v in row])
    return write_text(path, buf.getvalue(), overwrite=overwrite)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with NumPy values as Python ones, tuples as lists, non-finite floats as None."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: PathLike, obj: Any, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`to_jsonable` for conversions)."""
    try:
        text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    except TypeError as exc:
        raise ParameterError(f"cannot write {path} as JSON: {exc}") from None
    return write_text(path, text + "\n", overwrite=overwrite)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence], *, digits: int = 2,
                   align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` per column is "l" or "r" (numbers "r")."""
    rows = [[format_value(v, digits) for v in row] for row in rows]
    if align is None:
        align = ["l"] * len(header)
    if len(align) != len(header):
        raise ParameterError(f"`align` has {len(align)} entries for {len(header)} columns")
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- Arrow tables -------------------------------------------------------------------------------

def arrow_table(columns: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> "pa.Table":
    """A ``pyarrow.Table`` of named one-dimensional columns, in the mapping's order.

    NumPy arrays keep their dtype (int8 stays int8, float64 NaN stays NaN, not null); Python
    sequences are inferred by Arrow (None becomes null).  ``metadata`` goes into the schema.
    """
    import pyarrow as pa
    arrays = []
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.ndim != 1:
            raise ParameterError(f"column `{name}` must be one-dimensional, got shape {values.shape}")
        arrays.append(pa.array(values))
    return pa.table(arrays, names=list(columns), metadata=dict(metadata) if metadata else None)


def rows_to_arrow(rows: Sequence[Any], names: Sequence[str],
                  metadata: Mapping[str, str] | None = None) -> "pa.Table":
    """A ``pyarrow.Table`` with one row per record of ``rows`` (dataclasses or named tuples) and
    one column per attribute in ``names`` (kept, with type null, when ``rows`` is empty)."""
    return arrow_table({name: [_arrow_value(getattr(r, name)) for r in rows] for name in names}, metadata)


def _arrow_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_arrow_value(v) for v in value]
    return value
