"""A tape read from a URI (file://, and a non-local pyarrow filesystem) gives what the plain path gives.

The non-local filesystem is pyarrow's in-memory mock filesystem (``mock://``, no network): a tape
copied into it is read through ``filesystem=`` and, for the sweep, through a ``mock://`` URI
whose resolution is pointed at that one in-memory instance.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
from walkforward_fixtures import random_tape, write_random_tape

from clusterlob.errors import ParameterError, TapeError
from clusterlob.features import FeatureSettings
from clusterlob.sweep import run_sweep
from clusterlob.sweep.select import run_selection
from clusterlob.tape import (
    Funding,
    TapeLocation,
    TapeWriter,
    read_manifest,
    read_tape,
    resolve_tape,
)
from clusterlob.tape import location as location_module
from clusterlob.tape.store import iter_days, read_funding, time_span
from clusterlob.walkforward import WalkForwardSettings, plan_cache, run_walkforward
from clusterlob.walkforward.cache import day_fingerprint

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAPE = ROOT / "data" / "default_tape"
GRID = {"strategy": {"skew_ticks": [10.0, 50.0], "mapping": ["inverted", "traditional"]}, "fit": {"train_days": 1}}
SELECT_GRID = {"strategy": {"skew_ticks": [5.0, 50.0], "mapping": ["inverted", "traditional"]},
               "fit": {"train_days": 1, "k": 3}, "features": {"window": 20}}
DAYS = ["2024-05-01", "2024-05-02", "2024-05-03"]


def _text(rows) -> str:
    """Rows as JSON text: equal results compare equal even where a Sharpe is NaN."""
    return json.dumps(rows, sort_keys=True)


def _same_tape(a, b) -> None:
    assert a.instrument == b.instrument and a.days == b.days
    for name, col in a.trades.columns().items():
        np.testing.assert_array_equal(col, b.trades.columns()[name], err_msg=name)
    for name in ("ts_exch_us", "ts_local_us", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        np.testing.assert_array_equal(getattr(a.book, name), getattr(b.book, name), err_msg=name)


@pytest.fixture(scope="module")
def tape3(tmp_path_factory):
    """Three days with a funding table (so every reader of the store has a file to read)."""
    path = tmp_path_factory.mktemp("uri") / "tape3"
    tape = random_tape(3, DAYS, trades_per_day=300, snaps_per_day=120)
    ts = np.array([tape.trades.ts_local_us[0] + 1, tape.trades.ts_local_us[-1] - 1], np.int64)
    funding = Funding(ts, ts, np.array([1e-4, -2e-4]), ts + 3_600_000_000, np.full(2, np.nan),
                      np.array([60000.0, 60010.0]), np.full(2, np.nan), np.full(2, np.nan), np.full(2, np.nan))
    with TapeWriter(path, tape.instrument) as w:
        w.add_trades(tape.trades)
        w.add_book(tape.book)
        w.add_funding(funding)
    return path


def _copy_into(fs: pafs.FileSystem, local: Path, target: str) -> None:
    """Copy a tape folder into another pyarrow filesystem, file by file."""
    for f in sorted(local.rglob("*")):
        rel = f.relative_to(local).as_posix()
        if f.is_dir():
            fs.create_dir(f"{target}/{rel}")
        else:
            with fs.open_output_stream(f"{target}/{rel}") as out:
                out.write(f.read_bytes())


@pytest.fixture()
def mock_tape(tape3, monkeypatch):
    """``tape3`` copied into an in-memory filesystem, which ``mock://`` URIs then resolve to."""
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    fs.create_dir("bucket/tape3")
    _copy_into(fs, tape3, "bucket/tape3")

    def from_uri(uri):
        if uri.startswith("mock://"):
            return fs, uri[len("mock://"):].lstrip("/")
        return pafs.FileSystem.from_uri(uri)

    monkeypatch.setattr(location_module, "_from_uri", from_uri)
    return fs


def _files(fs: pafs.FileSystem) -> list:
    return sorted(i.path for i in fs.get_file_info(pafs.FileSelector("", recursive=True))
                  if i.type == pafs.FileType.File)


