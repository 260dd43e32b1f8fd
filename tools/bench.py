"""Time the whole weekly job at the research log's scale: read, features, fit, label, IC, replay.

    python tools/bench.py [--days 7] [--trades-per-day 3950000] [--seed 7] [--compare | --via-cli]
                          [--work DIR] [--json-out FILE]

1. Generates the synthetic tape with ``python -m clusterlob.synth`` (in a child process, timed
   and reported on its own line, NOT part of the pipeline), or reuses the tape under ``--work``
   made earlier with the same arguments (the folder name is the key; its manifest is checked).
2. Runs the pipeline once, day by day as ``python -m clusterlob.cluster`` does, and times each
   stage: read tape (``read_tape`` of one day, only the trade columns and the book levels the
   features use; the stages after the features keep the trade columns and the touch),
   features (``build_features`` with the rolling state carried across days), K-Means++ fit
   (``fit_model``, k 3, n_init 1, on all valid rows), labelling (``label_trades`` per day),
   OFI/IC (``bucket_signals`` on 5-minute buckets, ``ic_table`` pooled and per day,
   ``aggregate_ic``) and replay (``replay_arrays`` over all trades and book updates).
3. Prints a Markdown table (stdout) and writes the same figures as JSON (atomically; default a
   new time-stamped file under ``--work``).  Progress goes to stderr.
4. ``--compare`` (only for packages importable in this interpreter, e.g. /work/venv-bench; never
   needed by the package) then runs scikit-learn's KMeans, a pandas rolling z-score and the
   plain-Python replay reference on the same data and prints the ratios
   (``tools/bench_compare.py``).

Columns: wall and CPU seconds are summed over the stage's calls (CPU = user + system time of
all threads of this process).  "peak RSS" is the highest resident memory of the whole process
while the stage ran (the kernel's high-water mark, reset through /proc/self/clear_refs at the
start of every call), so it includes everything earlier stages still hold; "+RSS" is the most
the stage added over the RSS it started from (its working memory and outputs).  The end-to-end
peak is the highest RSS of the process over the whole pipeline.  Where the reset is not
available, both fall back to the monotone ``getrusage`` maximum and the output says so.

``--via-cli`` runs the commands a user runs instead (``python -m clusterlob.replay`` with the
training day 1 and replay days 2-7, ``python -m clusterlob.cluster``, ``python -m clusterlob.ic``
with the model just fitted), each in its own process, and reports the wall time, CPU time and peak
RSS of each (``os.wait4``: that child alone) with the load average before and after.
See docs/performance.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_kmeans import _reset_peak, _status_kb  # noqa: E402
from clusterlob import __version__  # noqa: E402
from clusterlob.errors import ClusterlobError, ParameterError  # noqa: E402
from clusterlob.features import FeatureSettings, build_features  # noqa: E402
from clusterlob.ic import aggregate_ic, ic_table, window_ic_tables  # noqa: E402
from clusterlob.cluster.model import fit_model, label_trades  # noqa: E402
from clusterlob.replay import replay_arrays  # noqa: E402
from clusterlob.report import markdown_table, write_json  # noqa: E402
from clusterlob.signals import ROLE_GROUPS, BucketGrid, bucket_signals, covered_buckets  # noqa: E402
from clusterlob.replay.strategy import StrategyConfig  # noqa: E402
from clusterlob.tape import read_manifest, read_tape  # noqa: E402

START = "2024-05-01"
BUCKET_US = 300_000_000
HORIZONS = (1, 2, 5)
TARGETS = {"end_to_end_s": 27.5, "peak_rss_gb": 6.5, "replay_events_per_s": 20e6}
GB = 1024 ** 3   # memory figures are GiB (ru_maxrss and /proc report KiB)


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- measuring -------------------------------------------------------------------------------

@dataclass
class StageResult:
    """Accumulated figures of one stage (summed over its per-day calls)."""

    name: str
    items: int = 0
    unit: str = "rows"
    wall_s: float = 0.0
    cpu_s: float = 0.0
    calls: int = 0
    peak_rss_gb: float = 0.0
    added_rss_gb: float = 0.0
    work: str = ""

    @property
    def rate_per_s(self) -> float:
        return self.items / self.wall_s if self.wall_s > 0 else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "rate_per_s": self.rate_per_s}


class Meter:
    """Wall, CPU and memory of named stages; see the module doc for what the memory means."""

    def __init__(self):
        self.can_reset = _reset_peak()
        self.stages: dict[str, StageResult] = {}
        self.process_peak_kb = 0

    def _hwm_kb(self) -> int:
        if self.can_reset:
            return _status_kb("VmHWM")
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def note_peak(self) -> int:
        self.process_peak_kb = max(self.process_peak_kb, self._hwm_kb())
        return self.process_peak_kb

    @contextmanager
    def stage(self, name: str):
        self.note_peak()                       # glue since the last stage counts for the process peak
        if self.can_reset:
            _reset_peak()
        rss0 = _status_kb("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            peak = self._hwm_kb()
            self.process_peak_kb = max(self.process_peak_kb, peak)
            s = self.stages.setdefault(name, StageResult(name))
            s.wall_s += wall
            s.cpu_s += cpu
            s.calls += 1
            s.peak_rss_gb = max(s.peak_rss_gb, peak * 1024 / GB)
            s.added_rss_gb = max(s.added_rss_gb, (peak - rss0) * 1024 / GB)


# -- the tape --------------------------------------------------------------------------------

def _tpd_text(trades_per_day: float) -> str:
    return str(int(trades_per_day)) if float(trades_per_day).is_integer() else repr(float(trades_per_day))


def tape_folder(work: Path, days: int, trades_per_day: float, seed: int) -> Path:
    """The cache key: one folder per (start, days, trades per day, seed)."""
    return work / f"tape-{START}-{days}d-{_tpd_text(trades_per_day)}tpd-seed{seed}"


def _matches(path: Path, days: int, trades_per_day: float, seed: int) -> bool:
    s = read_manifest(path).get("summary", {})
    return (s.get("generator") == "clusterlob.synth" and s.get("start") == START and s.get("days") == days
            and s.get("seed") == seed and float(s.get("trades_per_day", -1)) == float(trades_per_day))


def ensure_tape(work: Path, days: int, trades_per_day: float, seed: int) -> tuple[Path, dict]:
    """Reuse or generate the tape; returns its path and the generation figures."""
    path = tape_folder(work, days, trades_per_day, seed)
    sidecar = path.with_name(path.name + ".generation.json")
    if path.exists():
        if not _matches(path, days, trades_per_day, seed):
            raise ParameterError(f"`--work` folder {path} holds a tape made with other arguments; "
                                 f"remove it or choose another --work")
        gen = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        say(f"reusing the tape {path}")
        return path, {**gen, "reused": True}
    work.mkdir(parents=True, exist_ok=True)
    staging = work / f".{path.name}.partial-{os.getpid()}"
    cmd = [sys.executable, "-m", "clusterlob.synth", "--start", START, "--days", str(days),
           "--trades-per-day", _tpd_text(trades_per_day), "--seed", str(seed), "--out", str(staging)]
    say(f"generating the tape (not part of the timed pipeline): {' '.join(cmd[1:])}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    load0 = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise ParameterError(f"tape generation failed (exit status {done.returncode}); see the messages above")
    gen = {"wall_s": wall, "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
           "peak_rss_gb": after.ru_maxrss * 1024 / GB, "load_before": load0, "load_after": os.getloadavg()[0],
           "command": "python " + " ".join(cmd[1:-1] + [str(path)])}
    os.replace(staging, path)
    write_json(sidecar, gen, overwrite=True)
    return path, {**gen, "reused": False}


# -- the pipeline ----------------------------------------------------------------------------

# Quotes close to the touch (tools/bench_replay.py's setting) so that the fill path runs: the
# project's defaults quote 1 bp away and fill nothing on the synthetic tape.
REPLAY_CONFIG = dict(quote_size=0.05, max_inventory=5.0, half_spread_bps=0.2,
                     fill_model="cross")   # touch prices only here: the queue model needs sizes (tools/bench_replay.py times it)


def run_pipeline(tape_dir: Path, seed: int, meter: Meter, keep_raw: bool = False) -> dict:
    """Run every stage once over the tape; returns what the comparisons need.

    Each day's :class:`Features` is kept for labelling without its raw features (labelling
    needs the z-scores only), unless ``keep_raw`` (``--compare`` needs them for pandas).
    """
    settings = FeatureSettings()
    manifest = read_manifest(tape_dir)
    days = [d["date"] for d in manifest["days"]]
    read = meter.stages.setdefault("read", StageResult("read", unit="trades"))
    cols = {k: [] for k in ("ts", "price", "amount", "side", "bts", "bid", "ask")}
    feats, state, n_book, tick, levels = [], None, 0, None, 0
    t_start, c_start = time.perf_counter(), time.process_time()
    for day in days:
        with meter.stage("read"):
            tape = read_tape(tape_dir, [day], levels=settings.levels,
                             columns=settings.tape_columns() + ("price",))
            tr, bk = tape.trades, tape.book
            for key, a in (("ts", tr.ts_local_us), ("price", tr.price), ("amount", tr.amount),
                           ("side", tr.side), ("bts", bk.ts_local_us)):
                cols[key].append(a)
            cols["bid"].append(np.ascontiguousarray(bk.bid_px[:, 0]))
            cols["ask"].append(np.ascontiguousarray(bk.ask_px[:, 0]))
            read.items += len(tr)
            n_book += len(bk)
            tick, levels = tape.instrument.tick_size, bk.levels
        with meter.stage("features"):
            f = build_features(tape, settings, state)
            state = f.state
            feats.append(f if keep_raw else dataclasses.replace(f, raw=np.empty((0, f.raw.shape[1]))))
        del tape, tr, bk
        say(f"{day}: read and features done ({len(f):,} rows), "
            f"t = {time.perf_counter() - t_start:.1f} s")
    with meter.stage("read"):            # the 7-day columns the later stages use
        arrays = {k: np.concatenate(v) for k, v in cols.items()}
        del cols
    read.work = f"{read.items:,} trades + {n_book:,} snapshots x {levels} levels"
    feat = meter.stages["features"]
    feat.items, feat.unit = read.items, "trades"
    n_rows = sum(len(f) for f in feats)
    n_valid = sum(int(f.counts["valid_rows"]) for f in feats)
    feat.work = f"{read.items:,} trades -> {n_rows:,} rows, {n_valid:,} valid"

    say(f"fitting K-Means++ on {n_valid:,} valid rows")
    with meter.stage("fit"):
        z_valid = np.empty((n_valid, feats[0].z.shape[1]))   # one buffer, no per-day copies
        pos = 0
        for f in feats:
            m = int(f.counts["valid_rows"])
            np.compress(f.valid, f.z, axis=0, out=z_valid[pos:pos + m])
            pos += m
        t0, c0 = time.perf_counter(), time.process_time()
        model, _ = fit_model(z_valid, settings, k=3, n_init=1, seed=seed)
        kmeans_wall, kmeans_cpu = time.perf_counter() - t0, time.process_time() - c0
    fit = meter.stages["fit"]
    fit.items, fit.unit = n_valid, "rows"
    fit.work = (f"{n_valid:,} rows x 6, k 3, n_init 1, {model.n_iter} iterations, "
                f"inertia {model.inertia:.6g}")

    say("labelling")
    roles = []
    for f in feats:
        with meter.stage("label"):
            roles.append(label_trades(f, model).role)
    with meter.stage("label"):
        roles = np.concatenate(roles)
    lab = meter.stages["label"]
    lab.items, lab.unit, lab.work = read.items, "trades", f"{read.items:,} trades, nearest of 3 centres"

    say("OFI and IC")
    with meter.stage("ic"):
        grid = BucketGrid.for_days(days, BUCKET_US)
        mid = 0.5 * (arrays["bid"] + arrays["ask"])
        signals = bucket_signals(arrays["ts"], arrays["side"], arrays["amount"], roles, arrays["bts"], mid,
                                 grid, ROLE_GROUPS, covered=covered_buckets(grid, days))
        pooled = ic_table(signals, HORIZONS)
        tables, _ = window_ic_tables(signals, None, HORIZONS)
        aggregate_ic(tables)
        del mid
    ic = meter.stages["ic"]
    ic.items, ic.unit = read.items, "trades"
    ic.work = (f"{read.items:,} trades, {grid.n_buckets:,} 5-min buckets, 4 groups; "
               f"pooled + {len(tables)} daily IC tables")

    say("replay")
    config = StrategyConfig(**REPLAY_CONFIG)
    events = (arrays["ts"], arrays["price"], arrays["amount"], arrays["side"], roles,
              arrays["bts"], arrays["bid"], arrays["ask"])
    with meter.stage("replay"):
        result = replay_arrays(*events, tick_size=tick, config=config)
    rep = meter.stages["replay"]
    rep.items, rep.unit = read.items + n_book, "events"
    rep.work = (f"{read.items:,} trades + {n_book:,} book updates, {result.summary.fills:,} fills, "
                f"half-spread {REPLAY_CONFIG['half_spread_bps']} bp")
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    meter.note_peak()
    del result, signals
    return {"days": days, "wall_s": wall, "cpu_s": cpu, "settings": settings, "feats": feats,
            "z_valid": z_valid, "model": model, "kmeans_wall_s": kmeans_wall, "kmeans_cpu_s": kmeans_cpu,
            "replay_wall_s": rep.wall_s,
            "events": events, "tick": tick, "config": config, "pooled_ic": pooled}


# -- the commands a user runs (--via-cli) -----------------------------------------------------

#: (name, arguments after ``python -m``, wall target s or None, peak RSS target GiB); ``{tape}``,
#: ``{out}`` are filled in.  The ic command uses the model the cluster command wrote.
CLI_COMMANDS = (
    ("replay", ["clusterlob.replay", "--tape", "{tape}", "--train-days", "2024-05-01",
                "--replay-days", "2024-05-02:2024-05-07", "--quiet"], 40.0, 3.0),
    ("cluster", ["clusterlob.cluster", "{tape}", "--out", "{out}/cluster", "--quiet"], None, 4.0),
    ("ic", ["clusterlob.ic", "{tape}", "--model", "{out}/cluster/model.json", "--out", "{out}/ic", "--quiet"],
     None, 4.0),
)


def run_command(args: list) -> dict:
    """Run ``python -m ARGS`` in a child process; its own wall time, CPU time and peak RSS
    (``wait4``'s rusage of that child alone), the load average before and after."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"command": "python -m " + " ".join(args), "exit_status": child.returncode, "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss * 1024 / GB,
            "load_before": list(load0), "load_after": list(os.getloadavg()),
            "stderr_tail": err.strip().splitlines()[-3:]}


