"""Type stub of the compiled module ``clusterlob._core`` (``_core.pyx`` + ``_kernels/*.pxi``).

What type checkers (mypy, IDEs) see of the hot loops: the kernels' signatures as the Python
modules call them.  A typed memoryview argument (``const double[:, ::1]``) is an ndarray of
that dtype and shape, C-contiguous; ``OUT`` arrays are filled in place.  An ``object``
argument read by attribute is a ``Protocol`` of what the kernel reads (``_BucketGrid``,
``_RollingWindows``); a C struct passed as a dict is a ``TypedDict`` (``_FeatureParams``).  Keep this file in step
with the ``def`` lines of the kernels: ``tests/test_types.py`` runs mypy's ``stubtest`` on the
built module, which fails on a name or a parameter that differs.

The constructors of the three engine cores (``_ReplayEngine``, ``_OnlineCore``,
``_SimExchange``) are private: only ``replay/engine.py``, ``replay/online.py`` and
``replay/gateway.py`` build them, from a ``StrategyConfig`` through
``replay.engine.kernel_params`` (a dict with every key of ``KERNEL_PARAMS``); the online
core's rolling-state arrays are not listed one by one here.
"""
from typing import Any, ClassVar, Protocol, TypedDict

import numpy as np
from numpy.typing import NDArray

_F64 = NDArray[np.float64]
_I64 = NDArray[np.int64]
_I32 = NDArray[np.int32]
_I8 = NDArray[np.int8]
_U8 = NDArray[np.uint8]

class _BucketGrid(Protocol):
    # what ofi_accumulate reads of a clusterlob.signals.BucketGrid
    @property
    def start_us(self) -> int: ...
    @property
    def bucket_us(self) -> int: ...

class _RollingWindows(Protocol):
    # what rolling_zscore_kernel reads of a clusterlob.features.RollingState
    ring: _F64
    n_seen: _I64
    run_length: _I64
    since_recompute: _I64
    shift: _F64
    mean_shifted: _F64
    m2: _F64
    m2_peak: _F64

class _FeatureParams(TypedDict):
    # the FeatureParams struct of features.pxi, passed as a dict
    levels: int
    strict: bool
    tick_size: float
    aggressor: bool

def build_info() -> dict[str, bool]: ...

class ClusterlobError(Exception): ...
class TapeError(ClusterlobError, ValueError): ...
class ParameterError(ClusterlobError, ValueError): ...

# -- tape.pxi ---------------------------------------------------------------------------------
def count_backwards_steps(ts_us: _I64) -> int: ...

# -- signals.pxi ------------------------------------------------------------------------------
def ofi_accumulate(ts_us: _I64, side: _I8, amount: _F64, labels: _I8, row_of_code: _I64,
                   grid: _BucketGrid,
                   ofi_size: _F64, ofi_count: _F64, trades: _I64) -> tuple[int, int]: ...

# -- book_flow.pxi ----------------------------------------------------------------------------
def book_flow_events(bid_px: _F64, bid_sz: _F64, ask_px: _F64, ask_sz: _F64, levels: int,
                     prev: _F64, has_prev: _I64, e_touch: _F64, e_depth: _F64) -> None: ...

# -- kmeans.pxi -------------------------------------------------------------------------------
def kmeans_lloyd_pass(X: _F64, centers: _F64, labels: _I32, sums: _F64,
                      counts: _I64) -> tuple[float, int]: ...
def kmeans_seed_potentials(X: _F64, candidates: _F64, closest_sq_dist: _F64,
                           potentials: _F64) -> None: ...
def kmeans_seed_update(X: _F64, centre: _F64, closest_sq_dist: _F64, cumulative: _F64) -> float: ...
KMEANS_MAX_SEED_CANDIDATES: int

def kmeans_column_moments(X: _F64, mean: _F64, sq_dev: _F64) -> int: ...

# -- rolling.pxi ------------------------------------------------------------------------------
ROLLING_ROW_WARMUP: int
ROLLING_ROW_NONFINITE: int
ROLLING_ROW_ZERO_STD: int
ROLLING_ROW_CLIPPED: int
ROLLING_COUNT_COLUMNS: tuple[str, ...]

def rolling_zscore_kernel(raw: _F64, state: _RollingWindows, z_clip: float, z: _F64,
                          row_flags: _U8, counts: _I64, col_lo: int = ...,
                          col_hi: int = ...) -> None: ...

