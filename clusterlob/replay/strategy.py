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

Prices are rounded away from the mid, onto the tick grid.  No bid is placed when
``inventory >= max_inventory`` and no ask when ``inventory <= -max_inventory``; a quote that
would cross the touch (a bid at or above the best ask, an ask at or below the best bid) is
not placed (post-only).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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

#: Two prices closer than this many ticks are the same price (fills, post-only).
GRID_TOLERANCE_TICKS = 1e-6
#: Added before floor / subtracted before ceil so that a price a rounding error off the
#: grid is not pushed a whole tick away.
ROUNDING_GUARD_TICKS = 1e-9

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
    "quote_size": "size of each quote (amount units)",
    "max_inventory": "no bid at or above +this inventory, no ask at or below -this",
    "maker_fee_bps": "maker fee in bps of notional (negative: rebate)",
    "requote_interval_us": "least time between quote decisions, us",
    "order_latency_us": "decision to quotes live at the exchange, us",
    "fill_mode": "cross (trade price beyond our quote) or touch (at or beyond)",
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
        Size of each quote, in the instrument's amount unit (BTC).
    max_inventory : float
        No bid while inventory >= this, no ask while inventory <= -this (0: no position is
        ever opened on purpose).
    maker_fee_bps : float
        Fee on each fill's notional, bps; negative is a rebate (Binance 2024 base tier ~2).
    requote_interval_us : int
        Least time between two quote decisions, microseconds.
    order_latency_us : int
        Time from a decision until its quotes (and the cancel of the old ones) reach the
        exchange, microseconds; > 0 (a quote decided at t never meets another event of that
        same microsecond, e.g. the rest of the sweep that triggered it) and must not exceed
        ``requote_interval_us``.
    fill_mode : {"cross", "touch"}
        ``cross``: a buy taker fills our ask only when its price is above the ask;
        ``touch``: at or above.  Sell takers against our bid likewise.
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
    fill_mode: str = "cross"
    half_life_s: float = 10.0
    size_weight: float = 0.001
    signal_scale_trades: float = 50.0
    alpha_role: str = "directional"
    hazard_role: str = "opportunistic"

    def __post_init__(self):
        def number(name, lo=None, hi=None, lo_open=False, integer=False):
            value = getattr(self, name)
            try:
                finite = math.isfinite(value)
            except (TypeError, OverflowError):
                finite = False
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not finite:
                raise ParameterError(f"`{name}` must be a finite number, got {value!r}")
            if integer and int(value) != value:
                raise ParameterError(f"`{name}` must be a whole number of microseconds, got {value!r}")
            if lo is not None and (value <= lo if lo_open else value < lo):
                raise ParameterError(f"`{name}` must be {'>' if lo_open else '>='} {lo}, got {value!r}")
            if hi is not None and value > hi:
                raise ParameterError(f"`{name}` must be <= {hi}, got {value!r}")
            object.__setattr__(self, name, int(value) if integer else float(value))

        number("skew_ticks", 0)
        number("theta", 0)
        number("min_half_ticks", 0.5)
        number("half_spread_bps", 0)
        number("hazard_k", 0)
        number("hazard_threshold", 0)
        number("quote_size", 0, lo_open=True)
        number("max_inventory", 0)
        number("maker_fee_bps", -100, 100)
        number("requote_interval_us", 0, _US_PER_DAY, integer=True)      # the kernels hold int64 times
        number("order_latency_us", 0, _US_PER_DAY, integer=True, lo_open=True)
        number("half_life_s", 0, lo_open=True)
        number("size_weight", 0, 1, lo_open=True)
        number("signal_scale_trades", 0, lo_open=True)
        if self.order_latency_us > self.requote_interval_us:
            raise ParameterError(f"`order_latency_us` must be <= `requote_interval_us` "
                                 f"({self.requote_interval_us}), got {self.order_latency_us}")
        for name, allowed in (("inventory_mode", ("dynamic", "fixed")), ("fill_mode", ("cross", "touch"))):
            if getattr(self, name) not in allowed:
                raise ParameterError(f"`{name}` must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in ("alpha_role", "hazard_role"):
            if getattr(self, name) not in _ROLE_CODES:
                raise ParameterError(f"`{name}` must be one of {sorted(_ROLE_CODES)}, got {getattr(self, name)!r}")
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
        if preset not in ROLE_PRESETS:
            raise ParameterError(f"`mapping` must be one of {sorted(ROLE_PRESETS)}, got {preset!r}")
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

    def replace(self, **changes) -> "StrategyConfig":
        """A copy with some parameters changed (validated)."""
        return self.from_dict({**dataclasses.asdict(self), **changes})

    # -- command-line flags (defined once, here) --------------------------------------------
    @classmethod
    def add_arguments(cls, parser) -> None:
        """Add ``--config FILE.toml``, ``--mapping`` and one flag per field (``--skew-ticks`` ...)
        to an argparse parser; :meth:`from_args` reads them back (flags override the file)."""
        parser.add_argument("--config", metavar="FILE.toml", default=None,
                            help="strategy parameters from a TOML file (flags below override it)")
        parser.add_argument("--mapping", choices=sorted(ROLE_PRESETS), default=None,
                            help="role mapping preset (default inverted: alpha <- directional, "
                                 "hazard <- opportunistic)")
        g = parser.add_argument_group("strategy (defaults: clusterlob.replay.StrategyConfig)")
        defaults = cls()
        for f in dataclasses.fields(cls):
            kind = int if f.type in ("int", int) else float if f.type in ("float", float) else str
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                           metavar=kind.__name__.upper(),
                           help=f"{FIELD_HELP[f.name]} (default {getattr(defaults, f.name)})")

    @classmethod
    def from_args(cls, args) -> "StrategyConfig":
        """The config of the flags of :meth:`add_arguments`: the TOML file (or the defaults),
        then ``--mapping``, then each field flag given."""
        base = load_config(args.config).to_dict() if args.config else cls().to_dict()
        base.pop("mapping")
        flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                 if getattr(args, f.name) is not None}
        if args.mapping:
            alpha, hazard = ROLE_PRESETS[args.mapping]
            for key, value in (("alpha_role", alpha), ("hazard_role", hazard)):
                if key in flags and flags[key] != value:
                    raise ParameterError(f"--mapping {args.mapping} sets --{key.replace('_', '-')} {value}, "
                                         f"but --{key.replace('_', '-')} {flags[key]} was also given")
                flags[key] = value
        return cls.from_dict({**base, **flags}, source="command line")


