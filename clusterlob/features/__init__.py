"""Stage 2, features: the six trade-triggered L2 features and their causal rolling z-scores,
carried across days.

The library is :mod:`.build`; ``python -m clusterlob.features`` (:mod:`.__main__`) prints what
was used, skipped and floored.  See ``docs/features.md``.
"""
from .build import Features, RollingState, build_features, compute_raw_features, iter_features, merge_counts, rolling_zscore
from .settings import ALL_FEATURES, ASOF_RULES, CONVENTIONS, FEATURE_NAMES, check_feature_names, TIME_KEYS, FeatureSettings

__all__ = ["ALL_FEATURES", "ASOF_RULES", "CONVENTIONS", "FEATURE_NAMES", "check_feature_names", "TIME_KEYS", "FeatureSettings", "Features",
           "RollingState", "build_features", "compute_raw_features", "iter_features", "merge_counts",
           "rolling_zscore"]