def run_via_cli(tape_dir: Path, work: Path) -> list:
    """Each command of :data:`CLI_COMMANDS` once, outputs in a scratch folder under ``work``
    (removed afterwards)."""
    import shutil
    out = Path(tempfile.mkdtemp(prefix="cli-outputs-", dir=work))
    results = []
    try:
        for name, template, wall_target, rss_target in CLI_COMMANDS:
            args = [a.format(tape=tape_dir, out=out) for a in template]
            say(f"{name}: python -m {' '.join(args)} (load average {os.getloadavg()[0]:.2f})")
            r = run_command(args)
            if r["exit_status"]:
                raise ParameterError(f"`python -m {' '.join(args)}` failed (exit status {r['exit_status']}): "
                                     f"{' / '.join(r['stderr_tail'])}")
            met = (wall_target is None or r["wall_s"] <= wall_target) and r["peak_rss_gb"] <= rss_target
            results.append({**r, "name": name, "wall_target_s": wall_target, "rss_target_gb": rss_target,
                            "met": met})
            say(f"{name}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_gb']:.2f} GiB")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return results


def cli_table(results: list) -> str:
    rows = [[f"`{r['command']}`", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}", f"{r['peak_rss_gb']:.2f}",
             (f"<= {r['wall_target_s']:g} s, " if r["wall_target_s"] else "") + f"<= {r['rss_target_gb']:g} GiB",
             "met" if r["met"] else "MISSED", f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}"]
            for r in results]
    return markdown_table(["command", "wall s", "CPU s", "peak RSS GiB", "target", "", "load before / after"],
                          rows, align=["l", "r", "r", "r", "l", "l", "r"])