# -- reading ---------------------------------------------------------------------------------------

def test_file_uri_reads_what_the_path_reads(tape3):
    uri = tape3.resolve().as_uri()
    assert uri.startswith("file:///")
    _same_tape(read_tape(uri), read_tape(tape3))
    _same_tape(read_tape(uri, "2024-05-02", levels=2, columns=("price", "side")),
               read_tape(tape3, "2024-05-02", levels=2, columns=("price", "side")))
    assert read_manifest(uri) == read_manifest(tape3)
    assert time_span(uri, "2024-05-01:2024-05-02") == time_span(tape3, "2024-05-01:2024-05-02") is not None
    assert [t.days for t in iter_days(uri)] == [[d] for d in DAYS]
    a, b = read_funding(uri), read_funding(tape3)
    assert len(a) == 2
    for name, col in a.columns().items():
        np.testing.assert_array_equal(col, b.columns()[name], err_msg=name)
    # the default tape, with a trailing slash on the URI
    _same_tape(read_tape(DEFAULT_TAPE.as_uri() + "/", "2024-05-02"), read_tape(DEFAULT_TAPE, "2024-05-02"))


def test_a_tape_in_a_non_local_filesystem_reads_identically(tape3):
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    assert not isinstance(fs, pafs.LocalFileSystem)
    fs.create_dir("store/t")
    _copy_into(fs, tape3, "store/t")
    _same_tape(read_tape("store/t", filesystem=fs), read_tape(tape3))
    assert read_manifest("store/t", filesystem=fs) == read_manifest(tape3)
    assert time_span("store/t", filesystem=fs) == time_span(tape3)
    assert read_funding("store/t", "2024-05-01", filesystem=fs).funding_rate.tolist() == \
        read_funding(tape3, "2024-05-01").funding_rate.tolist()
    # a sub-tree of the local disk, through the same argument
    sub = pafs.SubTreeFileSystem(str(tape3.parent), pafs.LocalFileSystem())
    _same_tape(read_tape(tape3.name, filesystem=sub), read_tape(tape3))
    with pytest.raises(TapeError, match="tape directory store/missing does not exist"):
        read_tape("store/missing", filesystem=fs)
    with pytest.raises(TapeError, match="give a path inside `filesystem`, not a URI"):
        read_tape("mock:///store/t", filesystem=fs)


def test_local_paths_keep_their_errors(tmp_path, tape3):
    (tmp_path / "f").write_text("x")
    for path, message in [(tmp_path / "nope", f"tape directory {tmp_path / 'nope'} does not exist"),
                          (tmp_path / "f", f"{tmp_path / 'f'} is a file, not a tape directory"),
                          (tmp_path, f"{tmp_path} is not a tape directory: no manifest.json")]:
        with pytest.raises(TapeError) as err:
            read_tape(path)
        assert str(err.value).startswith(message), err.value


@pytest.mark.parametrize("uri, message", [
    ("foo://bucket/tape", "tape foo://bucket/tape: unknown URI scheme `foo`"),
    ("file:///nonexistent-clusterlob/tape", "tape directory file:///nonexistent-clusterlob/tape does not exist"),
    ("mock:///bucket/none", "tape directory mock:///bucket/none does not exist"),
    ("DEFAULT/manifest.json", "/manifest.json is a file, not a tape directory"),
    ("DEFAULT/trades", "/trades is not a tape directory: no manifest.json"),
])
def test_bad_uris_are_one_line(uri, message):
    uri = uri.replace("DEFAULT", DEFAULT_TAPE.as_uri())
    with pytest.raises(TapeError) as err:
        read_tape(uri)
    assert message in str(err.value) and "\n" not in str(err.value), err.value


# -- the feature cache's key ---------------------------------------------------------------------------

