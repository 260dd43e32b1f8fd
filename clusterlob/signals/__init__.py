"""Stage 4, signals: bucketed order-flow imbalance per group of trades, information
coefficients against future returns (T+1, no look-ahead), timeframe analysis and the IC study.

* :mod:`.ofi` - :class:`BucketSignals`, :class:`BucketAccumulator`, returns per bucket;
* :mod:`.book_flow` - order-flow imbalance of the book by event type (Cont-Kukanov-Stoikov);
* :mod:`.ic` - IC tables, per-window aggregates, in vs out of sample;
* :mod:`.timeframes` - honest and biased threshold rules, the taker backtest;
* :mod:`.study` - :func:`run_ic_study` and its outputs (``python -m clusterlob.ic``).

See ``docs/signals.md``.
"""
from .book_flow import BookFlowState, book_flow_events, book_flow_names
from .ic import (ICAggregate, ICTable, InOutTable, aggregate_ic, ic_table, in_vs_out_of_sample,
                 information_coefficient, window_ic_tables)
from .ofi import (ALL_TRADES, ROLE_GROUPS, TIME_KEYS, BucketAccumulator, BucketGrid, BucketSignals, bucket_signals,
                  close_to_close_returns, cluster_groups, covered_buckets, forward_returns, mid_close, tape_signals)
from .study import ICSettings, ICStudy, run_ic_study, write_ic_outputs
from .timeframes import ThresholdRule, TimeframeTable, taker_backtest, timeframe_analysis

__all__ = ["ALL_TRADES", "BookFlowState", "book_flow_events", "book_flow_names", "BucketAccumulator", "BucketGrid", "BucketSignals", "ICAggregate", "ICSettings",
           "ICStudy", "ICTable", "InOutTable", "ROLE_GROUPS", "TIME_KEYS", "ThresholdRule", "TimeframeTable", "aggregate_ic",
           "bucket_signals", "close_to_close_returns", "cluster_groups", "covered_buckets", "forward_returns", "ic_table",
           "in_vs_out_of_sample", "information_coefficient", "mid_close", "run_ic_study", "taker_backtest",
           "tape_signals", "timeframe_analysis", "window_ic_tables", "write_ic_outputs"]
