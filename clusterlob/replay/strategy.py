"""The market maker's quoting rules and their parameters: one definition for every engine.

:class:`StrategyConfig` holds every quoting parameter; :func:`decide_quotes` is the quote
rule in plain Python.  The compiled tape replay (``clusterlob._core``) implements the same
rule in C and is tested against this function; the synthetic inventory experiment and the
online engine call this function directly.

The rule, given the mid, the normalised signals ``alpha`` (signed) and ``hazard`` (>= 0)
and the inventory::

    reservation = mid + skew_ticks * tanh(alpha) * tick - theta_eff * inventory * tick
    theta_eff   = theta * (1 - |tanh(alpha)|)      (inventory_mode "dynamic")
                = theta                            (inventory_mode "fixed")
    half_spread = max(min_half_ticks * tick,
                      half_spread_bps * mid * 1e-4 * (1 + hazard_k * max(0, hazard - hazard_threshold)))
    bid = floor((reservation - half_spread) / tick) ticks,  ask = ceil((reservation + half_spread) / tick) ticks

Prices are rounded away from the mid, onto the tick grid.  ``inventory`` is the position the
strategy knows of (fills reach it a response latency late).  A quote's size is clipped so that
no fill can take the position past ``max_inventory``: a bid's size is at most ``max_inventory -
inventory - outstanding_bid`` (every bid that may still fill counts), an ask's likewise; a
clipped size of zero places nothing ("inventory_limit").  A quote that would cross the touch
the strategy sees (a bid at or above the best ask, an ask at or below the best bid) is not sent
(post-only; the exchange checks again on arrival, see ``docs/replay.md``).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from .._io import check_choice, check_number, read_toml
from .._typing import PathLike
from .._core import (FILL_MODELS, FILL_SIZES, GRID_TOLERANCE_TICKS, QUEUE_RULES, QUOTE_UPDATES,
                     ROUNDING_GUARD_TICKS, SIGNAL_NORMS)
from ..errors import ParameterError
from ..cluster.roles import DIRECTIONAL, OPPORTUNISTIC, PASSIVE, ROLE_NAMES, UNASSIGNED

__all__ = [
    "StrategyConfig",
    "QuoteDecision",
    "decide_quotes",
    "load_config",
    "role_code",
    "ROLE_PRESETS",
    "GRID_TOLERANCE_TICKS",
    "ROUNDING_GUARD_TICKS",
]

#: Role mapping presets: name -> (role feeding alpha, role feeding hazard).
ROLE_PRESETS = {
    "inverted": ("directional", "opportunistic"),      # the research log's final choice
    "traditional": ("opportunistic", "directional"),
}

# GRID_TOLERANCE_TICKS: two prices closer than this many ticks are the same price (fills,
# post-only); ROUNDING_GUARD_TICKS: added before floor / subtracted before ceil so that a price a
# rounding error off the grid is not pushed a whole tick away.  Both are defined once, in the
# kernel (clusterlob/_kernels/replay.pxi), like FILL_MODELS / QUEUE_RULES / SIGNAL_NORMS.
#: A clipped quote smaller than this is not sent (== the kernel's _SIZE_TOL).
SIZE_TOLERANCE = 1e-12

_ROLE_CODES = {"directional": DIRECTIONAL, "opportunistic": OPPORTUNISTIC, "passive": PASSIVE,
               "none": UNASSIGNED}
assert tuple(n for n in _ROLE_CODES if n != "none") == ROLE_NAMES


#: One line of help per field: the flag's help text (``--skew-ticks`` ...).
FIELD_HELP = {
    "skew_ticks": "largest quote skew in ticks",
    "theta": "inventory aversion, ticks per unit of inventory",
    "inventory_mode": "dynamic (theta relaxed by the alpha's confidence) or fixed",
    "min_half_ticks": "smallest half-spread in ticks",
    "half_spread_bps": "base half-spread, bps of the mid",
    "hazard_k": "spread widening per unit of hazard above the threshold",
    "hazard_threshold": "hazard below which the spread is not widened",
    "quote_size": "size of each quote (amount units: the base asset, or contracts of an inverse instrument)",
    "max_inventory": "no bid at or above +this inventory, no ask at or below -this (amount units)",
    "maker_fee_bps": "maker fee in bps of notional (negative: rebate), charged in the settlement currency",
    "requote_interval_us": "least time between quote decisions, us",
    "order_latency_us": "order entry latency: decision to the order at the exchange, us",
    "cancel_latency_us": "cancel latency: decision to the cancel at the exchange, us",
    "response_latency_us": "response latency: exchange to the strategy (fills, acks, rejects), us",
    "fill_model": "queue (queue position), cross (trade beyond our price) or touch (at or beyond)",
    "queue_rule": "queue model's rule for size decreases: risk_averse, power or log",
    "queue_power": "exponent n of the power (x^n) and log (log(1+x)^n) queue rules, 0 < n <= 10",
    "fill_size": "partial (a fill is what the trade leaves over) or whole (an order that fills, "
                 "fills whole: hftbacktest's no-partial-fill exchange)",
    "feed_latency": "none (the exchange sees each event at its local time) or data (at its exchange "
                    "time: feed latency from the tape's two clocks)",
    "quote_updates": "replace (cancel and re-place every decision) or changes (keep an order "
                     "the decision repeats, and its queue position)",
    "funding_rate": "funding rate per funding interval (longs pay a positive rate)",
    "funding_interval_h": "hours between funding times (from 00:00 UTC)",
    "signal_norm": "alpha/hazard units: flow (share of recent total flow) or trades (mean sizes)",
    "fill_mode": "old name of --fill-model (cross or touch)",
    "half_life_s": "half-life of the signal decay, s",
    "size_weight": "weight of a trade in the mean trade size",
    "signal_scale_trades": "signal unit, in mean trade sizes",
    "alpha_role": "role feeding the skew: directional, opportunistic, passive or none",
    "hazard_role": "role feeding the widening: directional, opportunistic, passive or none",
}


def role_code(name: str) -> int:
    """Role code (``clusterlob.roles``) of a role name; ``"none"`` gives UNASSIGNED (feeds nothing)."""
    try:
        return _ROLE_CODES[name]
    except (KeyError, TypeError):
        raise ParameterError(f"role must be one of {sorted(_ROLE_CODES)}, got {name!r}") from None


_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class StrategyConfig:
    """Every parameter of the market maker, with the project's defaults.

    Attributes
    ----------
    skew_ticks : float
        Largest quote skew, in ticks, reached when ``|tanh(alpha)| -> 1`` (log: 50).
    theta : float
        Inventory aversion, ticks of reservation shift per unit of inventory (log: 2).
    inventory_mode : {"dynamic", "fixed"}
        ``dynamic``: theta is relaxed by ``1 - |tanh(alpha)|``; ``fixed``: theta as is.
    min_half_ticks : float
        Smallest half-spread in ticks (>= 0.5, so the bid stays below the ask).
    half_spread_bps : float
        Base half-spread in basis points of the mid (log: 2 bps full spread).
    hazard_k : float
        Widening per unit of hazard above ``hazard_threshold`` (log: 5).
    hazard_threshold : float
        Hazard level below which the spread is not widened (log: 0.2).
    quote_size : float
        Size of each quote, in the instrument's amount unit (BTC for BTCUSDT; contracts for an
        inverse instrument such as BTCUSD_PERP).
    max_inventory : float
        No bid while inventory >= this, no ask while inventory <= -this (0: no position is
        ever opened on purpose); amount units, as ``quote_size``.
    maker_fee_bps : float
        Fee on each fill's notional, bps; negative is a rebate (Binance 2024 base tier ~2).
    requote_interval_us : int
        Least time between two quote decisions, microseconds.
    order_latency_us : int
        Time from a decision until its quotes (and the cancel of the old ones) reach the
        exchange, microseconds; > 0 (a quote decided at t never meets another event of that
        same microsecond, e.g. the rest of the sweep that triggered it) and must not exceed
        ``requote_interval_us``.
    cancel_latency_us, response_latency_us : int
        Time from a decision until its cancels reach the exchange (> 0), and from the exchange
        back to the strategy (fills, cancel acks, rejects; >= 0).
    fill_model : {"queue", "cross", "touch"}
        ``queue``: our order joins the back of the displayed size at its price; trades at our
        price and size decreases (``queue_rule``) shrink the queue ahead; a trade at our price
        fills only what exceeds the queue ahead, a trade beyond it fills us in full.
        ``cross``: a buy taker fills our ask only when its price is above the ask (the research
        log's rule); ``touch``: at or above (the front of the queue).  Under every model an
        order the opposite best price reaches fills at its price (book-through).
    queue_rule : {"risk_averse", "power", "log"}
        ``risk_averse``: queue ahead = min(queue ahead, displayed size); ``power`` / ``log``:
        a decrease is split between ahead and behind us with probability f(behind) /
        (f(ahead) + f(behind)) of coming from behind, f(x) = x**n or log(1 + x)**n.
    queue_power : float
        The n of the probability rules (0 < n <= 10).
    fill_size : {"partial", "whole"}
        ``partial``: a fill is at most what the trade leaves over (after the queue ahead and our
        older order); ``whole``: an order that fills, fills whole (hftbacktest's no-partial-fill
        exchange, for comparisons).
    feed_latency : {"none", "data"}
        ``none``: the exchange sees each market event at its local receive time (everything on
        one clock); ``data``: at its exchange time, moved onto the local clock (the two clocks
        aligned by the largest exchange-after-local gap, so no feed latency is negative): our
        orders meet the market as the exchange saw it, the strategy sees it late by each
        event's feed latency.
    quote_updates : {"replace", "changes"}
        ``replace``: each decision cancels the current orders and places new ones (back of the
        queue); ``changes``: an order the strategy has heard no fill of, at the price the
        decision repeats, is kept (with its queue position).
    funding_rate : float
        Funding paid per interval on the carried position's notional (longs pay when > 0),
        unless the replay is given a rate series.
    funding_interval_h : int
        Hours between funding times, counted from 00:00 UTC (Binance: 8).
    signal_norm : {"flow", "trades"}
        ``flow``: alpha and hazard are shares of the recent total flow (decayed alike), the
        same on a quiet and a busy day; ``trades``: in ``signal_scale_trades`` mean trade
        sizes (the research log's form).
    fill_mode : {"cross", "touch"}, optional
        The old name of ``fill_model`` (accepted, stored as ``fill_model``).
    half_life_s : float
        Half-life of the signal accumulator's exponential decay, seconds.
    size_weight : float
        Weight of each trade in the exponentially weighted mean trade size (0 < w <= 1).
    signal_scale_trades : float
        A signal of 1.0 means this many mean-sized trades (decayed) of net flow (log: 50).
    alpha_role, hazard_role : str
        Role whose trades feed the skew (``alpha``) and the widening (``hazard``): one of
        ``directional``, ``opportunistic``, ``passive`` or ``none``.  Defaults are the
        ``inverted`` preset; see :meth:`with_mapping`.
    """

    skew_ticks: float = 50.0
    theta: float = 2.0
    inventory_mode: str = "dynamic"
    min_half_ticks: float = 1.0
    half_spread_bps: float = 1.0
    hazard_k: float = 5.0
    hazard_threshold: float = 0.2
    quote_size: float = 0.1
    max_inventory: float = 2.0
    maker_fee_bps: float = 2.0
    requote_interval_us: int = 200_000
    order_latency_us: int = 10_000
    cancel_latency_us: int = 10_000
    response_latency_us: int = 10_000
    fill_model: str = "queue"
    queue_rule: str = "risk_averse"
    queue_power: float = 2.0
    quote_updates: str = "replace"
    feed_latency: str = "none"
    fill_size: str = "partial"
    funding_rate: float = 0.0
    funding_interval_h: int = 8
    signal_norm: str = "flow"
    fill_mode: str | None = None
    half_life_s: float = 10.0
    size_weight: float = 0.001
    signal_scale_trades: float = 50.0
    alpha_role: str = "directional"
    hazard_role: str = "opportunistic"

    def __post_init__(self):
        def number(name, lo=None, hi=None, lo_open=False, integer=False, within_day=False):
            value = getattr(self, name)
            try:
                finite = math.isfinite(value)
            except (TypeError, OverflowError):
                finite = False
            if integer and isinstance(value, float) and finite and int(value) != value:
                raise ParameterError(f"`{name}` must be a whole number of microseconds, got {value!r}")
            checked = check_number(name, value, lo, hi, lo_open=lo_open)
            if within_day and checked > _US_PER_DAY:        # the kernels hold int64 times
                raise ParameterError(f"`{name}` must be at most one day ({_US_PER_DAY:,} us), got {value!r}")
            object.__setattr__(self, name, int(checked) if integer else checked)

        number("skew_ticks", 0)
        number("theta", 0)
        number("min_half_ticks", 0.5)
        number("half_spread_bps", 0)
        number("hazard_k", 0)
        number("hazard_threshold", 0)
        number("quote_size", 0, lo_open=True)
        number("max_inventory", 0)
        number("maker_fee_bps", -100, 100)
        number("requote_interval_us", 0, integer=True, within_day=True)
        number("order_latency_us", 0, integer=True, within_day=True, lo_open=True)
        number("cancel_latency_us", 0, integer=True, within_day=True, lo_open=True)
        number("response_latency_us", 0, integer=True, within_day=True)
        number("queue_power", 0, 10, lo_open=True)
        number("funding_rate", -0.03, 0.03)
        number("funding_interval_h", 1, 24, integer=True)
        if self.fill_mode is not None:          # the old name: one setting, stored once
            if self.fill_mode not in ("cross", "touch"):
                raise ParameterError(f"`fill_mode` (the old name of `fill_model`) must be one of "
                                     f"cross, touch, got {self.fill_mode!r}")
            if self.fill_model not in ("queue", self.fill_mode):
                raise ParameterError(f"`fill_mode` {self.fill_mode!r} and `fill_model` "
                                     f"{self.fill_model!r} disagree: give `fill_model` only")
            object.__setattr__(self, "fill_model", self.fill_mode)
            object.__setattr__(self, "fill_mode", None)
        number("half_life_s", 0, lo_open=True)
        number("size_weight", 0, 1, lo_open=True)
        number("signal_scale_trades", 0, lo_open=True)
        for name, allowed in (("inventory_mode", ("dynamic", "fixed")), ("fill_model", FILL_MODELS),
                              ("queue_rule", QUEUE_RULES), ("signal_norm", SIGNAL_NORMS),
                              ("quote_updates", QUOTE_UPDATES), ("feed_latency", ("none", "data")),
                              ("fill_size", FILL_SIZES)):
            check_choice(name, getattr(self, name), allowed)
        for name in ("alpha_role", "hazard_role"):
            check_choice(name, getattr(self, name), sorted(_ROLE_CODES))
        if self.alpha_role == self.hazard_role != "none":
            raise ParameterError(f"`alpha_role` and `hazard_role` must differ, both are {self.alpha_role!r}")

    # -- role mapping --------------------------------------------------------------------
    @property
    def mapping(self) -> str:
        """Name of the role-mapping preset in use, or ``"custom"``."""
        for name, pair in ROLE_PRESETS.items():
            if pair == (self.alpha_role, self.hazard_role):
                return name
        return "custom"

    def with_mapping(self, preset: str) -> "StrategyConfig":
        """A copy using a role-mapping preset (``"inverted"`` or ``"traditional"``)."""
        check_choice("mapping", preset, sorted(ROLE_PRESETS))
        alpha, hazard = ROLE_PRESETS[preset]
        return dataclasses.replace(self, alpha_role=alpha, hazard_role=hazard)

    @property
    def alpha_code(self) -> int:
        return role_code(self.alpha_role)

    @property
    def hazard_code(self) -> int:
        return role_code(self.hazard_role)

    # -- conversion ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """All parameters by name (plus ``mapping``, the preset name or ``"custom"``)."""
        d = dataclasses.asdict(self)
        d.pop("fill_mode")                      # the old name, always folded into fill_model
        d["mapping"] = self.mapping
        return d

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "StrategyConfig":
        """Build from a mapping of parameter names; ``mapping`` (a preset name) is accepted.

        Unknown keys and bad values raise :class:`ParameterError` naming ``source``.
        """
        if not isinstance(d, dict):
            raise ParameterError(f"{source}: expected a table of strategy parameters, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        preset = d.pop("mapping", None)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"{source}: unknown strategy parameter `{unknown[0]}` "
                                 f"(known: {', '.join(sorted(known | {'mapping'}))})")
        if preset is not None and preset != "custom":
            if not isinstance(preset, str) or preset not in ROLE_PRESETS:
                raise ParameterError(f"{source}: `mapping` must be one of {sorted(ROLE_PRESETS)}, got {preset!r}")
            alpha, hazard = ROLE_PRESETS[preset]
            for key, value in (("alpha_role", alpha), ("hazard_role", hazard)):
                if key in d and d[key] != value:
                    raise ParameterError(f"{source}: `mapping` {preset!r} sets `{key}` = {value!r}, "
                                         f"but the config also gives {d[key]!r}")
                d[key] = value
        try:
            return cls(**d)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:   # a value of the wrong type
            raise ParameterError(f"{source}: a parameter has the wrong type ({exc})") from None

    def replace(self, **changes: Any) -> "StrategyConfig":
        """A copy with some parameters changed (validated)."""
        base = self.to_dict()
        base.pop("mapping")
        if "fill_mode" in changes and "fill_model" not in changes:
            base.pop("fill_model")
        return self.from_dict({**base, **changes})

    # -- command-line flags (defined once, here) --------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, defaults: "StrategyConfig | None" = None, *,
                      exclude: Sequence[str] = ()) -> None:
        """Add ``--config FILE.toml``, ``--mapping`` and one flag per field (``--skew-ticks`` ...)
        to an argparse parser; :meth:`from_args` reads them back (flags override the file).

        ``defaults``: the config the help shows (pass the same to :meth:`from_args` as ``base``);
        ``exclude``: fields a command sets itself (no flag; ``python -m clusterlob.inventory``
        sweeps ``theta`` and runs both ``inventory_mode`` values)."""
        parser.add_argument("--config", metavar="FILE.toml", default=None,
                            help="strategy parameters from a TOML file (flags below override it)")
        parser.add_argument("--mapping", choices=sorted(ROLE_PRESETS), default=None,
                            help="role mapping preset (default inverted: alpha <- directional, "
                                 "hazard <- opportunistic)")
        g = parser.add_argument_group("strategy (defaults: clusterlob.replay.StrategyConfig)"
                                      if defaults is None else "strategy")
        defaults = cls() if defaults is None else defaults
        for f in dataclasses.fields(cls):
            if f.name in exclude:
                continue
            if f.name == "fill_mode":           # the old name: accepted, not advertised twice
                g.add_argument("--fill-mode", dest=_DEST + "fill_mode", default=None, metavar="STR",
                               help="old name of --fill-model (cross or touch)")
                continue
            kind = int if f.type in ("int", int) else float if f.type in ("float", float) else str
            g.add_argument("--" + f.name.replace("_", "-"), dest=_DEST + f.name, type=kind, default=None,
                           metavar=kind.__name__.upper(),
                           help=f"{FIELD_HELP[f.name]} (default {getattr(defaults, f.name)})")

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: "StrategyConfig | None" = None) -> "StrategyConfig":
        """The config of the flags of :meth:`add_arguments`: the TOML file (or ``base``, default
        the defaults), then ``--mapping``, then each field flag given."""
        start = load_config(args.config) if args.config else base if base is not None else cls()
        values = start.to_dict()
        values.pop("mapping")
        flags = {f.name: getattr(args, _DEST + f.name) for f in dataclasses.fields(cls)
                 if getattr(args, _DEST + f.name, None) is not None}
        if args.mapping:
            alpha, hazard = ROLE_PRESETS[args.mapping]
            for key, value in (("alpha_role", alpha), ("hazard_role", hazard)):
                if key in flags and flags[key] != value:
                    raise ParameterError(f"--mapping {args.mapping} sets --{key.replace('_', '-')} {value}, "
                                         f"but --{key.replace('_', '-')} {flags[key]} was also given")
                flags[key] = value
        return cls.from_dict({**values, **flags}, source="command line")


_DEST = "strategy."     # the flags' namespace attributes, apart from a command's own flags


def load_config(path: PathLike) -> StrategyConfig:
    """Read a :class:`StrategyConfig` from a TOML file.

    The file holds parameter names at top level, or inside a ``[strategy]`` table::

        skew_ticks = 30
        fill_model = "touch"
        mapping = "traditional"
    """
    path = Path(path)
    doc = read_toml(path, "config file")
    if set(doc) == {"strategy"} and isinstance(doc["strategy"], dict):
        doc = doc["strategy"]
    return StrategyConfig.from_dict(doc, source=f"config file {path}")


class QuoteDecision(NamedTuple):
    """One quote decision.  Prices are integers in ticks; None means no quote on that side.

    ``bid_reason`` / ``ask_reason`` is ``"placed"``, ``"inventory_limit"`` (the size clipped to
    nothing) or ``"post_only"`` (the quote would have crossed the touch and was not sent);
    ``bid_size`` / ``ask_size`` the size sent (0.0 with no quote); ``widened`` whether the
    hazard widened the spread.
    """

    bid_ticks: int | None
    ask_ticks: int | None
    reservation: float
    half_spread: float
    bid_reason: str
    ask_reason: str
    bid_size: float = 0.0
    ask_size: float = 0.0
    widened: bool = False


def decide_quotes(mid: float, alpha: float, hazard: float, inventory: float, tick_size: float,
                  config: StrategyConfig, best_bid: float = math.nan,
                  best_ask: float = math.nan, outstanding_bid: float = 0.0,
                  outstanding_ask: float = 0.0) -> QuoteDecision:
    """Apply the quote rule once (see the module docstring).

    Parameters
    ----------
    mid : float
        Mid price at the decision.
    alpha, hazard : float
        Normalised signals from the accumulator at the decision time.
    inventory : float
        Position the strategy knows of (amount units; > 0 long).
    tick_size : float
        Price increment.
    config : StrategyConfig
    best_bid, best_ask : float
        Current touch, for the post-only check (NaN: no check on that side).
    outstanding_bid, outstanding_ask : float
        Size of our orders on each side that may still fill (sent, not known to be done).

    Returns
    -------
    QuoteDecision
    """
    t = math.tanh(alpha)
    theta_eff = config.theta * (1.0 - abs(t)) if config.inventory_mode == "dynamic" else config.theta
    reservation = mid + config.skew_ticks * t * tick_size - theta_eff * inventory * tick_size
    excess = hazard - config.hazard_threshold
    widening = 1.0 + config.hazard_k * max(0.0, excess)
    half_spread = max(config.min_half_ticks * tick_size, config.half_spread_bps * mid * 1e-4 * widening)
    bid_ticks = math.floor((reservation - half_spread) / tick_size + ROUNDING_GUARD_TICKS)
    ask_ticks = math.ceil((reservation + half_spread) / tick_size - ROUNDING_GUARD_TICKS)
    bid: int | None = bid_ticks
    ask: int | None = ask_ticks
    bid_reason = ask_reason = "placed"
    bid_size = min(config.quote_size, config.max_inventory - inventory - outstanding_bid)
    ask_size = min(config.quote_size, config.max_inventory + inventory - outstanding_ask)
    if bid_size <= SIZE_TOLERANCE:
        bid, bid_reason = None, "inventory_limit"
    elif bid_ticks >= best_ask / tick_size - GRID_TOLERANCE_TICKS:   # False when best_ask is NaN
        bid, bid_reason = None, "post_only"
    if ask_size <= SIZE_TOLERANCE:
        ask, ask_reason = None, "inventory_limit"
    elif ask_ticks <= best_bid / tick_size + GRID_TOLERANCE_TICKS:
        ask, ask_reason = None, "post_only"
    return QuoteDecision(bid, ask, reservation, half_spread, bid_reason, ask_reason,
                         bid_size if bid is not None else 0.0, ask_size if ask is not None else 0.0,
                         excess > 0.0)