def test_fingerprints_keep_local_keys_and_never_share_between_locations(tape3, mock_tape):
    manifest = read_manifest(tape3)
    entry, inst = manifest["days"][0], manifest["instrument"]
    local = day_fingerprint(tape3, entry, inst)
    # a local tape keeps the key it had before URIs (caches built then are reused): sizes and mtimes
    parts = [json.dumps(inst, sort_keys=True), entry["date"]]
    for kind in ("trades", "book"):
        st = (tape3 / kind / f"{entry['date']}.parquet").stat()
        parts.append(f"{kind}:{entry[kind]}:{st.st_size}:{st.st_mtime_ns}")
    assert local == hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    # a file:// URI is the same local files: the same key (a cache built from the path is reused)
    assert day_fingerprint(tape3.resolve().as_uri(), entry, inst) == day_fingerprint(tape3.resolve(), entry, inst)
    # the same bytes at two other locations: three different keys
    a = day_fingerprint("mock:///bucket/tape3", entry, inst)
    mock_tape.create_dir("bucket/copy")
    _copy_into(mock_tape, tape3, "bucket/copy")
    b = day_fingerprint("mock:///bucket/copy", entry, inst)
    assert len({local, a, b}) == 3


def test_a_filesystem_without_modification_times_fingerprints_the_footer(tape3):
    class NoMtime(pafs.FileSystemHandler):
        """The local disk, reporting no modification time (as some object stores)."""

        def __init__(self):
            self.fs = pafs.LocalFileSystem()

        def get_type_name(self):
            return "no-mtime"

        def get_file_info(self, paths):
            return [pafs.FileInfo(i.path, i.type, size=i.size) for i in self.fs.get_file_info(paths)]

        def open_input_file(self, path):
            return self.fs.open_input_file(path)

        def open_input_stream(self, path):
            return self.fs.open_input_stream(path)

        def get_file_info_selector(self, selector):
            return self.get_file_info([i.path for i in self.fs.get_file_info(selector)])

        def normalize_path(self, path):
            return path

        def _read_only(self, *args, **kwargs):
            raise NotImplementedError("read-only")

        copy_file = create_dir = delete_dir = delete_dir_contents = delete_file = _read_only
        delete_root_dir_contents = move = open_append_stream = open_output_stream = _read_only

    fs = pafs.PyFileSystem(NoMtime())
    loc = resolve_tape(str(tape3), fs)
    manifest = read_manifest(loc)
    _same_tape(read_tape(loc), read_tape(tape3))
    fp = day_fingerprint(loc, manifest["days"][0], manifest["instrument"])
    assert fp == day_fingerprint(loc, manifest["days"][0], manifest["instrument"])
    assert fp != day_fingerprint(loc, manifest["days"][1], manifest["instrument"])
    assert fp != day_fingerprint(tape3, manifest["days"][0], manifest["instrument"])


# -- sweeps, selection and the walk-forward ----------------------------------------------------------

def test_sweep_from_a_file_uri_equals_the_path(tmp_path):
    uri = DEFAULT_TAPE.as_uri()
    plain = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", out_dir=tmp_path / "plain")
    by_uri = run_sweep(uri, GRID, "2024-05-02", out_dir=tmp_path / "uri")
    assert len(plain.rows) == 4 and _text(by_uri.rows) == _text(plain.rows)
    assert by_uri.tape == uri


def test_sweep_on_a_non_local_filesystem_equals_the_path_and_writes_nothing_there(tape3, mock_tape, tmp_path):
    before = _files(mock_tape)
    grid = {**GRID, "features": {"window": 20}}
    plain = run_sweep(tape3, grid, "2024-05-02:2024-05-03", out_dir=tmp_path / "plain")
    remote = run_sweep("mock:///bucket/tape3", grid, "2024-05-02:2024-05-03", out_dir=tmp_path / "remote")
    assert len(plain.rows) == 8 and _text(remote.rows) == _text(plain.rows)
    assert _files(mock_tape) == before                              # nothing written beside the remote tape
    settings = FeatureSettings(window=20)
    cached = sorted(p.name for p in (tmp_path / "remote" / "cache" / settings.key()).glob("*.json"))
    assert cached == [f"{d}.json" for d in DAYS]                   # the cache is in the local output folder
    # the remote tape's cache keys differ from the local ones: one cache folder can hold both
    keys = {s.key for s in plan_cache("mock:///bucket/tape3", settings, tmp_path / "remote" / "cache")}
    assert keys.isdisjoint({s.key for s in plan_cache(tape3, settings, tmp_path / "plain" / "cache")})


