"""Show that a restructuring changed no result: run the same commands with two source trees and
compare every output file and printed report, ignoring only timings and the trees' own paths.

    python tools/same_outputs.py --old /path/to/old/checkout --new . [--work DIR]
                                 [--recording ../shared/data/binance-futures/btcusdt_20240808.gz]

Each tree must have its extension built in place (``python setup.py build_ext --inplace`` or an
editable install); the commands run with ``PYTHONPATH`` set to the tree, in a subprocess, as a
user runs them.  Prints one line per compared file, ``same`` or ``DIFF``, then the counts; the
exit status is 1 if any file differs.  Commands that fail in one tree and not the other show
as a difference of their stderr file.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORDING = ROOT.parent / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"

# (name of the captured stdout, arguments); {out}, {src} and {rec} are filled in per tree
COMMANDS = [
    ("convert.txt", ["clusterlob.convert", "{rec}", "--out", "{out}/tape"]),
    ("cluster.txt", ["clusterlob.cluster", "{out}/tape", "--out", "{out}/cluster"]),
    ("replay_recording.json", ["clusterlob.replay", "--tape", "{out}/tape", "--model", "{out}/cluster/model.json",
                               "--json"]),
    ("replay_online_recording.json", ["clusterlob.replay", "--online", "--tape", "{rec}", "--model",
                                      "{out}/cluster/model.json", "--tick-size", "0.1", "--json"]),
    ("replay_default.json", ["clusterlob.replay", "--json"]),
    ("replay_compare.txt", ["clusterlob.replay", "--compare"]),
    ("replay_online_compare.txt", ["clusterlob.replay", "--online", "--compare"]),
    ("cluster_default.txt", ["clusterlob.cluster", "{src}/data/default_tape", "--out", "{out}/cluster_default"]),
    ("ic.txt", ["clusterlob.ic", "{src}/data/default_tape", "--model", "{out}/cluster_default/model.json",
                "--out", "{out}/ic"]),
    ("features.json", ["clusterlob.features", "{src}/data/default_tape", "--json"]),
]
_TIMING = [(re.compile(r'"seconds": [0-9.eE+-]+'), '"seconds": T'),
           (re.compile(r"\b[0-9]+(\.[0-9]+)? ?s\b"), "T s"),
           (re.compile(r"\([0-9,]+ rows/s\)"), "(R rows/s)")]


def run_tree(src: Path, out: Path, rec: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    for name, args in COMMANDS:
        argv = [a.format(out=out, src=src, rec=rec) for a in args]
        with open(out / name, "w") as stdout, open(out / (name + ".stderr"), "w") as stderr:
            subprocess.run([sys.executable, "-m", *argv], stdout=stdout, stderr=stderr, env=env, cwd=out)


def normalised(path: Path, tree: Path, src: Path) -> str:
    text = path.read_text(errors="replace").replace(str(tree), "OUT").replace(str(src), "SRC")
    for pattern, repl in _TIMING:
        text = pattern.sub(repl, text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True, help="source tree before the change")
    p.add_argument("--new", type=Path, default=ROOT, help="source tree after the change (default: this one)")
    p.add_argument("--work", type=Path, default=None, help="folder for both runs' outputs (default: a new temp folder)")
    p.add_argument("--recording", type=Path, default=DEFAULT_RECORDING, help="a raw Binance recording")
    args = p.parse_args(argv)
    if not args.recording.is_file():
        print(f"error: recording {args.recording} not found (give --recording)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="same-outputs-"))
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tag, src in trees.items():
        print(f"running the commands with {tag} = {src}", file=sys.stderr)
        run_tree(src, work / tag, args.recording.resolve())
    same = differ = 0
    for f in sorted((work / "old").rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(work / "old")
        g = work / "new" / rel
        if f.suffix == ".parquet":
            ok = g.is_file() and _parquet_equal(f, g)
        else:
            ok = g.is_file() and (normalised(f, work / "old", trees["old"]) == normalised(g, work / "new", trees["new"]))
        same += ok
        differ += not ok
        print(f"{'same' if ok else 'DIFF'}  {rel}")
    print(f"{same} files the same, {differ} different (outputs under {work})")
    return 1 if differ else 0


def _parquet_equal(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq
    return pq.read_table(a).equals(pq.read_table(b))


if __name__ == "__main__":
    sys.exit(main())
