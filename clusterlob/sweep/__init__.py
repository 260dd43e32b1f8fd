"""Parameter sweeps and walk-forward strategy selection (stage 7).

* :mod:`.grid` - strategy grids (TOML): every combination of listed StrategyConfig values, and
  the clusters to label with;
* :mod:`.tasks` - one replay task as a worker runs it (paths and a config in, a small record out);
* :mod:`.run` - :func:`run_sweep`: every (model, day, config) on any executor, resumable;
* :mod:`.select` - :func:`run_selection`: choose a config on the training days of each window,
  trade it on the next day, beside three benchmarks; the probability of backtest overfitting;
* :mod:`.pbo` - combinatorially symmetric cross-validation (Bailey et al.);
* :mod:`.report` - the Parquet table, Markdown summaries and pictures;
* :mod:`.__main__` - ``python -m clusterlob.sweep``.

See ``docs/sweep.md``.
"""
from .grid import Grid, GridPoint, ModelSpec, load_grid, make_grid
from .run import SweepResult, run_sweep
from .tasks import ReplayTask, run_replay_task

__all__ = ["Grid", "GridPoint", "ModelSpec", "ReplayTask", "SweepResult", "load_grid", "make_grid",
           "run_replay_task", "run_sweep"]
