"""Trade-triggered order-book features and their causal rolling z-scores.

Every trade of known side becomes six numbers, read from the book snapshot strictly
before it (``asof="strict"``, the default) or at-or-before it (``asof="at_or_before"``),
with times compared on ``ts_local_us`` (``time_key="local"``) or ``ts_exch_us``:

========  ==================================================================================
v_rel     amount / (bid_sz[0] + ask_sz[0])
sbs       log1p(sum of the sizes of the top D levels on the consumed side), a missing level
          counts 0; the consumed side is the asks for a buy taker, the bids for a sell taker
obs       the same for the other side (``convention="aggressor"`` swaps sbs and obs)
spread    (ask_px[0] - bid_px[0]) / tick_size, in ticks
t_m       seconds from the last book update that changed the mid to the trade (updates up
          to and including the as-of snapshot); NaN before the first change
t_age     the same for the consumed side's best price
========  ==================================================================================

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

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from .. import _core
from ..errors import ParameterError, TapeError
from ..tape.store import MAX_LEVELS, Tape, parse_days, read_manifest, read_tape

__all__ = [
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

FEATURE_NAMES = ("v_rel", "sbs", "obs", "spread", "t_m", "t_age")
CONVENTIONS = ("paper", "aggressor")
ASOF_RULES = ("strict", "at_or_before")
TIME_KEYS = ("local", "exchange")

_N_FEATURES = len(FEATURE_NAMES)
_NO_TIME = np.iinfo(np.int64).min          # "no change seen yet" in the carried book
# row flags written by the rolling kernel
_ROW_WARMUP, _ROW_NONFINITE, _ROW_ZERO_STD, _ROW_CLIPPED = 1, 2, 4, 8
_STATE_FORMAT = "clusterlob-rolling-state"
_THREADED_ROWS = 1 << 20        # from this many rows the z-scores use two threads


# -- settings ------------------------------------------------------------------------------

MAX_WINDOW = 10_000_000     # trades: several busy days; more is a typo


@dataclass(frozen=True)
class FeatureSettings:
    """How trades become features; one object that travels through the whole pipeline.

    Parameters
    ----------
    levels : int
        D, book levels summed into ``sbs`` / ``obs``, 1..25.
    window : int
        W, trades in each rolling z-score window, >= 2.
    z_clip : float
        z-scores are clipped to +-z_clip (> 0; ``inf`` disables clipping).
    convention : {"paper", "aggressor"}
        "paper": sbs is the consumed (resting) side; "aggressor" swaps sbs and obs.
    asof : {"strict", "at_or_before"}
        Which snapshot a trade sees: the last one strictly before it, or at or before it.
    time_key : {"local", "exchange"}
        Time column used for ordering, the as-of join, ``t_m`` and ``t_age``.
    """

    levels: int = 5
    window: int = 100
    z_clip: float = 5.0
    convention: str = "paper"
    asof: str = "strict"
    time_key: str = "local"

    def __post_init__(self):
        for name, lo, hi in (("levels", 1, MAX_LEVELS), ("window", 2, None)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ParameterError(f"`{name}` must be an integer, got {value!r}")
            if value < lo or (hi is not None and value > hi):
                rule = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
                raise ParameterError(f"`{name}` must be {rule}, got {value}")
            object.__setattr__(self, name, int(value))
        if self.window > MAX_WINDOW:     # its buffers are allocated up front
            raise ParameterError(f"`window` must be <= {MAX_WINDOW:,} trades, got {self.window}")
        clip = self.z_clip
        if isinstance(clip, bool) or not isinstance(clip, (int, float, np.floating)) \
                or math.isnan(clip) or clip <= 0:
            raise ParameterError(f"`z_clip` must be a number > 0, got {clip!r}")
        object.__setattr__(self, "z_clip", float(clip))
        for name, allowed in (("convention", CONVENTIONS), ("asof", ASOF_RULES),
                              ("time_key", TIME_KEYS)):
            if getattr(self, name) not in allowed:
                raise ParameterError(f"`{name}` must be one of {', '.join(allowed)}, "
                                     f"got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """Plain dict (JSON-able; an infinite ``z_clip`` becomes the string "inf")."""
        d = asdict(self)
        if math.isinf(d["z_clip"]):
            d["z_clip"] = "inf"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSettings":
        """Inverse of :meth:`to_dict`; missing keys take their defaults."""
        if not isinstance(d, dict):
            raise ParameterError(f"feature settings must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"feature settings: unknown keys {unknown} "
                                 f"(known: {', '.join(sorted(known))})")
        d = dict(d)
        if d.get("z_clip") == "inf":
            d["z_clip"] = math.inf
        return cls(**d)

    @classmethod
    def add_arguments(cls, parser) -> None:
        """Add the feature flags (``--levels --window --z-clip --convention --asof --time-key``)
        to an argparse parser or argument group; :meth:`from_args` reads them back."""
        d = cls()
        parser.add_argument("--levels", type=int, default=d.levels, help=f"book levels D, 1..25 (default {d.levels})")
        parser.add_argument("--window", type=int, default=d.window,
                            help=f"z-score window W in trades (default {d.window})")
        parser.add_argument("--z-clip", type=float, default=d.z_clip, help=f"clip z to +-this (default {d.z_clip:g})")
        parser.add_argument("--convention", choices=CONVENTIONS, default=d.convention,
                            help="paper: sbs = consumed side (default); aggressor: swapped")
        parser.add_argument("--asof", choices=ASOF_RULES, default=d.asof,
                            help="strict: the snapshot before the trade (default); at_or_before")
        parser.add_argument("--time-key", choices=TIME_KEYS, default=d.time_key,
                            help="local receive time (default) or exchange time")

    @classmethod
    def from_args(cls, args) -> "FeatureSettings":
        """The settings of the flags of :meth:`add_arguments`."""
        return cls(levels=args.levels, window=args.window, z_clip=args.z_clip,
                   convention=args.convention, asof=args.asof, time_key=args.time_key)

    def key(self) -> str:
        """Stable 16-hex-digit hash of the settings, for cache file names."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- state carried across days --------------------------------------------------------------

