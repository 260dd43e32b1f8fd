"""Seeded corruption fuzz of the readers: mutants of every input format, and the oracle.

A mutant is a function of its seed alone: ``mutant(seed)`` picks a seed file (the project's
fixtures, and the real samples in ../shared/data when present), a mutation and its place, and
returns the bytes to convert.  :func:`outcome` runs ``convert`` in process and classifies the
result:

``converted``  a tape whose counts add up: per file, rows read = kept + counted drops (line
               formats where one line is not one row: kept + drops <= lines read), the
               manifest's totals = the rows kept = the rows read back from the tape;
``refused``    a one-line :class:`~clusterlob.errors.ClusterlobError`;
anything else  a failure, reported with the seed (rerun one with ``mutant(seed)``).

Used by ``tests/test_fuzz_readers.py``; ``CLUSTERLOB_FUZZ_MUTANTS=N`` sets how many run, and
``python tests/fuzz_mutants.py N [FIRST_SEED]`` runs a long pass and prints the counts.
"""
from __future__ import annotations

import gzip
import io
import json
import random
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import os  # noqa: E402

SHARED = Path(os.environ.get("CLUSTERLOB_SHARED_DATA") or ROOT.parent / "shared" / "data")

HOSTILE_TEXT = ["nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e300", "1e-300", "abc", "", " ", "1,5", "1_00.10",
                "9" * 26, "0x10", "1e25", "18446744073709551616", "-9223372036854775809", "null", "true",
                " 12", "12 ", "\"5\"", "1.5.2", "--1", "+-2", "１２"]
HOSTILE_JSON = [2 ** 64, 2 ** 63, -(2 ** 63) - 1, 1e25, -1, 0, None, True, False, "abc", "", "1_00.10", "nan",
                "1e400", [], {}, [["1", "2"]], [[1]], [["x", "y"]], 1.5, "  7", "9" * 26, -1e-300]
RAW_JSON_TOKENS = ["1e400", "-1e400", "NaN", "Infinity", "1" * 30, "-" + "9" * 25]


@dataclass
class Seed:
    name: str            # file name to write the mutant as (suffix matters to no reader)
    data: bytes          # decompressed content (gz seeds are re-compressed after mutation)
    kind: str            # csv, binance, parquet
    gz: bool
    options: dict        # convert() keyword arguments this seed needs


def _fixture_seeds() -> list[Seed]:
    seeds = []
    d = ROOT / "data"
    for p in sorted((d / "tardis").glob("*")):
        raw = p.read_bytes()
        gz = raw[:2] == b"\x1f\x8b"
        seeds.append(Seed(p.name, gzip.decompress(raw) if gz else raw, "csv", gz, {}))
    for p in sorted((d / "parquet").glob("*.parquet")):
        opts = {"price_increment": 0.1, "amount_increment": 0.001} if "pointline" in p.name else {}
        seeds.append(Seed(p.name, p.read_bytes(), "parquet", False, opts))
    for p in sorted((d / "binance").glob("*.txt")):
        opts = {"symbol": "BTCUSDT"} if "mixed" in p.name else {}
        seeds.append(Seed(p.name, p.read_bytes(), "binance", False, {**opts, "skip_bad": "malformed" in p.name}))
    for p in sorted((SHARED / "tardis").glob("*.csv")) if (SHARED / "tardis").is_dir() else []:
        seeds.append(Seed("real_" + p.name, p.read_bytes(), "csv", False, {}))
    real = SHARED / "binance-futures" / "btcusdt_20240808.gz"
    if real.is_file():
        with gzip.open(real, "rb") as f:
            head = f.read(400_000)
        head = head[:head.rfind(b"\n") + 1]
        seeds.append(Seed("real_btcusdt.gz", head, "binance", True, {}))
    return seeds


SEEDS = _fixture_seeds()


# -- mutations ------------------------------------------------------------------------------

def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _csv_rows(data: bytes):
    lines = data.decode("utf-8", "replace").split("\n")
    return [ln.split(",") for ln in lines]