# -- output ----------------------------------------------------------------------------------

STAGE_ORDER = ("read", "features", "fit", "label", "ic", "replay")
STAGE_TITLES = {"read": "read tape", "features": "features", "fit": "K-Means++ fit",
                "label": "labelling", "ic": "OFI / IC", "replay": "replay"}


def _rate(items: float, wall: float, unit: str) -> str:
    return f"{items / wall / 1e6:.1f} M {unit}/s" if wall > 0 else "-"


def results_table(meter: Meter, e2e: dict) -> str:
    rows = []
    for key in STAGE_ORDER:
        s = meter.stages[key]
        rows.append([STAGE_TITLES[key], s.work, _rate(s.items, s.wall_s, s.unit), f"{s.wall_s:.2f}",
                     f"{s.cpu_s:.2f}", f"{s.peak_rss_gb:.2f}", f"{s.added_rss_gb:+.2f}"])
    rows.append(["**end to end**", "the six stages above, one process",
                 _rate(e2e["trades"], e2e["wall_s"], "trades"), f"**{e2e['wall_s']:.2f}**",
                 f"{e2e['cpu_s']:.2f}", f"**{e2e['peak_rss_gb']:.2f}**", ""])
    return markdown_table(["stage", "work", "rate", "wall s", "CPU s", "peak RSS GiB", "+RSS GiB"], rows,
                          align=["l", "l", "r", "r", "r", "r", "r"])