def _new_book_state() -> tuple[np.ndarray, np.ndarray]:
    book_state = np.full(6, np.nan)    # touch px, touch size, log1p top-D depths, spread (ticks)
    book_times = np.array([0, 0, _NO_TIME, _NO_TIME, _NO_TIME], dtype=np.int64)
    return book_state, book_times


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

    @classmethod
    def new(cls, settings: "FeatureSettings") -> "RollingState":
        """Empty state (no window filled, no book seen) for ``settings``."""
        w, f = settings.window, _N_FEATURES
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
            "book_times": [None if t == _NO_TIME else t for t in self.book_times.tolist()],
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
        f, fl, it = _N_FEATURES, np.float64, np.int64
        return cls(str(d.get("settings_key")), window, array("ring", (f, window), fl, np.nan),
                   *(array(name, (f,), it, 0) for name in ("n_seen", "run_length", "since_recompute")),
                   *(array(name, (f,), fl, np.nan) for name in ("shift", "mean_shifted", "m2", "m2_peak")),
                   array("book_state", (6,), fl, np.nan), array("book_times", (5,), it, int(_NO_TIME)),
                   int(d.get("rows", 0)))


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
        return {"feature_names": list(FEATURE_NAMES), "settings": self.settings.to_dict(),
                "settings_key": self.settings.key(), "counts": self.counts}


# -- raw features ----------------------------------------------------------------------------

def _check_inputs(tape, settings) -> None:
    if not isinstance(tape, Tape):
        raise ParameterError(f"`tape` must be a clusterlob Tape, got {type(tape).__name__}")
    if not isinstance(settings, FeatureSettings):
        raise ParameterError(f"`settings` must be a FeatureSettings, got {type(settings).__name__}")
    if settings.levels > tape.book.levels:
        raise ParameterError(f"`levels` must be <= the tape's book depth ({tape.book.levels}), "
                             f"got {settings.levels}")


def _time_order(ts: np.ndarray, what: str, time_key: str):
    """Rows in time order: None when already sorted, else a stable argsort."""
    back = _core.count_backwards_steps(ts)
    if back == 0:
        return None
    if time_key == "local":
        raise TapeError(f"{what} are not sorted by ts_local_us ({back} steps back); "
                        f"read the tape with clusterlob.read_tape, which keeps it sorted")
    return np.argsort(ts, kind="stable").astype(np.int64, copy=False)


