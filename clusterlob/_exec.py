"""Executors shared by the walk-forward and the sweep: local worker processes or a Dask cluster.

Every parallel stage takes any :class:`concurrent.futures.Executor`; this module makes the two
the commands offer:

* :class:`LocalProcesses` (``--workers N``): a process pool whose workers exit when the process
  that started them dies (they watch their parent), and whose tasks survive a worker's death: a
  killed worker breaks a standard pool for good, here the pool is replaced and every task that
  had not finished is submitted again (``retries`` times at most).
* :func:`dask_executor` (``--scheduler ADDRESS``): ``client.get_executor()`` of a
  ``dask.distributed`` client; an address that does not answer is a one-line
  :class:`~clusterlob.errors.ParameterError` after ``timeout_s``, not a hang.  Dask itself
  reschedules a task whose worker died (up to its ``allowed-failures``, 3 by default).

:func:`open_executor` picks one from the two flags (``None`` runs in the calling process).
Tasks must carry paths and small parameter objects, never arrays: a worker reads what it
needs itself.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from .errors import ParameterError

__all__ = ["DEFAULT_CONNECT_TIMEOUT_S", "LocalProcesses", "dask_executor", "executor_workers", "open_executor"]

#: Seconds to wait for a Dask scheduler before giving up with a one-line error.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
_PARENT_POLL_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a daemon thread ends the worker once its parent is gone.

    ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that forked the worker
    ends, and a pool may start workers from a short-lived thread (a retry).
    """
    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(_PARENT_POLL_S)

    threading.Thread(target=watch, name="clusterlob-parent-watch", daemon=True).start()


class LocalProcesses(Executor):
    """A process pool that survives the death of a worker.

    Parameters
    ----------
    workers : int
        Worker processes (>= 1).
    retries : int
        Times a task is submitted again after its pool broke (a worker was killed) before it
        fails with :class:`~concurrent.futures.process.BrokenProcessPool`.

    Attributes
    ----------
    retried : int
        Task submissions repeated because a worker died.
    """

    def __init__(self, workers: int, *, retries: int = 3):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"`workers` must be an integer >= 1, got {workers!r}")
        self._max_workers = workers
        self._retries = int(retries)
        self._lock = threading.Lock()
        self._generation = 0
        self._closed = False
        self.retried = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._max_workers, initializer=_exit_with_parent,
                                   initargs=(os.getpid(),))

    def worker_pids(self) -> list[int]:
        """Process ids of the current pool's workers (for tests and diagnostics)."""
        with self._lock:
            procs = getattr(self._pool, "_processes", None) or {}
            return sorted(procs)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        self._launch(outer, fn, args, kwargs, 0)
        return outer

    def _launch(self, outer: Future, fn, args, kwargs, attempt: int) -> None:
        while True:
            with self._lock:
                pool, generation = self._pool, self._generation
            try:
                inner = pool.submit(fn, *args, **kwargs)
                break
            except BrokenProcessPool:
                self._replace(generation)
            except RuntimeError as exc:            # the pool was shut down under us
                outer.set_exception(exc)
                return
        inner.add_done_callback(lambda f: self._done(f, outer, fn, args, kwargs, attempt, generation))

    def _done(self, inner: Future, outer: Future, fn, args, kwargs, attempt: int, generation: int) -> None:
        exc: BaseException | None
        if inner.cancelled():            # only a replaced (broken) pool or a shutdown cancels
            exc = BrokenProcessPool("the worker pool was replaced") if not self._closed else CancelledError()
        else:
            exc = inner.exception()
        if isinstance(exc, BrokenProcessPool) and attempt < self._retries and not self._closed:
            with self._lock:
                self.retried += 1
            # not from this callback: it runs in the broken pool's management thread
            threading.Thread(target=self._retry, args=(outer, fn, args, kwargs, attempt + 1, generation),
                             daemon=True).start()
            return
        if outer.done():
            return
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def _retry(self, outer, fn, args, kwargs, attempt, generation) -> None:
        self._replace(generation)
        self._launch(outer, fn, args, kwargs, attempt)

    def _replace(self, generation: int) -> None:
        """Replace the pool of ``generation`` once (later callers see the new one)."""
        with self._lock:
            if self._generation != generation or self._closed:
                return
            old = self._pool
            self._pool = self._new_pool()
            self._generation += 1
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def executor_workers(executor) -> int:
    """How many tasks ``executor`` runs at once (1 for None; a guess of 2 when it does not say)."""
    if executor is None:
        return 1
    return max(1, int(getattr(executor, "_max_workers", 2) or 2))


@contextmanager
def dask_executor(address: str, *, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S):
    """``client.get_executor()`` of a Dask distributed scheduler at ``address``.

    Raises a one-line :class:`ParameterError` when ``dask.distributed`` is not installed or
    the scheduler does not answer within ``timeout_s`` seconds.  The client is closed on exit.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise ParameterError("--scheduler needs dask.distributed: pip install 'clusterlob[dask]'") from None
    if not isinstance(address, str) or not address.strip():
        raise ParameterError(f"`scheduler` must be an address like tcp://host:8786, got {address!r}")
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:                       # OSError, TimeoutError, ValueError of a bad address
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParameterError(f"Dask scheduler {address} did not answer within {timeout_s:g} s "
                             f"({reason})") from None
    try:
        executor = client.get_executor()
        try:
            threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        except Exception:                          # pragma: no cover - an old scheduler
            threads = 0
        executor._max_workers = max(1, threads)
        yield executor
    finally:
        client.close()


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None, *,
                  timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S, default_workers: int | None = None):
    """The executor of the ``--workers`` / ``--scheduler`` flags, closed on exit.

    ``scheduler`` gives :func:`dask_executor`; otherwise ``workers`` (default
    ``default_workers``, else the CPU count) local processes, or None (this process) for 1.
    """
    if scheduler is not None and workers is not None:
        raise ParameterError("give --workers or --scheduler, not both (the cluster has its own workers)")
    if scheduler is not None:
        with dask_executor(scheduler, timeout_s=timeout_s) as ex:
            yield ex
        return
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"`--workers` must be an integer >= 1, got {workers!r}")
    n = workers or default_workers or os.cpu_count() or 1
    if n == 1:
        yield None
        return
    pool = LocalProcesses(n)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
