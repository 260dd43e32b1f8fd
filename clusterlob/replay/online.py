"""The online engine: market events in, one at a time; order actions out.

:class:`OnlineEngine` is what a trading stack embeds.  Feed it every book update
(:meth:`~OnlineEngine.on_book`: the touch and at least D levels) and every trade
(:meth:`~OnlineEngine.on_trade`) as they arrive, and the fills of its own orders
(:meth:`~OnlineEngine.on_fill`); it keeps, in constant time per event, the as-of book,
the six features of each trade and their rolling z-scores, the trade's cluster and role
(nearest centre of a :class:`~clusterlob.model.ClusterModel`), the signal accumulator,
the inventory and the accounts, and runs the quote rule of :mod:`clusterlob.strategy` on
the requote clock.  When it decides, it returns the order actions (cancel the old quote,
place the new one, per side) as :class:`OrderAction` objects; otherwise None.

The numbers are the batch pipeline's, bit for bit: driving the engine over a tape with the
simulated gateway (:func:`replay_online`) gives the same features, labels, quotes, fills
and PnL as :func:`~clusterlob.features.build_features` + :func:`~clusterlob.model.label_trades`
+ :func:`~clusterlob.replay.replay` (``tests/test_online.py``).  See ``docs/online.md``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._io import check_number
from ..cluster.model import ClusterModel
from ..errors import ParameterError
from ..features.build import RollingState
from ..features.settings import FEATURE_NAMES
from .engine import (
    check_data_latencies,
    check_instrument,
    check_mark_interval,
    kernel_params,
    latency_arrays,
)
from .latency import OrderLatency
from .events import BookEvent, TradeEvent
from .results import MARK_INTERVAL_US
from .strategy import StrategyConfig

if TYPE_CHECKING:
    from ..tape.types import Instrument
    from .events import OrderAction

__all__ = ["OnlineEngine"]
_NO_FEATURES = 16       # last_flags of a trade without features (side 0 or no book yet)


class OnlineEngine(_core._OnlineCore):
    """The ClusterLOB market maker, one event at a time (see the module doc).

    Parameters
    ----------
    model : ClusterModel
        Centres, roles and the feature settings (D, W, clip, convention, as-of rule).  The
        online path orders events by local receive time, so ``time_key`` must be "local".
    config : StrategyConfig, optional
        Quoting parameters (default :class:`StrategyConfig`).
    tick_size : float
        The instrument's price increment (spread feature, quote grid).
    state : RollingState, optional
        Rolling windows and book carried from earlier data (``Features.state`` of the
        batch pipeline, or :meth:`rolling_state` of an earlier engine); not modified.
        Without it the z-scores warm up over the first W trades.
    quote_updates : {"replace", "changes"}, optional
        Default ``config.quote_updates``.  "replace": every decision cancels and re-places both
        quotes.  "changes": a side whose new price equals its working order, of which no fill
        has been heard, is left alone (fewer messages, and the order keeps its queue position);
        the batch replay models the same with ``StrategyConfig(quote_updates="changes")``.
    trades_before_book : {"raise", "count"}
        A trade before any book update: "raise" a :class:`ParameterError` (default, the
        engine unchanged), or "count" it as the batch pipeline does (no features, unassigned
        role, it still feeds the accumulator's mean trade size).
    mark_interval_us : int
        Spacing of the equity marks (default one minute).
    order_latency : OrderLatency, optional
        Order latencies from data (:func:`clusterlob.replay.latency.load_order_latency`), given
        up front: the entry (= cancel) and response latency of each decision are interpolated
        in it at the decision's time, as the batch replay does; an event outside the period it
        covers is refused.  Default: the config's constant latencies.
    exchange_offset_us : int, optional
        With ``config.feed_latency = "data"`` (required then): subtracted from each event's
        exchange time (``exch_us``) to put it on the local clock: the largest ``exchange -
        local`` gap the feed will show (:func:`clusterlob.replay.engine.exchange_offset` of the
        data; the batch replay takes it from the whole tape).  Every event then needs its
        exchange time, and one that would come after its local time is refused.
    instrument : Instrument, optional
        The contract: an inverse one keeps the accounts in the coin and, like a linear one with
        a contract size, weighs the depth features by its flow unit, as the batch pipeline
        does; its tick must be ``tick_size``.  None: a plain linear instrument.

    Notes
    -----
    Per event: :meth:`on_trade` ``(ts_us, price, amount, side, exch_us=None)`` and :meth:`on_book`
    ``(ts_us, levels, exch_us=None)`` return a tuple of :class:`OrderAction` when the requote clock fired
    (empty when "changes" finds nothing to change), else None.  :meth:`on_fill` ``(ts_us, side, order_id, price, qty, done)`` books our
    fill (side +1 we bought) and returns the fee; :meth:`on_funding` ``(ts_us, amount)`` books a
    funding payment the venue reports (paid; < 0 received: the simulated gateway computes it
    with the batch replay's rule, ``docs/online.md``, "Funding").  Bad input (time going backwards, NaN or
    non-positive prices, a crossed book, a trade before any book) raises
    :class:`ParameterError` and leaves every part of the state unchanged.
    """

    def __init__(self, model: ClusterModel, config: StrategyConfig | None = None, *,
                 tick_size: float, state: RollingState | None = None,
                 quote_updates: str | None = None, trades_before_book: str = "raise",
                 mark_interval_us: int = MARK_INTERVAL_US, order_latency: OrderLatency | None = None,
                 exchange_offset_us: int | None = None, instrument: Instrument | None = None):
        if not isinstance(model, ClusterModel):
            raise ParameterError(f"`model` must be a ClusterModel, got {type(model).__name__}")
        config = StrategyConfig() if config is None else config
        if not isinstance(config, StrategyConfig):
            raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
        check_number("tick_size", tick_size, 0, lo_open=True)
        check_instrument(instrument, tick_size)
        mark_interval_us = check_mark_interval(mark_interval_us)
        feed_data, offset = check_data_latencies(config, exchange_offset_us)
        lat_req, lat_entry, lat_response = latency_arrays(order_latency)
        if quote_updates is None:
            quote_updates = config.quote_updates
        if quote_updates not in ("replace", "changes"):
            raise ParameterError(f"`quote_updates` must be 'replace' or 'changes', got {quote_updates!r}")
        if trades_before_book not in ("raise", "count"):
            raise ParameterError(f"`trades_before_book` must be 'raise' or 'count', got {trades_before_book!r}")
        settings = model.settings
        if settings.features != FEATURE_NAMES:
            raise ParameterError(f"the online engine computes the six default features "
                                 f"{','.join(FEATURE_NAMES)}; the model was fit on --features "
                                 f"{','.join(settings.features)}")
        if settings.time_key != "local":
            raise ParameterError(f"the online engine orders events by local time; the model's "
                                 f"`time_key` must be 'local', got {settings.time_key!r}")
        if settings.asof != "strict":
            # events are applied in arrival order: a book update stamped with a trade's microsecond
            # may arrive after it, so "at or before" cannot be honoured one event at a time
            raise ParameterError(f"the online engine replays models fit with `asof` 'strict' only (a book "
                                 f"update of a trade's microsecond may arrive after it), got {settings.asof!r}")
        if state is None:
            state = RollingState.new(settings)
        elif not isinstance(state, RollingState):
            raise ParameterError(f"`state` must be a RollingState, got {type(state).__name__}")
        else:
            state.check(settings)
            state = state.copy()

        self.model = model
        self.config = config
        self.tick_size = float(tick_size)
        self.instrument = instrument
        self._settings_key = state.settings_key
        super().__init__(
            settings.levels, settings.asof == "strict", settings.convention == "aggressor",
            settings.z_clip, state.ring, state.n_seen, state.run_length, state.since_recompute,
            state.shift, state.mean_shifted, state.m2, state.m2_peak, state.book_state,
            state.book_times, state.rows,
            np.ascontiguousarray(model.centers_z, dtype=np.float64),
            np.ascontiguousarray(model.roles, dtype=np.int8),
            kernel_params(config, float(tick_size), mark_interval_us, instrument))
        self._state = state         # owns the arrays the compiled core works in
        self._mark_interval_us = int(mark_interval_us)
        self.count_trades_before_book = trades_before_book == "count"
        self.changes_only = quote_updates == "changes"
        self.order_latency = order_latency
        self.set_data_latencies(feed_data, offset, lat_req, lat_entry, lat_response,
                                order_latency.source if order_latency is not None else "order latency")

    def on_event(self, event: TradeEvent | BookEvent) -> tuple[OrderAction, ...] | None:
        """Dispatch a :class:`TradeEvent` or :class:`BookEvent` (convenience; the typed
        methods are faster)."""
        if isinstance(event, TradeEvent):
            return self.on_trade(event.ts_us, event.price, event.amount, event.side, event.ts_exch_us)
        if isinstance(event, BookEvent):
            return self.on_book(event.ts_us, np.asarray(event.levels, dtype=np.float64), event.ts_exch_us)
        raise ParameterError(f"`event` must be a TradeEvent or BookEvent, got {type(event).__name__}")

    # -- read-outs ---------------------------------------------------------------------
    def last_trade(self) -> dict:
        """The last trade's ``raw`` and ``z`` features (6,), ``valid``, ``cluster``, ``role``."""
        raw, z = self.features()
        return {"raw": raw, "z": z, "valid": self.last_flags & (1 | 2 | _NO_FEATURES) == 0,
                "cluster": self.last_cluster, "role": self.last_role,
                "feature_names": FEATURE_NAMES}

    def rolling_state(self) -> RollingState:
        """A copy of the rolling windows and the book, to save (``to_dict``) or start another engine."""
        st = self._state.copy()
        st.rows = int(self.feature_rows)
        return st

    def __repr__(self) -> str:
        return (f"OnlineEngine(k={self.model.k}, D={self.model.settings.levels}, "
                f"W={self.model.settings.window}, mapping={self.config.mapping!r}, "
                f"last_ts_us={self.last_ts_us}, inventory={self.inventory:g})")

