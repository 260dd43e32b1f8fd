"""Trade-triggered order-book features and their causal rolling z-scores.

Every trade of known side becomes six numbers, read from the book snapshot strictly
before it (``asof="strict"``, the default) or at-or-before it (``asof="at_or_before"``),
with times compared on ``ts_local_us`` (``time_key="local"``) or ``ts_exch_us``:

========  ==================================================================================
v_rel     amount / (bid_sz[0] + ask_sz[0])
sbs       log1p(sum of the sizes of the top D levels on the consumed side, in flow units:
          ``Instrument.flow_size``), a missing level counts 0; the consumed side is the asks
          for a buy taker, the bids for a sell taker
obs       the same for the other side (``convention="aggressor"`` swaps sbs and obs)
spread    (ask_px[0] - bid_px[0]) / tick_size, in ticks
t_m       seconds from the last book update that changed the mid to the trade (updates up
          to and including the as-of snapshot); NaN before the first change
t_age     the same for the consumed side's best price
t_queue   (optional, not in the default set) seconds since the consumed side's best queue last
          grew: its size rose at an unchanged price, or a better price formed a new queue
          (see ``docs/features.md`` for when it differs from ``t_age``)
========  ==================================================================================

``FeatureSettings.features`` chooses which of :data:`ALL_FEATURES` are computed and
standardized, in that order (default the six of :data:`FEATURE_NAMES`); every array below
has one column per chosen feature.

Each feature is then standardized over the last ``window`` trades whose raw value is
finite, the current trade included (sample std, ddof 1).  A non-finite raw value (``t_m``
before the first mid change, ``v_rel`` when the touch is missing) gives that feature a
NaN z for that row and does not enter that feature's window; the other features of the
row are unaffected.  A z is NaN until its window holds ``window`` values; it is 0 where
the window's std <= 1e-12 * max(1, |mean|); it is clipped to +-``z_clip``.  A row is
``valid`` when all six z are finite.

:class:`RollingState` carries everything a later day needs (the windows and the current
book), so computing a tape day by day and passing the state equals one pass over the
whole tape, exactly.  See ``docs/features.md``.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .._typing import Days
from .. import _core
from ..errors import ParameterError, TapeError
from ..report import arrow_table
from ..tape.location import TapeSource, resolve_tape
from ..tape.store import read_manifest, read_tape
from ..tape.types import Tape, parse_days
from .settings import (ALL_FEATURES, FEATURE_NAMES, FeatureSettings)

if TYPE_CHECKING:
    import pyarrow as pa

    from .._core import _FeatureParams

__all__ = [
    "ALL_FEATURES",
    "FEATURE_NAMES",
    "FeatureSettings",
    "RollingState",
    "Features",
    "compute_raw_features",
    "rolling_zscore",
    "build_features",
    "iter_features",
    "merge_counts",
]


_N_FEATURES = len(FEATURE_NAMES)
# row flags written by the rolling kernel (defined there)
_ROW_WARMUP, _ROW_NONFINITE, _ROW_ZERO_STD, _ROW_CLIPPED = (
    _core.ROLLING_ROW_WARMUP, _core.ROLLING_ROW_NONFINITE, _core.ROLLING_ROW_ZERO_STD, _core.ROLLING_ROW_CLIPPED)
_STATE_FORMAT = "clusterlob-rolling-state"
_THREADED_ROWS = 1 << 20        # from this many rows the z-scores use two threads


# -- state carried across days --------------------------------------------------------------

def _new_book_state() -> tuple[np.ndarray, np.ndarray]:
    """The carried book before any snapshot (layout: ``_kernels/features.pxi``)."""
    return _core.new_book_state()


def _new_queue_state() -> tuple[np.ndarray, np.ndarray]:
    """The carried t_queue state before any snapshot: NaN (8,) and no growth seen (4,)."""
    return np.full(8, np.nan), np.full(4, _core.BOOK_NO_TIME, np.int64)


def feature_kernel_params(settings: FeatureSettings, tick_size: float) -> _FeatureParams:
    """The feature kernel's ``FeatureParams`` struct, built here and nowhere else."""
    return {"levels": settings.levels, "strict": settings.asof == "strict",
            "tick_size": float(tick_size), "aggressor": settings.convention == "aggressor"}