# -- features.pxi -----------------------------------------------------------------------------
FEATURE_COLUMNS: tuple[str, ...]
BOOK_STATE_SIZE: int
BOOK_TIMES_SIZE: int
BOOK_TIMES_HAS: int
BOOK_TIMES_TS: int
BOOK_TIMES_MID_CHANGE: int
BOOK_TIMES_BID_CHANGE: int
BOOK_TIMES_ASK_CHANGE: int
BOOK_NO_TIME: int

def new_book_state() -> tuple[_F64, _I64]: ...
def asof_trade_features(trade_ts_us: _I64, side: _I8, amount: _F64, trade_rows: _I64,
                        book_ts_us: _I64, book_rows: _I64, bid_px: _F64, ask_px: _F64,
                        bid_sz: _F64, ask_sz: _F64, params: _FeatureParams,
                        book_state: _F64, book_times: _I64, raw: _F64,
                        queue_state: _F64 | None = ..., queue_times: _I64 | None = ...,
                        flow_unit: float = ...) -> int: ...

# -- importance.pxi ---------------------------------------------------------------------------
def cluster_moments_update(z: _F64, labels: _I64, count: _I64, mean: _F64, m2: _F64) -> int: ...

# -- binance.pxi, binance_scan.pxi ------------------------------------------------------------
def binance_parse_levels(bids: list[Any], asks: list[Any]) -> tuple[_F64, int]: ...

class BinanceL2Book:
    def __new__(cls, capacity: int = ...) -> BinanceL2Book: ...   # a __cinit__
    def apply(self, bids: list[Any], asks: list[Any]) -> None: ...
    def reset(self, bids: list[Any], asks: list[Any]) -> None: ...
    def apply_levels(self, levels: _F64, n_bids: int) -> None: ...
    def reset_levels(self, levels: _F64, n_bids: int) -> None: ...
    def top_into(self, out: _F64, row: int) -> None: ...
    def top(self, levels: int = ...) -> _F64: ...
    def best(self) -> tuple[float, float, float, float]: ...
    @property
    def depth(self) -> tuple[int, int]: ...
    def crossed(self) -> bool: ...

BINANCE_SCAN_END: int
BINANCE_SCAN_OTHER: int
BINANCE_SCAN_DEPTH: int
BINANCE_SCAN_FULL: int
BINANCE_TRADE_INTS: tuple[str, ...]
BINANCE_TRADE_FLOATS: tuple[str, ...]
BINANCE_DEPTH_HEADER: tuple[str, ...]

class BinanceLineScanner:
    symbol: bytes
    take_trades: bool
    take_depth: bool
    n_trades: int
    lines: int
    book_tickers: int
    trades: int
    def __init__(self) -> None: ...
    def set_output(self, ints: _I64, floats: _F64) -> None: ...
    def set_depth_output(self, header: _I64, levels: _F64) -> None: ...
    def scan(self, buf: bytes, pos: int) -> tuple[int, int, int]: ...

# -- l2_rows.pxi ------------------------------------------------------------------------------
L2_KIND: dict[str, int]
L2_STATE: dict[str, int]
L2_COUNTS: dict[str, int]

def l2_apply_rows(book: BinanceL2Book, group: _I64, ts_exch: _I64, ts_local: _I64, kind: _I8,
                  price: _F64, amount: _F64, file_row: _I64, state: _I64, counts: _I64,
                  out_exch: _I64, out_local: _I64, out_row: _I64, out_levels: _F64,
                  final: bool = ...) -> int: ...

# -- accumulator.pxi --------------------------------------------------------------------------
SIGNAL_NORMS: tuple[str, ...]

class SignalAccumulator:
    @property
    def alpha_role(self) -> int: ...
    @property
    def hazard_role(self) -> int: ...
    @property
    def half_life_s(self) -> float: ...
    def __init__(self, half_life_s: float = ..., size_weight: float = ...,
                 signal_scale_trades: float = ..., alpha_role: int = ...,
                 hazard_role: int = ..., signal_norm: str = ...) -> None: ...
    @classmethod
    def from_config(cls, config: Any) -> SignalAccumulator: ...
    def update(self, ts_us: int, side: int, amount: float, role: int) -> None: ...
    def update_many(self, ts_us: _I64, side: _I8, amount: _F64, role: _I8) -> None: ...
    def alpha(self, ts_us: int | None = ...) -> float: ...
    def hazard(self, ts_us: int | None = ...) -> float: ...
    @property
    def mean_size(self) -> float: ...
    @property
    def last_ts_us(self) -> int | None: ...
    def reset(self) -> None: ...