class _RecordingExecutor(Executor):
    """Runs each task at once in this process, after pickling it as a process pool would, and
    keeps what was submitted."""

    _max_workers = 2

    def __init__(self):
        self.submitted: list = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append((fn, args, kwargs))
        fn, args, kwargs = pickle.loads(pickle.dumps((fn, args, kwargs)))
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _leaves(getattr(value, f.name))
    else:
        yield value


def test_tasks_carry_the_uri_text_never_a_filesystem_or_arrays(tape3, tmp_path):
    uri = tape3.resolve().as_uri()
    pool = _RecordingExecutor()
    res = run_selection(uri, SELECT_GRID, days="2024-05-01:2024-05-03", n_blocks=2, executor=pool,
                        out_dir=tmp_path / "s")
    assert res.windows and pool.submitted
    kinds = {fn.__name__ for fn, _, _ in pool.submitted}
    assert kinds == {"_raw_day", "fit_day_model", "run_replay_task"}, kinds
    carried = set()
    for _, args, kwargs in pool.submitted:
        for leaf in _leaves([*args, *kwargs.values()]):
            assert not isinstance(leaf, (pafs.FileSystem, TapeLocation, np.ndarray)), type(leaf)
            if isinstance(leaf, str) and "://" in leaf:
                carried.add(leaf)
    assert carried == {uri}


def test_tasks_refuse_a_filesystem_object(tape3):
    loc = resolve_tape("x", pafs.SubTreeFileSystem(str(tape3.parent), pafs.LocalFileSystem()))
    with pytest.raises(TapeError, match="tasks do not carry"):
        run_sweep(loc, GRID, "2024-05-02")


def test_outputs_must_be_local(tmp_path):
    with pytest.raises(ParameterError, match="`cache_dir` must be a local folder"):
        run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", cache_dir="s3://bucket/cache")
    with pytest.raises(ParameterError, match="`out_dir` must be a local folder"):
        run_selection(DEFAULT_TAPE, GRID, out_dir="gs://bucket/out")


def test_selection_from_a_file_uri_equals_the_path(tmp_path):
    path = tmp_path / "tape"
    write_random_tape(path, 11, DAYS, trades_per_day=600, snaps_per_day=300)
    plain = run_selection(path, SELECT_GRID, n_blocks=2, out_dir=tmp_path / "a")
    by_uri = run_selection(path.as_uri(), SELECT_GRID, n_blocks=2, out_dir=tmp_path / "b")
    assert [w.status for w in plain.windows] == ["selected", "selected"]
    def windows(res):                        # the model files live in each run's own output folder
        return _text([{k: v for k, v in w.items() if k != "model_file"} for w in res.to_dict()["windows"]])

    assert windows(by_uri) == windows(plain) and '"chosen": ' in windows(plain)
    assert by_uri.pbo.pbo == plain.pbo.pbo or (np.isnan(by_uri.pbo.pbo) and np.isnan(plain.pbo.pbo))
    for key in ("selected", "default", "all_trades_ofi", "symmetric"):
        np.testing.assert_array_equal(by_uri.equity[key], plain.equity[key])


def test_walkforward_from_a_file_uri_equals_the_path(tmp_path):
    path = tmp_path / "tape"
    write_random_tape(path, 5, DAYS + ["2024-05-04"], trades_per_day=500)
    settings, wf = FeatureSettings(window=7, levels=3), WalkForwardSettings(train_days=2, bucket_s=3600.0)
    plain = run_walkforward(path, tmp_path / "a", settings, wf)
    by_uri = run_walkforward(path.as_uri(), tmp_path / "b", settings, wf)
    assert len(plain.fitted) == len(by_uri.fitted) == 2
    for g in plain.equity:
        np.testing.assert_array_equal(plain.equity[g], by_uri.equity[g])


# -- the commands ----------------------------------------------------------------------------------------

def _command(module, *args, cwd=None, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=False)