def _raw_features(tape: Tape, settings: FeatureSettings, state: RollingState | None):
    """(trade_index, raw, counts, book_state, book_times); the state is not modified."""
    trades, book = tape.trades, tape.book
    col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
    trade_ts = np.ascontiguousarray(getattr(trades, col), dtype=np.int64)
    book_ts = np.ascontiguousarray(getattr(book, col), dtype=np.int64)
    side = np.ascontiguousarray(trades.side, dtype=np.int8)
    amount = np.ascontiguousarray(trades.amount, dtype=np.float64)

    trade_order = _time_order(trade_ts, "trades", settings.time_key)
    book_order = _time_order(book_ts, "book snapshots", settings.time_key)
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
    raw = np.empty((rows.shape[0], _N_FEATURES))
    n_no_book = _core.asof_trade_features(
        trade_ts, side, amount, rows, book_ts, book_order,
        *(np.asarray(getattr(book, name), dtype=np.float64)
          for name in ("bid_px", "ask_px", "bid_sz", "ask_sz")),
        settings.levels, settings.asof == "strict", float(tape.instrument.tick_size),
        settings.convention == "aggressor", book_state, book_times, raw)
    counts = {"trades": len(trades), "unknown_side": int(len(trades) - rows.shape[0]),
              "no_book_before": int(n_no_book), "rows": int(rows.shape[0] - n_no_book)}
    return rows[n_no_book:], raw[n_no_book:], counts, book_state, book_times


def compute_raw_features(tape: Tape, settings: FeatureSettings = FeatureSettings(),
                         state: RollingState | None = None):
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
    trade_index, raw, counts, _, _ = _raw_features(tape, settings, state)
    return trade_index, raw, counts


# -- rolling z-scores ------------------------------------------------------------------------

def _rolling(raw: np.ndarray, settings: FeatureSettings, state: RollingState):
    """Run the kernel on trusted input; ``state`` is updated in place."""
    m = raw.shape[0]
    z = np.empty((m, _N_FEATURES))
    per_feature = np.zeros((_N_FEATURES, 4), dtype=np.int64)

    def run(col_lo, col_hi):
        flags = np.zeros(m, dtype=np.uint8)
        _core.rolling_zscore_kernel(raw, state.ring, state.n_seen, state.run_length,
                                    state.since_recompute, state.shift, state.mean_shifted,
                                    state.m2, state.m2_peak, settings.z_clip, z, flags,
                                    per_feature, col_lo, col_hi)
        return flags

    if m >= _THREADED_ROWS and (os.cpu_count() or 1) >= 2:
        # the columns are independent and the kernel releases the GIL: two threads
        half = _N_FEATURES // 2
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(run, (0, half), (half, _N_FEATURES)))
        flags = np.bitwise_or(parts[0], parts[1], out=parts[0])
    else:
        flags = run(0, _N_FEATURES)
    state.rows += m
    counts = {"rows": m}
    for col, (name, bit) in enumerate((("warmup_rows", _ROW_WARMUP), ("nonfinite_raw", _ROW_NONFINITE),
                                       ("zero_std_rows", _ROW_ZERO_STD), ("clipped", _ROW_CLIPPED))):
        entry = {f: int(per_feature[k, col]) for k, f in enumerate(FEATURE_NAMES)}
        entry["total"] = int(np.count_nonzero(flags & bit))
        counts[name] = entry
    valid = (flags & (_ROW_WARMUP | _ROW_NONFINITE)) == 0
    counts["valid_rows"] = int(np.count_nonzero(valid))
    return z, valid, counts


def rolling_zscore(raw: np.ndarray, settings: FeatureSettings = FeatureSettings(),
                   state: RollingState | None = None):
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
    if raw.ndim != 2 or raw.shape[1] != _N_FEATURES:
        raise ParameterError(f"`raw` must have shape (m, {_N_FEATURES}), got {raw.shape}")
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
    if state.window != settings.window or state.ring.shape != (_N_FEATURES, settings.window):
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
    trade_index, raw, raw_counts, book_state, book_times = _raw_features(tape, settings, state)
    state.book_state, state.book_times = book_state, book_times
    z, valid, z_counts = _rolling(raw, settings, state)
    counts = {**raw_counts, **z_counts}
    return Features(trade_index, raw, z, valid, counts, state, settings)


# -- day by day ------------------------------------------------------------------------------

def merge_counts(parts) -> dict:
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


def iter_features(path, settings: FeatureSettings = FeatureSettings(), days=None,
                  state: RollingState | None = None):
    """Features of a tape directory, one day at a time, the state carried between days.

    Parameters
    ----------
    path : str or Path
        Tape directory.
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
    manifest = read_manifest(path)
    for day in parse_days(days, [d["date"] for d in manifest["days"]]):
        features = build_features(read_tape(path, [day]), settings, state)
        state = features.state
        yield day, features