# -- replay.pxi -------------------------------------------------------------------------------
GRID_TOLERANCE_TICKS: float
ROUNDING_GUARD_TICKS: float
FILL_MODELS: tuple[str, ...]
QUEUE_RULES: tuple[str, ...]
QUOTE_UPDATES: tuple[str, ...]
FILL_SIZES: tuple[str, ...]
FILL_REASONS: tuple[str, ...]
FILL_INT_COLUMNS: tuple[str, ...]
FILL_FLOAT_COLUMNS: tuple[str, ...]
MARK_FLOAT_COLUMNS: tuple[str, ...]
KERNEL_PARAMS: tuple[str, ...]

class _ReplayEngine:
    def __init__(self, params: dict[str, Any], first_mark_us: int) -> None: ...
    def next_arrays(self, last_book_row: _F64 | None = ..., funding: bool = ...,
                    latency: bool = ...) -> None: ...
    def run(self, trade_ts_us: _I64, trade_price: _F64, trade_amount: _F64, trade_side: _I8,
            trade_role: _I8, book_ts_us: _I64, book_bid_px: _F64, book_bid_sz: _F64,
            book_ask_px: _F64, book_ask_sz: _F64, funding_ts_us: _I64, funding_rate: _F64,
            lat_req_us: _I64, lat_entry_us: _I64, lat_response_us: _I64,
            trade_exch_us: _I64, book_exch_us: _I64,
            fill_ints: _I64, fill_floats: _F64, mark_ts_us: _I64,
            mark_floats: _F64) -> tuple[int, int, bool]: ...
    def finish(self) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...

# -- online.pxi, online_gateway.pxi -----------------------------------------------------------
class OrderAction:
    kind_code: int
    side: int
    order_id: int
    price_ticks: int
    price: float
    size: float
    ts_us: int
    @property
    def kind(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...

class _OnlineCore:
    feature_rows: int
    last_cluster: int
    last_role: int
    last_flags: int
    trades_before_book: int
    count_trades_before_book: bool
    changes_only: bool
    marks: list[Any]
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def set_data_latencies(self, feed_data: bool, exchange_offset_us: int, lat_req_us: _I64,
                           lat_entry_us: _I64, lat_response_us: _I64, source: str = ...) -> None: ...
    def on_trade(self, ts_us: int, price: float, amount: float, side: int,
                 exch_us: int | None = ...) -> tuple[OrderAction, ...] | None: ...
    def on_book(self, ts_us: int, levels: _F64, exch_us: int | None = ...) -> tuple[OrderAction, ...] | None: ...
    def on_fill(self, ts_us: int, side: int, order_id: int, price: float, qty: float,
                done: bool) -> float: ...
    def on_funding(self, ts_us: int, amount: float) -> None: ...
    def order_gone(self, order_id: int, side: int = ..., qty: float = ...) -> None: ...
    def features(self) -> tuple[_F64, _F64]: ...
    def signals(self, ts_us: int) -> tuple[float, float]: ...
    def live_order_ids(self) -> tuple[int, int]: ...
    def last_decision(self) -> tuple[int | None, int | None]: ...
    @property
    def has_book(self) -> bool: ...
    @property
    def last_ts_us(self) -> int | None: ...
    @property
    def mid(self) -> float: ...
    @property
    def inventory(self) -> float: ...
    @property
    def cash(self) -> float: ...
    def snapshot(self) -> dict[str, Any]: ...
    def _state_bytes(self) -> bytes: ...

class _SimExchange:
    events: list[tuple[Any, ...]]
    fills: list[tuple[Any, ...]]
    marks: list[tuple[Any, ...]]
    n_unknown_cancels: int
    n_trades_seen: int
    def __init__(self, params: dict[str, Any], levels: int, funding_ts_us: _I64 | None = ...,
                 funding_rate: _F64 | None = ..., funding_constant: float = ...,
                 funding_interval_us: int = ...) -> None: ...
    def set_data_latencies(self, feed_data: bool, exchange_offset_us: int, lat_req_us: _I64,
                           lat_entry_us: _I64, lat_response_us: _I64) -> None: ...
    def submit(self, actions: tuple[OrderAction, ...], ts_us: int) -> None: ...
    def advance(self, ts_us: int) -> bool: ...
    def on_trade(self, ts_us: int, price: float, amount: float, side: int,
                 exch_us: int | None = ...) -> bool: ...
    def on_book(self, ts_us: int, levels: _F64, exch_us: int | None = ...) -> bool: ...
    def take_events(self) -> list[tuple[Any, ...]]: ...
    def finish(self) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...
    def resting(self) -> Any: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def last_ts_us(self) -> int: ...
    @property
    def n_cancelled(self) -> int: ...
    @property
    def n_rejected(self) -> int: ...