def _join_csv(rows) -> bytes:
    return "\n".join(",".join(r) for r in rows).encode()


def m_truncate(rng, s):
    n = rng.randrange(0, max(1, len(s.data)))
    return s.data[:n], f"truncate at {n}"


def m_flip(rng, s):
    b = bytearray(s.data)
    k = rng.randint(1, 6)
    for _ in range(k):
        if b:
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
    return bytes(b), f"{k} byte flips"


def m_line_delete(rng, s):
    ls = _lines(s.data)
    i = rng.randrange(len(ls))
    return b"\n".join(ls[:i] + ls[i + 1:]), f"delete line {i}"


def m_line_dup(rng, s):
    ls = _lines(s.data)
    i = rng.randrange(len(ls))
    return b"\n".join(ls[:i + 1] + ls[i:]), f"duplicate line {i}"


def m_line_swap(rng, s):
    ls = _lines(s.data)
    i, j = rng.randrange(len(ls)), rng.randrange(len(ls))
    ls[i], ls[j] = ls[j], ls[i]
    return b"\n".join(ls), f"swap lines {i},{j}"


def m_empty(rng, s):
    return (b"", "empty") if rng.random() < 0.5 else (_lines(s.data)[0] + b"\n", "header/first line only")


def m_csv_cell(rng, s):
    rows = _csv_rows(s.data)
    if len(rows) < 2:
        return s.data, "noop"
    r = rng.randrange(1, len(rows))
    if not rows[r] or rows[r] == [""]:
        return s.data, "noop"
    c = rng.randrange(len(rows[r]))
    v = rng.choice(HOSTILE_TEXT)
    rows[r][c] = v
    return _join_csv(rows), f"cell row {r} col {c} = {v!r}"


def m_csv_column(rng, s):
    rows = _csv_rows(s.data)
    head = rows[0]
    c = rng.randrange(len(head))
    op = rng.choice(["drop", "rename", "space", "quote", "dup", "retype"])
    if op == "drop":
        rows = [r[:c] + r[c + 1:] if len(r) > c else r for r in rows]
    elif op == "rename":
        head[c] = head[c] + "x"
    elif op == "space":
        head[c] = " " + head[c] + " "
    elif op == "quote":
        rows[0] = [f'"{h}"' for h in head]
    elif op == "dup":
        head[c] = head[(c + 1) % len(head)]
    else:
        v = rng.choice(HOSTILE_TEXT)
        for r in rows[1:]:
            if len(r) > c and r != [""]:
                r[c] = v
        op += f" to {v!r}"
    return _join_csv(rows), f"column {c} {op}"


def m_csv_time_back(rng, s):
    rows = _csv_rows(s.data)
    head = rows[0]
    names = [h for h in ("timestamp", "local_timestamp") if h in head]
    if not names or len(rows) < 3:
        return s.data, "noop"
    c = head.index(rng.choice(names))
    r = rng.randrange(1, len(rows))
    if len(rows[r]) > c and rows[r][c].isdigit():
        rows[r][c] = str(int(rows[r][c]) - rng.choice([1, 10 ** 6, 10 ** 9, 86_400 * 10 ** 6]))
    return _join_csv(rows), f"time backwards row {r}"


def m_csv_crossed(rng, s):
    rows = _csv_rows(s.data)
    head = rows[0]
    if "bids[0].price" not in head or len(rows) < 2:
        return m_csv_cell(rng, s)
    r = rng.randrange(1, len(rows))
    b, a = head.index("bids[0].price"), head.index("asks[0].price")
    if len(rows[r]) > max(a, b):
        rows[r][b], rows[r][a] = rows[r][a], rows[r][b]
    return _join_csv(rows), f"crossed book row {r}"


def m_csv_symbol(rng, s):
    rows = _csv_rows(s.data)
    if "symbol" not in rows[0] or len(rows) < 2:
        return s.data, "noop"
    c = rows[0].index("symbol")
    r = rng.randrange(1, len(rows))
    if len(rows[r]) > c:
        rows[r][c] = rng.choice(["ETHUSDT", "", "btcusdt"])
    return _join_csv(rows), f"symbol row {r}"


