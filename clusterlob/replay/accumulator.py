"""The O(1) signal accumulator, for use on its own (any trading stack) or inside the replay.

:class:`SignalAccumulator` (compiled, ``clusterlob/_kernels/accumulator.pxi``) keeps two
exponentially decayed sums of trade flow: ``alpha`` (s * amount of the trades whose role
feeds alpha) and ``hazard`` (amount of the trades whose role feeds hazard), read in units
of ``signal_scale_trades`` exponentially weighted mean trade sizes.  The tape replay runs
the same code per trade.  Example::

    from clusterlob.accumulator import SignalAccumulator
    from clusterlob.strategy import StrategyConfig

    acc = SignalAccumulator.from_config(StrategyConfig())
    acc.update(ts_us, side, amount, role)          # per trade, times non-decreasing
    alpha, hazard = acc.alpha(now_us), acc.hazard(now_us)
"""
from .._core import SignalAccumulator

__all__ = ["SignalAccumulator"]
