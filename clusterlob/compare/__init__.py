"""``python -m clusterlob.compare``: two tapes side by side (activity, centroids, importance).

The command is :mod:`.__main__`; the library is :mod:`clusterlob.cluster.compare`, whose public
names are re-exported here.  See ``docs/compare.md``.
"""
from ..cluster.compare import (DEFAULT_MIN_ROWS_PER_CLUSTER, MODEL_FILES, OUTPUT_FILES, Comparison, TapeActivity, TapeAnalysis,
                               activity_ratios, analyse_tape, compare_tapes, tape_activity, write_compare_outputs)

__all__ = ["Comparison", "DEFAULT_MIN_ROWS_PER_CLUSTER", "MODEL_FILES", "OUTPUT_FILES", "TapeActivity", "TapeAnalysis",
           "activity_ratios", "analyse_tape", "compare_tapes", "tape_activity", "write_compare_outputs"]