def _json_lines(s):
    out = []
    for ln in _lines(s.data):
        head, _, body = ln.partition(b" ")
        try:
            out.append((head, json.loads(body)))
        except ValueError:
            out.append((ln, None))
    return out


def m_json_field(rng, s):
    items = _json_lines(s)
    idx = [i for i, (_, m) in enumerate(items) if isinstance(m, dict)]
    if not idx:
        return m_flip(rng, s)
    i = rng.choice(idx)
    head, msg = items[i]
    d = msg["data"] if isinstance(msg.get("data"), dict) else msg
    key = rng.choice(sorted(d))
    raw = rng.random() < 0.25
    value = rng.choice(RAW_JSON_TOKENS) if raw else rng.choice(HOSTILE_JSON)
    d[key] = "@@RAW@@" if raw else value
    body = json.dumps(msg).replace('"@@RAW@@"', value) if raw else json.dumps(msg)
    lines = _lines(s.data)
    lines[i] = head + b" " + body.encode()
    return b"\n".join(lines), f"line {i} `{key}` = {value!r}"


def m_json_time(rng, s):
    lines = _lines(s.data)
    i = rng.randrange(len(lines))
    head, sep, body = lines[i].partition(b" ")
    choice = rng.choice(["back", "26digits", "neg", "text", "ms"])
    if head.isdigit():
        new = {"back": str(int(head) - 10 ** 12).encode(), "26digits": b"9" * 26, "neg": b"-" + head,
               "text": b"abc", "ms": head[:-6]}[choice]
        lines[i] = new + sep + body
    return b"\n".join(lines), f"line {i} receive time {choice}"


def m_json_symbol(rng, s):
    lines = _lines(s.data)
    i = rng.randrange(len(lines))
    lines[i] = lines[i].replace(b'"BTCUSDT"', b'"ETHUSDT"')
    return b"\n".join(lines), f"line {i} other symbol"


def _table(s) -> pa.Table:
    return pq.read_table(io.BytesIO(s.data))


