"""Throughput of the Binance recording reader: messages per second over a real recording.

::

    python tools/bench_binance.py [RECORDING] [--repeat 5]

Prints, for each repetition and as the median and best: the reader alone (every line read,
parsed, the book rebuilt, trades and 25-level snapshots produced and validated), and the
whole ``clusterlob.convert`` (the same plus the tape written to a temporary directory).
For scale it also times a bare ``json.loads`` of every line.  The default recording is
``../shared/data/binance-futures/btcusdt_20240808.gz`` beside the project.  The machine may be
shared: repeat and read the median, and note the load average printed at the end.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"


def reader_pass(path: Path) -> tuple[float, int]:
    from clusterlob.tape.readers import ReaderOptions
    from clusterlob.tape.readers.binance import BinanceReader
    from clusterlob.tape.validate import FileReport

    started = time.perf_counter()
    report = FileReport(str(path), BinanceReader.format_name)
    for _ in BinanceReader(path, ReaderOptions(), report).batches():
        pass
    return time.perf_counter() - started, report.rows_read


def convert_pass(path: Path) -> float:
    from clusterlob.convert import convert

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        convert([path], Path(tmp) / "tape")
        return time.perf_counter() - started


def json_pass(path: Path) -> float:
    started = time.perf_counter()
    with gzip.open(path, "rb") as f:
        for line in f:
            json.loads(line.partition(b" ")[2])
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    path = Path(args.recording)
    if not path.exists():
        print(f"error: recording {path} does not exist", file=sys.stderr)
        return 2
    rows = {"reader": [], "convert": [], "json.loads only": []}
    messages = 0
    for k in range(args.repeat):
        secs, messages = reader_pass(path)
        rows["reader"].append(messages / secs)
        rows["convert"].append(messages / convert_pass(path))
        rows["json.loads only"].append(messages / json_pass(path))
        print(f"run {k + 1}: " + ", ".join(f"{name} {v[-1]:,.0f}/s" for name, v in rows.items()), flush=True)
    print(f"{path.name}: {messages:,} messages, {args.repeat} runs (messages per second)")
    for name, values in rows.items():
        print(f"  {name:<16} median {statistics.median(values):>10,.0f}   best {max(values):>10,.0f}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
