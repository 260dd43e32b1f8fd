"""Sweeps and the walk-forward on a real Dask LocalCluster (worker processes on loopback).

Needs the ``dask`` extra (``pip install -e '.[dask]'``); skipped with the reason otherwise.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed", reason="the dask extra is not installed "
                                                             "(pip install -e '.[dask]')")

from clusterlob._exec import dask_executor, open_executor  # noqa: E402
from clusterlob.errors import ParameterError  # noqa: E402
from clusterlob.features import FeatureSettings  # noqa: E402
from clusterlob.sweep import run_sweep  # noqa: E402
from clusterlob.sweep.tasks import DIE_ONCE_ENV  # noqa: E402
from clusterlob.walkforward import WalkForwardSettings, run_walkforward  # noqa: E402

from walkforward_fixtures import write_random_tape  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _text(rows) -> str:
    """Rows as JSON text: equal results compare equal even where a Sharpe is NaN."""
    import json
    return json.dumps(rows, sort_keys=True)
DEFAULT_TAPE = ROOT / "data" / "default_tape"
GRID = {"strategy": {"skew_ticks": [10.0, 30.0, 50.0], "mapping": ["inverted", "traditional"]},
        "fit": {"train_days": 1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes; the test hook that kills a worker is armed by deleting ``marker``."""
    marker = tmp_path_factory.mktemp("dask") / "died"
    marker.write_text("disarmed")
    old = os.environ.get(DIE_ONCE_ENV)
    os.environ[DIE_ONCE_ENV] = str(marker)           # inherited by the worker processes
    try:
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, worker_dashboard_address=None)
    finally:
        if old is None:
            os.environ.pop(DIE_ONCE_ENV, None)
        else:
            os.environ[DIE_ONCE_ENV] = old
    yield lc, marker
    lc.close()


def test_dask_sweep_equals_single_process_from_a_path_and_a_file_uri(cluster):
    lc, _ = cluster
    serial = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02")
    with dask_executor(lc.scheduler_address) as ex:
        assert ex._max_workers == 2
        on_dask = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", ex)
        by_uri = run_sweep(DEFAULT_TAPE.as_uri(), GRID, "2024-05-02", ex)    # the workers resolve the URI
    assert _text(on_dask.rows) == _text(serial.rows)
    assert _text(by_uri.rows) == _text(serial.rows) and by_uri.tape == DEFAULT_TAPE.as_uri()


def test_dask_worker_killed_mid_task_costs_a_retry(cluster, tmp_path):
    lc, marker = cluster
    serial = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02")
    marker.unlink()                                   # arm: the next task kills its worker
    with dask_executor(lc.scheduler_address) as ex:
        res = run_sweep(DEFAULT_TAPE, GRID, "2024-05-02", ex, out_dir=tmp_path / "o")
    assert marker.exists() and marker.read_text() != "disarmed"     # a worker did die
    assert _text(res.rows) == _text(serial.rows)
    assert len(list((tmp_path / "o" / "tasks").glob("*.json"))) == len(serial.rows)


def test_dask_walkforward_equals_serial(cluster, tmp_path):
    lc, _ = cluster
    days = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]
    tape = write_random_tape(tmp_path / "tape", 5, days, trades_per_day=500) and tmp_path / "tape"
    settings = FeatureSettings(window=7, levels=3)
    wf = WalkForwardSettings(train_days=2, bucket_s=3600.0)
    serial = run_walkforward(tape, tmp_path / "a", settings, wf)
    with dask_executor(lc.scheduler_address) as ex:
        dist = run_walkforward(tape, tmp_path / "b", settings, wf, executor=ex)
    assert len(serial.fitted) == len(dist.fitted) == 2
    for g in serial.equity:
        np.testing.assert_array_equal(serial.equity[g], dist.equity[g])
    for a, b in zip(serial.fitted, dist.fitted):
        np.testing.assert_array_equal(a.model.centers_z, b.model.centers_z)


def test_unreachable_scheduler_is_a_one_line_error_within_the_timeout():
    start = time.time()
    with pytest.raises(ParameterError) as err:
        with open_executor(scheduler="tcp://127.0.0.1:9", timeout_s=1.0):
            pass
    assert "did not answer within 1 s" in str(err.value) and "\n" not in str(err.value)
    assert time.time() - start < 15
    with pytest.raises(ParameterError, match="not both"):
        with open_executor(workers=2, scheduler="tcp://127.0.0.1:9"):
            pass


def test_walkforward_command_with_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    from clusterlob.walkforward.__main__ import main
    start = time.time()
    assert main([str(DEFAULT_TAPE), "--train-days", "1", "--out", str(tmp_path / "wf"),
                 "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Dask scheduler tcp://127.0.0.1:9 did not answer") and err.count("\n") == 1
    assert time.time() - start < 30