def _write(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def _hostile_array(rng, col: pa.ChunkedArray) -> pa.Array:
    n = len(col)
    t = col.type
    pick = rng.choice(["nan", "inf", "neg", "zero", "huge", "null", "text", "time_unit", "back"])
    if pick == "text" or pa.types.is_string(t) or pa.types.is_dictionary(t):
        vals = [str(v) for v in col.to_pylist()]
        vals[rng.randrange(n)] = rng.choice(HOSTILE_TEXT)
        return pa.array(vals, pa.string()), f"text {pick}"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        vals = col.to_pylist()
        j = rng.randrange(n)
        vals[j] = rng.choice([[], None, [0], [-5, 3], [2 ** 62, 1], list(range(40))])
        return pa.array(vals, t), "list value"
    if pick == "time_unit":
        unit = rng.choice(["s", "ms", "us", "ns"])
        v = col.to_numpy(zero_copy_only=False).astype(np.int64)
        scale = {"s": 10 ** -6, "ms": 10 ** -3, "us": 1, "ns": 1000}[unit]
        return pa.array((v * scale).astype(np.int64), pa.timestamp(unit)), f"typed timestamp {unit}"
    v = col.to_numpy(zero_copy_only=False).astype(np.float64 if pa.types.is_floating(t) else np.int64).copy()
    j = rng.randrange(n)
    if pick == "null":
        mask = np.zeros(n, bool)
        mask[j] = True
        return pa.array(v, mask=mask), "null"
    if pa.types.is_floating(t):
        v[j] = {"nan": np.nan, "inf": np.inf, "neg": -v[j], "zero": 0.0, "huge": 1e300, "back": v[j] - 1}[pick]
    else:
        v[j] = {"nan": 0, "inf": np.iinfo(np.int64).max, "neg": -v[j], "zero": 0, "huge": np.iinfo(np.int64).max,
                "back": v[j] - 10 ** 9}[pick]
    return pa.array(v), pick


def m_parquet_column(rng, s):
    t = _table(s)
    names = t.column_names
    c = rng.randrange(len(names))
    op = rng.choice(["drop", "rename", "retype", "values", "values", "values", "empty", "symbol", "backwards",
                     "float_to_string"])
    if op == "drop":
        t = t.drop_columns([names[c]])
    elif op == "rename":
        t = t.rename_columns([n + "x" if i == c else n for i, n in enumerate(names)])
    elif op == "retype":
        target = rng.choice([pa.string(), pa.float32(), pa.int32(), pa.bool_(), pa.float64()])
        try:
            t = t.set_column(c, names[c], pc.cast(t.column(c), target, safe=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            t = t.set_column(c, names[c], pa.array([str(v) for v in t.column(c).to_pylist()]))
        op += f" {target}"
    elif op == "values":
        arr, what = _hostile_array(rng, t.column(c))
        t = t.set_column(c, names[c], arr)
        op += f" {what}"
    elif op == "empty":
        t = t.slice(0, 0)
    elif op == "symbol" and "symbol" in names:
        vals = [str(v) for v in t.column("symbol").to_pylist()]
        vals[rng.randrange(len(vals))] = "ETHUSDT"
        t = t.set_column(names.index("symbol"), "symbol", pa.array(vals))
    elif op == "backwards":
        t = t.take(pa.array(np.arange(t.num_rows)[::-1].copy()))
    elif op == "float_to_string":
        t = t.set_column(c, names[c], pa.array([str(v) for v in t.column(c).to_pylist()]))
    return _write(t), f"parquet column {names[c]!r} {op}"


CSV_OPS = [m_truncate, m_flip, m_line_delete, m_line_dup, m_line_swap, m_empty, m_csv_cell, m_csv_cell,
           m_csv_column, m_csv_column, m_csv_time_back, m_csv_crossed, m_csv_symbol]
BINANCE_OPS = [m_truncate, m_flip, m_line_delete, m_line_dup, m_line_swap, m_empty, m_json_field, m_json_field,
               m_json_field, m_json_time, m_json_symbol]
PARQUET_OPS = [m_truncate, m_flip, m_parquet_column, m_parquet_column, m_parquet_column, m_parquet_column]


def mutant(seed: int):
    """``(file name, bytes, convert options, description)`` of mutant ``seed``."""
    rng = random.Random(seed)
    s = rng.choice(SEEDS)
    ops = {"csv": CSV_OPS, "binance": BINANCE_OPS, "parquet": PARQUET_OPS}[s.kind]
    data, what = s.data, []
    for _ in range(1 if rng.random() < 0.8 else 2):
        op = rng.choice(ops)
        cur = Seed(s.name, data, s.kind, s.gz, s.options)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                data, desc = op(rng, cur)
        except (pa.ArrowException, OSError, ValueError):    # e.g. an already damaged Parquet
            data, desc = m_flip(rng, cur)
        what.append(f"{op.__name__[2:]}: {desc}")
    if s.gz:
        if rng.random() < 0.15:
            z = gzip.compress(data, mtime=0)
            data, gz_note = z[:rng.randrange(len(z) + 1)], "gzip truncated"
            return s.name, data, dict(s.options), f"{s.name}: {'; '.join(what)}; {gz_note}"
        data = gzip.compress(data, mtime=0)
    return s.name, data, dict(s.options), f"{s.name}: {'; '.join(what)}"


# -- the oracle ------------------------------------------------------------------------------

_LINE_FORMATS = ("binance",)


def outcome(seed: int, work: Path) -> tuple[str, str]:
    """Run mutant ``seed`` through ``convert`` in process: ``("converted"|"refused"|"FAIL", detail)``."""
    import shutil
    try:
        return _outcome(seed, work)
    finally:
        shutil.rmtree(work / f"m{seed}", ignore_errors=True)


def _outcome(seed: int, work: Path) -> tuple[str, str]:
    from clusterlob.errors import ClusterlobError
    from clusterlob.tape.convert import convert
    from clusterlob.tape.store import read_tape

    name, data, options, what = mutant(seed)
    folder = work / f"m{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    out = folder / "tape"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")        # a warning printed to the user is a failure too
            result = convert([path], out, **options)
    except ClusterlobError as exc:
        msg = str(exc)
        if "\n" in msg or not msg.strip():
            return "FAIL", f"seed {seed} ({what}): error is not one line: {msg!r}"
        return "refused", msg
    except Exception:  # noqa: BLE001 - the point of the fuzz: anything else is a failure
        tb = traceback.format_exc().strip().splitlines()
        return "FAIL", f"seed {seed} ({what}): {tb[-1]} at {tb[-3].strip() if len(tb) > 2 else ''}"
    finally:
        path.unlink(missing_ok=True)
    try:
        rep = result.report.files[0]
        kept = rep.trades_kept + rep.book_kept
        dropped = sum(rep.dropped.values())
        line_format = any(k in rep.format for k in ("binance",))
        if (kept + dropped > rep.rows_read) if line_format else (kept + dropped != rep.rows_read):
            return "FAIL", (f"seed {seed} ({what}): rows read {rep.rows_read} != kept {kept} + dropped {dropped} "
                            f"{rep.dropped}")
        totals = result.manifest["totals"]
        if (totals["trades"], totals["book"]) != (rep.trades_kept, rep.book_kept):
            return "FAIL", f"seed {seed} ({what}): manifest totals {totals} != kept {rep.trades_kept}, {rep.book_kept}"
        tape = read_tape(out)
        if (len(tape.trades), len(tape.book)) != (totals["trades"], totals["book"]):
            return "FAIL", f"seed {seed} ({what}): tape holds {len(tape.trades)}, {len(tape.book)} != {totals}"
        for col in (tape.trades.price, tape.trades.amount):
            if col.size and not (np.isfinite(col).all() and (col > 0).all()):
                return "FAIL", f"seed {seed} ({what}): a non-finite or non-positive price or amount was kept"
    except ClusterlobError as exc:
        return "FAIL", f"seed {seed} ({what}): the converted tape does not read back: {exc}"
    return "converted", ""


def run(n: int, first: int = 0, work: Path | None = None) -> dict:
    """Run ``n`` mutants from seed ``first``; counts per outcome and the failures."""
    counts = {"converted": 0, "refused": 0, "FAIL": 0}
    by_format: dict = {}
    failures = []
    with tempfile.TemporaryDirectory(prefix="clusterlob-fuzz-") as tmp:
        work = Path(work or tmp)
        for seed in range(first, first + n):
            kind, detail = outcome(seed, work)
            counts[kind] += 1
            fmt = seed_format(seed)
            by_format.setdefault(fmt, {"converted": 0, "refused": 0, "FAIL": 0})[kind] += 1
            if kind == "FAIL":
                failures.append(detail)
    return {"counts": counts, "by_format": by_format, "failures": failures}


def seed_format(seed: int) -> str:
    """The input format of mutant ``seed`` (csv, parquet or binance), without building it."""
    return random.Random(seed).choice(SEEDS).kind


if __name__ == "__main__":
    import time
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    t0 = time.perf_counter()
    res = run(n, first)
    for f in res["failures"][:50]:
        print(f)
    print(f"{n} mutants from seed {first} over {len(SEEDS)} seed files in {time.perf_counter() - t0:.1f} s: "
          f"{res['counts']['converted']} converted, {res['counts']['refused']} refused in one line, "
          f"{res['counts']['FAIL']} failed")
    for fmt, c in sorted(res["by_format"].items()):
        print(f"  {fmt}: {sum(c.values())} mutants, {c['converted']} converted, {c['refused']} refused, "
              f"{c['FAIL']} failed")