def test_sweep_command_with_a_file_uri(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[strategy]\nskew_ticks = [10, 50]\n[fit]\ntrain_days = 1\n')
    r = _command("clusterlob.sweep", DEFAULT_TAPE.as_uri(), "--grid", grid, "--days", "2024-05-02",
                 "--out", tmp_path / "o", "--workers", "1", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tape"] == DEFAULT_TAPE.as_uri() and doc["tasks"] == 2
    assert (tmp_path / "o" / "cache").is_dir() and (tmp_path / "o" / "results.parquet").is_file()


@pytest.mark.parametrize("tape, out, message", [
    ("foo://bucket/tape", "o", "error: tape foo://bucket/tape: unknown URI scheme `foo`"),
    ("file:///nonexistent-clusterlob/tape", "o", "error: tape directory file:///nonexistent-clusterlob/tape does not exist"),
    ("DEFAULT/trades", "o", "/trades is not a tape directory: no manifest.json"),
    ("hdfs://127.0.0.1:9/tape", "o", "error: tape hdfs://127.0.0.1:9/tape: cannot open its hdfs filesystem ("),
    ("DEFAULT", "s3://bucket/out", ("error: output folder must be a local folder (outputs are not written to URIs), "
                                    "got 's3://bucket/out'")),
    ("DEFAULT", "o --cache gs://bucket/cache", "error: `--cache` must be a local folder"),
])
def test_sweep_command_bad_uris_are_one_line(tmp_path, tape, out, message):
    grid = tmp_path / "grid.toml"
    grid.write_text('[strategy]\nskew_ticks = [10]\n[fit]\ntrain_days = 1\n')
    tape = tape.replace("DEFAULT", DEFAULT_TAPE.as_uri())
    r = _command("clusterlob.sweep", tape, "--grid", grid, "--out", *out.split(), "--workers", "1", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr and r.stderr.startswith("error: "), r.stderr
    if "does not exist" not in message and "no manifest" not in message:
        assert not (tmp_path / "o").exists()          # refused before an output folder was made


def test_an_unreachable_object_store_is_one_line(tmp_path):
    """An S3 endpoint where nothing listens (no network needed): the error after the client's retries."""
    grid = tmp_path / "grid.toml"
    grid.write_text('[strategy]\nskew_ticks = [10]\n[fit]\ntrain_days = 1\n')
    uri = "s3://bucket/tape?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1"
    r = _command("clusterlob.sweep", uri, "--grid", grid, "--out", "o", "--workers", "1", cwd=tmp_path,
                 env={"AWS_ACCESS_KEY_ID": "none", "AWS_SECRET_ACCESS_KEY": "none", "AWS_EC2_METADATA_DISABLED": "true"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: tape {uri}: cannot reach it ("), r.stderr


@pytest.mark.parametrize("module, args", [
    ("clusterlob.walkforward", ["--train-days", "1", "--out", "o"]),
    ("clusterlob.cluster", ["--out", "o"]),
    ("clusterlob.ic", ["--out", "o"]),
])
def test_other_commands_name_a_bad_uri_in_one_line(tmp_path, module, args):
    r = _command(module, "foo://bucket/tape", *args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == "error: tape foo://bucket/tape: unknown URI scheme `foo` (pyarrow.fs " \
                                            "opens file://, s3://, gs://, hdfs://, abfs://; or give a local path)\n", \
        r.stderr


def test_replay_command_reads_a_file_uri(tmp_path):
    plain = _command("clusterlob.replay", "--tape", DEFAULT_TAPE, "--json", "--quiet", cwd=tmp_path)
    by_uri = _command("clusterlob.replay", "--tape", DEFAULT_TAPE.as_uri(), "--json", "--quiet", cwd=tmp_path)
    assert plain.returncode == by_uri.returncode == 0, by_uri.stderr
    a, b = json.loads(plain.stdout), json.loads(by_uri.stdout)
    assert b["tape"] == DEFAULT_TAPE.as_uri()
    a.pop("tape"), b.pop("tape")
    for doc in (a, b):
        doc.pop("seconds", None)
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    bad = _command("clusterlob.replay", "--tape", "foo://x/tape", "--quiet", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown URI scheme `foo`" in bad.stderr