def machine_info() -> dict:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": mem_kb * 1024 / GB, "python": platform.python_version(),
            "numpy": np.__version__, "clusterlob": __version__, "platform": platform.platform()}


def _main_via_cli(args, argv, stamp, json_out: Path, tape_dir: Path) -> int:
    results = run_via_cli(tape_dir, args.work)
    table = cli_table(results)
    print(f"clusterlob {__version__} commands as a user runs them, {stamp:%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs")
    print(f"tape: {tape_dir} ({args.days} days, seed {args.seed})")
    print()
    print(table)
    doc = {"command": "python tools/bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "date_utc": stamp.isoformat(timespec="seconds"), "machine": machine_info(), "tape": str(tape_dir),
           "commands": results, "markdown_table": table,
           "memory_note": "peak_rss_gb: ru_maxrss of the child process alone (os.wait4)"}
    write_json(json_out, doc)
    say(f"wrote {json_out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--trades-per-day", type=float, default=3_950_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", action="store_true",
                        help="also run scikit-learn KMeans, pandas rolling z-scores and the Python replay reference")
    parser.add_argument("--reference-events", type=int, default=1_000_000,
                        help="events given to the plain-Python replay reference with --compare (default 1,000,000)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clusterlob-bench",
                        help="folder of the cached tapes and default JSON output (default: $TMPDIR/clusterlob-bench)")
    parser.add_argument("--json-out", type=Path, help="new JSON file (default: a time-stamped file under --work)")
    parser.add_argument("--via-cli", action="store_true",
                        help="instead of the in-process pipeline, run the commands a user runs (replay, "
                             "cluster, ic) each in its own process and report its wall time and peak RSS")
    args = parser.parse_args(argv)
    stamp = _dt.datetime.now(_dt.timezone.utc)
    try:
        if args.days < 1 or args.trades_per_day <= 0 or args.seed < 0:
            raise ParameterError(f"`--days` must be >= 1, `--trades-per-day` > 0 and `--seed` >= 0, got "
                                 f"{args.days}, {args.trades_per_day}, {args.seed}")
        if args.json_out is not None and args.json_out.exists():
            raise ParameterError(f"`--json-out` {args.json_out} exists; choose a new file")
        json_out = args.json_out or args.work / f"bench-{stamp:%Y%m%dT%H%M%SZ}.json"
        tape_dir, generation = ensure_tape(args.work, args.days, args.trades_per_day, args.seed)
        if args.via_cli:
            return _main_via_cli(args, argv, stamp, json_out, tape_dir)
        meter = Meter()
        load = {"before": os.getloadavg()}
        say(f"pipeline on {tape_dir} (load average {load['before'][0]:.2f} on {os.cpu_count()} CPUs)")
        out = run_pipeline(tape_dir, args.seed, meter, keep_raw=args.compare)
        load["after_pipeline"] = os.getloadavg()
        trades = meter.stages["read"].items
        e2e = {"wall_s": out["wall_s"], "cpu_s": out["cpu_s"], "trades": trades,
               "peak_rss_gb": meter.process_peak_kb * 1024 / GB,
               "peak_rss_from": "VmHWM, reset per stage" if meter.can_reset else "getrusage ru_maxrss"}
        replay_rate = meter.stages["replay"].rate_per_s
        targets = {
            "end_to_end_s": {"target": TARGETS["end_to_end_s"], "measured": e2e["wall_s"],
                             "met": e2e["wall_s"] <= TARGETS["end_to_end_s"]},
            "peak_rss_gb": {"target": TARGETS["peak_rss_gb"], "measured": e2e["peak_rss_gb"],
                            "met": e2e["peak_rss_gb"] <= TARGETS["peak_rss_gb"]},
            "replay_events_per_s": {"target": TARGETS["replay_events_per_s"], "measured": replay_rate,
                                    "met": replay_rate >= TARGETS["replay_events_per_s"]},
        }
        comparisons = None
        if args.compare:
            from bench_compare import run_comparisons
            comparisons = run_comparisons(out, args.seed, args.reference_events, say)
            load["after_compare"] = os.getloadavg()
            km = comparisons.get("kmeans", {}).get("same_start", {})
            if "wall_s" in km:
                targets["kmeans_vs_sklearn"] = {"target": "not slower from the same start, inertia within 0.1%",
                                                "measured": {"wall_ratio": km["wall_ratio"],
                                                             "inertia_rel_diff": km["inertia_rel_diff"]},
                                                "met": km["wall_ratio"] <= 1.0 and abs(km["inertia_rel_diff"]) <= 1e-3}
        table = results_table(meter, e2e)
        gen_line = (f"tape generation (not in the pipeline): {generation.get('wall_s', float('nan')):.1f} s wall, "
                    f"{generation.get('cpu_s', float('nan')):.1f} s CPU"
                    + (" (measured when the cached tape was made)" if generation.get("reused") else ""))
        print(f"clusterlob {__version__} benchmark, {stamp:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
              f"load average {load['before'][0]:.2f} before / {load['after_pipeline'][0]:.2f} after the pipeline")
        print(f"tape: {tape_dir} ({args.days} days, {trades:,} trades, seed {args.seed})")
        print(gen_line)
        print()
        print(table)
        for name, t in targets.items():
            print(f"target {name}: {t['target']} -> {'met' if t['met'] else 'MISSED'} ({t['measured']})"
                  if not isinstance(t["measured"], float) else
                  f"target {name}: {t['target']:g} -> {'met' if t['met'] else 'MISSED'} (measured {t['measured']:.4g})")
        if comparisons:
            from bench_compare import comparison_lines
            print()
            for line in comparison_lines(comparisons):
                print(line)
        if max(v[0] for v in load.values()) > (os.cpu_count() or 1):
            print(f"note: the load average exceeded {os.cpu_count()} (machine shared with other sessions): "
                  f"wall times are inflated; CPU times are the steadier figure")
        doc = {"command": "python tools/bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "date_utc": stamp.isoformat(timespec="seconds"), "machine": machine_info(),
               "load_average": {k: list(v) for k, v in load.items()}, "tape": str(tape_dir),
               "arguments": {"days": args.days, "trades_per_day": args.trades_per_day, "seed": args.seed},
               "generation": generation, "stages": {k: meter.stages[k].to_dict() for k in STAGE_ORDER},
               "end_to_end": e2e, "targets": targets, "comparisons": comparisons,
               "memory_note": ("peak_rss_gb: highest RSS of the process during the stage (VmHWM reset at each "
                               "call); added_rss_gb: most the stage added over its starting RSS"
                               if meter.can_reset else "peak RSS from getrusage (monotone, process-wide)"),
               "markdown_table": table}
        write_json(json_out, doc)
        say(f"wrote {json_out}")
    except ClusterlobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