def load_config(path) -> StrategyConfig:
    """Read a :class:`StrategyConfig` from a TOML file.

    The file holds parameter names at top level, or inside a ``[strategy]`` table::

        skew_ticks = 30
        fill_mode = "touch"
        mapping = "traditional"
    """
    try:
        import tomllib
    except ImportError:                     # Python 3.10: the same parser as a package
        try:
            import tomli as tomllib
        except ImportError:
            raise ParameterError("reading a TOML config needs Python >= 3.11 (tomllib) or the "
                                 "`tomli` package") from None
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ParameterError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ParameterError(f"config file {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"config file {path}: not valid TOML ({exc})") from None
    if set(doc) == {"strategy"} and isinstance(doc["strategy"], dict):
        doc = doc["strategy"]
    return StrategyConfig.from_dict(doc, source=f"config file {path}")


class QuoteDecision(NamedTuple):
    """One quote decision.  Prices are integers in ticks; None means no quote on that side.

    ``bid_reason`` / ``ask_reason`` is ``"placed"``, ``"inventory_limit"`` or ``"post_only"``
    (the quote would have crossed the touch and was not placed).
    """

    bid_ticks: int | None
    ask_ticks: int | None
    reservation: float
    half_spread: float
    bid_reason: str
    ask_reason: str


def decide_quotes(mid: float, alpha: float, hazard: float, inventory: float, tick_size: float,
                  config: StrategyConfig, best_bid: float = math.nan,
                  best_ask: float = math.nan) -> QuoteDecision:
    """Apply the quote rule once (see the module docstring).

    Parameters
    ----------
    mid : float
        Mid price at the decision.
    alpha, hazard : float
        Normalised signals from the accumulator at the decision time.
    inventory : float
        Current position (amount units; > 0 long).
    tick_size : float
        Price increment.
    config : StrategyConfig
    best_bid, best_ask : float
        Current touch, for the post-only check (NaN: no check on that side).

    Returns
    -------
    QuoteDecision
    """
    t = math.tanh(alpha)
    theta_eff = config.theta * (1.0 - abs(t)) if config.inventory_mode == "dynamic" else config.theta
    reservation = mid + config.skew_ticks * t * tick_size - theta_eff * inventory * tick_size
    widening = 1.0 + config.hazard_k * max(0.0, hazard - config.hazard_threshold)
    half_spread = max(config.min_half_ticks * tick_size, config.half_spread_bps * mid * 1e-4 * widening)
    bid = math.floor((reservation - half_spread) / tick_size + ROUNDING_GUARD_TICKS)
    ask = math.ceil((reservation + half_spread) / tick_size - ROUNDING_GUARD_TICKS)
    bid_reason = ask_reason = "placed"
    if inventory >= config.max_inventory:
        bid, bid_reason = None, "inventory_limit"
    elif bid >= best_ask / tick_size - GRID_TOLERANCE_TICKS:   # False when best_ask is NaN
        bid, bid_reason = None, "post_only"
    if inventory <= -config.max_inventory:
        ask, ask_reason = None, "inventory_limit"
    elif ask <= best_bid / tick_size + GRID_TOLERANCE_TICKS:
        ask, ask_reason = None, "post_only"
    return QuoteDecision(bid, ask, reservation, half_spread, bid_reason, ask_reason)
