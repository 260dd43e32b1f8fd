"""Rolling walk-forward (the research log's Experiments 3 and 4).

Train on ``T`` days, test on the next ``test_days`` (step 1), refit every window; a daily
feature cache that equals one pass over the tape and survives a killed run; per-day feature
builds and per-window fits on any :class:`concurrent.futures.Executor`.

* :mod:`.cache` - the daily feature cache and its exact parallel build;
* :mod:`.windows` - window planning, fits, role alignment, OOS IC and taker PnL, stability;
* :mod:`.run` - :func:`run_walkforward` and :func:`write_outputs`;
* :mod:`.__main__` - ``python -m clusterlob.walkforward``.

See ``docs/walkforward.md``.
"""
from .cache import (CachedDay, DayStatus, build_cache, load_cached_day, load_cached_flow, load_cached_mids,
                    plan_cache)
from .run import OUTPUT_FILES, WalkForwardResult, check_outputs_free, run_walkforward, write_outputs
from .windows import (ALIGNMENTS, StabilityRow, WalkForwardSettings, WindowPlan, WindowResult,
                      plan_windows)

__all__ = ["ALIGNMENTS", "CachedDay", "DayStatus", "OUTPUT_FILES", "StabilityRow", "WalkForwardResult",
           "WalkForwardSettings", "WindowPlan", "WindowResult", "build_cache", "check_outputs_free",
           "load_cached_day", "load_cached_flow", "load_cached_mids", "plan_cache", "plan_windows",
           "run_walkforward", "write_outputs"]
