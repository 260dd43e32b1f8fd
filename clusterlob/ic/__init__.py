"""``python -m clusterlob.ic``: the signal study (per-group OFI against future returns).

The command is :mod:`.__main__`; the library is :mod:`clusterlob.signals` (:mod:`~clusterlob.signals.ic`
for the statistics, :mod:`~clusterlob.signals.study` for the study), whose public names are
re-exported here.  See ``docs/signals.md``.
"""
from ..signals.ic import (MIN_BUCKETS, WEIGHTINGS, ConstantSeriesWarning, ICAggregate, ICAggregateRow, ICRow,
                          ICTable, ICValue, InOutRow, InOutTable, aggregate_ic, ic_table, in_vs_out_of_sample,
                          information_coefficient, plot_in_vs_out, window_ic_tables)
from ..signals.study import GROUP_BY, ICSettings, ICStudy, run_ic_study, write_ic_outputs

__all__ = ["ConstantSeriesWarning", "GROUP_BY", "ICAggregate", "ICAggregateRow", "ICRow", "ICSettings", "ICStudy",
           "ICTable", "ICValue", "InOutRow", "InOutTable", "MIN_BUCKETS", "WEIGHTINGS", "aggregate_ic", "ic_table",
           "in_vs_out_of_sample", "information_coefficient", "plot_in_vs_out", "run_ic_study",
           "window_ic_tables", "write_ic_outputs"]