@dataclass
class RollingState:
    """Everything one day's features need from the days before it.

    The rolling windows (per feature: the last ``window`` finite raw values in a ring
    buffer and an exact-enough running mean and M2, see ``_kernels/rolling.pxi``) and the
    current book (the last snapshot's touch, its top-D depths and the times of the last
    mid / best bid / best ask changes).  Create with :meth:`new`; a :class:`Features`
    result holds the state after its last row.  :meth:`to_dict` is JSON-able and
    round-trips exactly, so a daily cache can persist it.
    """

    settings_key: str
    window: int
    ring: np.ndarray                # (6, W) float64, slot n_seen % W is the next write
    n_seen: np.ndarray              # (6,) int64, finite values seen so far per feature
    run_length: np.ndarray          # (6,) int64, trailing run of identical values (<= W)
    since_recompute: np.ndarray     # (6,) int64
    shift: np.ndarray               # (6,) float64, mean = shift + mean_shifted
    mean_shifted: np.ndarray        # (6,) float64
    m2: np.ndarray                  # (6,) float64, sum of squared deviations in the window
    m2_peak: np.ndarray             # (6,) float64, largest m2 since the last recompute
    book_state: np.ndarray = field(default_factory=lambda: _new_book_state()[0])   # (6,)
    book_times: np.ndarray = field(default_factory=lambda: _new_book_state()[1])   # (5,)
    rows: int = 0                   # feature rows processed so far
    # t_queue only: per side the last best / level-2 price and size, and when those queues
    # last grew (layout in _kernels/features.pxi); carried whatever the feature set
    queue_state: np.ndarray = field(default_factory=lambda: _new_queue_state()[0])      # (8,)
    queue_times: np.ndarray = field(default_factory=lambda: _new_queue_state()[1])      # (4,)

    @classmethod
    def new(cls, settings: "FeatureSettings") -> "RollingState":
        """Empty state (no window filled, no book seen) for ``settings``."""
        w, f = settings.window, len(settings.features)
        z_i, z_f = (lambda: np.zeros(f, np.int64)), (lambda: np.zeros(f))
        return cls(settings.key(), w, np.zeros((f, w)), z_i(), z_i(), z_i(),
                   z_f(), z_f(), z_f(), z_f())

    def copy(self) -> "RollingState":
        """A deep copy (the arrays are copied)."""
        return replace(self, **{f.name: getattr(self, f.name).copy() for f in fields(self)
                                if isinstance(getattr(self, f.name), np.ndarray)})

    def check(self, settings: "FeatureSettings") -> None:
        """Raise ParameterError unless this state was made with ``settings``."""
        if self.settings_key != settings.key():
            raise ParameterError(f"`state` was made with other feature settings "
                                 f"(key {self.settings_key}, expected {settings.key()})")

    def to_dict(self) -> dict:
        """JSON-able dict; floats round-trip exactly, a missing value is None."""
        def floats(a):
            return [None if not math.isfinite(x) else x for x in np.asarray(a, float).ravel().tolist()]

        return {
            "format": _STATE_FORMAT,
            "settings_key": self.settings_key,
            "window": self.window,
            "rows": self.rows,
            "ring": [floats(r) for r in self.ring],
            "n_seen": self.n_seen.tolist(),
            "run_length": self.run_length.tolist(),
            "since_recompute": self.since_recompute.tolist(),
            "shift": floats(self.shift),
            "mean_shifted": floats(self.mean_shifted),
            "m2": floats(self.m2),
            "m2_peak": floats(self.m2_peak),
            "book_state": floats(self.book_state),
            "book_times": [None if t == _core.BOOK_NO_TIME else t for t in self.book_times.tolist()],
            "queue_state": floats(self.queue_state),
            "queue_times": [None if t == _core.BOOK_NO_TIME else t for t in self.queue_times.tolist()],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RollingState":
        """Inverse of :meth:`to_dict`; checks shapes and raises ParameterError."""
        if not isinstance(d, dict) or d.get("format") != _STATE_FORMAT:
            raise ParameterError(f"rolling state: `format` must be {_STATE_FORMAT!r}, "
                                 f"got {d.get('format') if isinstance(d, dict) else type(d).__name__!r}")

        def array(name, shape, dtype, none):
            try:
                values = [none if x is None else x for x in np.ravel(np.array(d[name], dtype=object))]
                return np.ascontiguousarray(np.array(values, dtype=dtype).reshape(shape))
            except (KeyError, ValueError, TypeError):
                raise ParameterError(f"rolling state: `{name}` must be {shape} numbers") from None

        try:
            window = int(d["window"])
        except (KeyError, ValueError, TypeError):
            raise ParameterError(f"rolling state: `window` must be an integer, got {d.get('window')!r}") from None
        try:
            f = len(d["n_seen"])
        except (KeyError, TypeError):
            raise ParameterError("rolling state: `n_seen` must be a list of counts") from None
        fl, it = np.float64, np.int64
        queue = {}
        if "queue_state" in d:      # states written before t_queue existed have none
            queue = {"queue_state": array("queue_state", (8,), fl, np.nan),
                     "queue_times": array("queue_times", (4,), it, int(_core.BOOK_NO_TIME))}
        return cls(str(d.get("settings_key")), window, array("ring", (f, window), fl, np.nan),
                   array("n_seen", (f,), it, 0), array("run_length", (f,), it, 0),
                   array("since_recompute", (f,), it, 0),
                   array("shift", (f,), fl, np.nan), array("mean_shifted", (f,), fl, np.nan),
                   array("m2", (f,), fl, np.nan), array("m2_peak", (f,), fl, np.nan),
                   array("book_state", (_core.BOOK_STATE_SIZE,), fl, np.nan),
                   array("book_times", (_core.BOOK_TIMES_SIZE,), it, int(_core.BOOK_NO_TIME)),
                   int(d.get("rows", 0)), **queue)


# -- result ----------------------------------------------------------------------------------

@dataclass
class Features:
    """Features of one tape (or one day of it).

    Attributes
    ----------
    trade_index : (m,) int64
        Positions in ``tape.trades`` of the trades used (known side, a snapshot before
        them), in processing order.
    raw : (m, 6) float64
        Raw features, columns in :data:`FEATURE_NAMES` order (units in the module doc).
    z : (m, 6) float64
        Rolling z-scores; NaN during warm-up and where the raw value is not finite.
    valid : (m,) bool
        All six z finite: the rows to fit and label.
    counts : dict
        ``trades``, ``unknown_side``, ``no_book_before``, ``rows``, ``valid_rows`` and, per
        feature plus ``total`` (rows with any feature affected): ``warmup_rows``,
        ``nonfinite_raw``, ``zero_std_rows``, ``clipped``.
    state : RollingState
        State after the last row; pass it to the next day.
    settings : FeatureSettings
    """

    trade_index: np.ndarray
    raw: np.ndarray
    z: np.ndarray
    valid: np.ndarray
    counts: dict
    state: RollingState
    settings: FeatureSettings = field(default_factory=FeatureSettings)

    def __len__(self) -> int:
        return int(self.trade_index.shape[0])

    def __repr__(self) -> str:
        return (f"Features(rows={len(self)}, valid={self.counts.get('valid_rows')}, "
                f"W={self.settings.window}, D={self.settings.levels}, "
                f"convention={self.settings.convention!r})")

    def to_dict(self) -> dict:
        """Summary only (settings and counts), not the arrays."""
        return {"feature_names": list(self.settings.features), "settings": self.settings.to_dict(),
                "settings_key": self.settings.key(), "counts": self.counts}

    def to_arrow(self) -> pa.Table:
        """The rows as a ``pyarrow.Table``: ``trade_index`` (int64), ``raw_<feature>`` and
        ``z_<feature>`` (float64, in :data:`FEATURE_NAMES` order) and ``valid`` (bool); the
        settings key in the schema metadata."""
        columns: dict[str, np.ndarray] = {"trade_index": self.trade_index}
        columns.update({f"raw_{name}": self.raw[:, j] for j, name in enumerate(FEATURE_NAMES)})
        columns.update({f"z_{name}": self.z[:, j] for j, name in enumerate(FEATURE_NAMES)})
        columns["valid"] = self.valid
        return arrow_table(columns, {"settings_key": self.settings.key()})


# -- raw features ----------------------------------------------------------------------------

def _check_inputs(tape, settings) -> None:
    if not isinstance(tape, Tape):
        raise ParameterError(f"`tape` must be a clusterlob Tape, got {type(tape).__name__}")
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    if settings.levels > tape.book.levels:
        raise ParameterError(f"`levels` must be <= the tape's book depth ({tape.book.levels}), "
                             f"got {settings.levels}")


def time_order(ts: np.ndarray, what: str, time_key: str) -> np.ndarray | None:
    """Rows in time order: None when already sorted, else a stable argsort."""
    back = _core.count_backwards_steps(ts)
    if back == 0:
        return None
    if time_key == "local":
        raise TapeError(f"{what} are not sorted by ts_local_us ({back} steps back); "
                        f"read the tape with clusterlob.read_tape, which keeps it sorted")
    return np.argsort(ts, kind="stable").astype(np.int64, copy=False)


def raw_feature_rows(tape: Tape, settings: FeatureSettings, state: RollingState | None,
                     queue_out: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray, np.ndarray]:
    """(trade_index, raw, counts, book_state, book_times); the state is not modified.

    ``raw`` has the columns of ``settings.features``; when they include ``t_queue`` the
    queue state after the tape is put into ``queue_out`` (keys ``state``, ``times``)."""
    trades, book = tape.trades, tape.book
    col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
    trade_ts = np.ascontiguousarray(getattr(trades, col), dtype=np.int64)
    book_ts = np.ascontiguousarray(getattr(book, col), dtype=np.int64)
    side = np.ascontiguousarray(trades.side, dtype=np.int8)
    amount = np.ascontiguousarray(trades.amount, dtype=np.float64)

    trade_order = time_order(trade_ts, "trades", settings.time_key)
    book_order = time_order(book_ts, "book snapshots", settings.time_key)
    known = side != 0
    if trade_order is None:
        rows = np.flatnonzero(known).astype(np.int64, copy=False)
    else:
        rows = trade_order[known[trade_order]]
    if book_order is None:
        book_order = np.arange(len(book), dtype=np.int64)

    if state is None:
        book_state, book_times = _new_book_state()
    else:
        book_state, book_times = state.book_state.copy(), state.book_times.copy()
    with_queue = "t_queue" in settings.features
    queue_state: np.ndarray | None = None
    queue_times: np.ndarray | None = None
    if with_queue:
        queue_state, queue_times = ((state.queue_state.copy(), state.queue_times.copy()) if state is not None
                                    else _new_queue_state())
    raw = np.empty((rows.shape[0], len(ALL_FEATURES) if with_queue else _N_FEATURES))
    bid_px, ask_px, bid_sz, ask_sz = (np.asarray(getattr(book, name), dtype=np.float64)
                                      for name in ("bid_px", "ask_px", "bid_sz", "ask_sz"))
    n_no_book = _core.asof_trade_features(
        trade_ts, side, amount, rows, book_ts, book_order, bid_px, ask_px, bid_sz, ask_sz,
        feature_kernel_params(settings, tape.instrument.tick_size), book_state, book_times, raw,
        queue_state, queue_times, flow_unit=tape.instrument.flow_unit)
    if with_queue and queue_out is not None:
        queue_out["state"], queue_out["times"] = queue_state, queue_times
    if settings.features != FEATURE_NAMES:
        raw = np.ascontiguousarray(raw[:, [ALL_FEATURES.index(n) for n in settings.features]])
    counts = {"trades": len(trades), "unknown_side": int(len(trades) - rows.shape[0]),
              "no_book_before": int(n_no_book), "rows": int(rows.shape[0] - n_no_book)}
    return rows[n_no_book:], raw[n_no_book:], counts, book_state, book_times


def compute_raw_features(tape: Tape, settings: FeatureSettings = FeatureSettings(),
                         state: RollingState | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Raw features of every trade of known side that has a book snapshot before it.

    Parameters
    ----------
    tape : Tape
        Trades and book snapshots, sorted by local time (as :func:`read_tape` gives them).
    settings : FeatureSettings
    state : RollingState, optional
        Only its current book is used (the previous day's last snapshot), so the first
        trades of a day see the book as one pass would.  Not modified.

    Returns
    -------
    trade_index : (m,) int64
        Positions in ``tape.trades`` of the rows, in processing (time) order.
    raw : (m, 6) float64
        Columns in :data:`FEATURE_NAMES` order; ``t_m`` / ``t_age`` in seconds,
        ``spread`` in ticks.
    counts : dict
        ``trades``, ``unknown_side``, ``no_book_before`` (known-side trades before any
        snapshot), ``rows``.
    """
    _check_inputs(tape, settings)
    if state is not None:
        _start_state(settings, state)
    trade_index, raw, counts, _, _ = raw_feature_rows(tape, settings, state)
    return trade_index, raw, counts


# -- rolling z-scores ------------------------------------------------------------------------

def _rolling(raw: np.ndarray, settings: FeatureSettings, state: RollingState):
    """Run the kernel on trusted input; ``state`` is updated in place."""
    m = raw.shape[0]
    n_features = len(settings.features)
    z = np.empty((m, n_features))
    per_feature = np.zeros((n_features, len(_core.ROLLING_COUNT_COLUMNS)), dtype=np.int64)

    def run(col_lo, col_hi):
        flags = np.zeros(m, dtype=np.uint8)
        _core.rolling_zscore_kernel(raw, state, settings.z_clip, z, flags, per_feature, col_lo, col_hi)
        return flags

    if m >= _THREADED_ROWS and (os.cpu_count() or 1) >= 2:
        # the columns are independent and the kernel releases the GIL: two threads
        half = n_features // 2
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(run, (0, half), (half, n_features)))
        flags = np.bitwise_or(parts[0], parts[1], out=parts[0])
    else:
        flags = run(0, n_features)
    state.rows += m
    counts = {"rows": m}
    count_key = {"warmup": "warmup_rows", "nonfinite": "nonfinite_raw", "zero_std": "zero_std_rows",
                 "clipped": "clipped"}
    row_bit = {"warmup": _ROW_WARMUP, "nonfinite": _ROW_NONFINITE, "zero_std": _ROW_ZERO_STD,
               "clipped": _ROW_CLIPPED}
    for col, what in enumerate(_core.ROLLING_COUNT_COLUMNS):
        name, bit = count_key[what], row_bit[what]
        entry = {f: int(per_feature[k, col]) for k, f in enumerate(settings.features)}
        entry["total"] = int(np.count_nonzero(flags & bit))
        counts[name] = entry
    valid = (flags & (_ROW_WARMUP | _ROW_NONFINITE)) == 0
    counts["valid_rows"] = int(np.count_nonzero(valid))
    return z, valid, counts


def rolling_zscore(raw: np.ndarray, settings: FeatureSettings = FeatureSettings(),
                   state: RollingState | None = None) -> tuple[np.ndarray, RollingState, dict]:
    """Causal rolling z-scores of each column of ``raw`` (see the module doc for the rules).

    Parameters
    ----------
    raw : (m, 6) float64
        Raw features in :data:`FEATURE_NAMES` order, rows in time order.
    settings : FeatureSettings
        ``window`` and ``z_clip`` are used.
    state : RollingState, optional
        Windows carried from earlier rows (for example the previous day); not modified.

    Returns
    -------
    z : (m, 6) float64
        NaN while a feature's window holds fewer than W values and where raw is not finite.
    state : RollingState
        The state after the last row.
    counts : dict
        ``rows``, ``valid_rows`` and, per feature plus ``total``, ``warmup_rows``,
        ``nonfinite_raw``, ``zero_std_rows``, ``clipped``.
    """
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    raw = np.asarray(raw)
    n_features = len(settings.features)
    if raw.ndim != 2 or raw.shape[1] != n_features:
        raise ParameterError(f"`raw` must have shape (m, {n_features}), got {raw.shape}")
    raw = np.ascontiguousarray(raw, dtype=np.float64)
    state = _start_state(settings, state)
    z, _, counts = _rolling(raw, settings, state)
    return z, state, counts


def _start_state(settings: FeatureSettings, state: RollingState | None) -> RollingState:
    if state is None:
        return RollingState.new(settings)
    if not isinstance(state, RollingState):
        raise ParameterError(f"`state` must be a RollingState, got {type(state).__name__}")
    state.check(settings)
    if state.window != settings.window or state.ring.shape != (len(settings.features), settings.window):
        raise ParameterError(f"`state` holds windows of {state.window}, settings say {settings.window}")
    return state.copy()


# -- both ------------------------------------------------------------------------------------

def build_features(tape: Tape, settings: FeatureSettings = FeatureSettings(),
                   state: RollingState | None = None) -> Features:
    """Raw features and rolling z-scores of a tape, continuing from ``state``.

    Parameters
    ----------
    tape : Tape
        One day or many, sorted by local time (as :func:`read_tape` gives them).
    settings : FeatureSettings
    state : RollingState, optional
        The ``state`` of the previous day's :class:`Features`; None starts fresh.  Day by
        day with the state passed on gives exactly the one-pass result.  Not modified.

    Returns
    -------
    Features
    """
    _check_inputs(tape, settings)
    state = _start_state(settings, state)
    queue: dict = {}
    trade_index, raw, raw_counts, book_state, book_times = raw_feature_rows(tape, settings, state, queue)
    state.book_state, state.book_times = book_state, book_times
    if queue:
        state.queue_state, state.queue_times = queue["state"], queue["times"]
    z, valid, z_counts = _rolling(raw, settings, state)
    counts = {**raw_counts, **z_counts}
    return Features(trade_index, raw, z, valid, counts, state, settings)


# -- day by day ------------------------------------------------------------------------------

def merge_counts(parts: Iterable[dict]) -> dict:
    """Sum the ``counts`` of several :class:`Features` (for example one per day)."""
    total: dict = {}
    for counts in parts:
        for key, value in counts.items():
            if isinstance(value, dict):
                entry = total.setdefault(key, {})
                for name, n in value.items():
                    entry[name] = entry.get(name, 0) + n
            else:
                total[key] = total.get(key, 0) + value
    return total


def iter_features(path: TapeSource, settings: FeatureSettings = FeatureSettings(), days: Days = None,
                  state: RollingState | None = None) -> Iterator[tuple[str, Features]]:
    """Features of a tape directory, one day at a time, the state carried between days.

    Parameters
    ----------
    path : str or Path
        Tape directory: a local folder or a URI (``file://``, ``s3://``, ...).
    settings : FeatureSettings
    days : None, str or sequence of str
        As for :func:`clusterlob.tape.read_tape` (``"FROM:TO"``, a day, a list).
    state : RollingState, optional
        State at the start of the first chosen day (for example from a cache).

    Yields
    ------
    (day, Features)
        ``trade_index`` counts positions within that day's trades.
    """
    loc = resolve_tape(path)
    manifest = read_manifest(loc)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        tape = read_tape(loc, [day], levels=settings.levels, columns=settings.tape_columns())
        features = build_features(tape, settings, state)
        state = features.state
        yield day, features
