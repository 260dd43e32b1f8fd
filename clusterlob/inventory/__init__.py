"""``python -m clusterlob.inventory``: the synthetic inventory experiment (Experiment 6).

The command is :mod:`.__main__`; the library is :mod:`clusterlob.replay.inventory` and
:mod:`clusterlob.replay.inventory_report`, whose public names are re-exported here.
See ``docs/inventory.md``.
"""
from ..replay.inventory import (DEFAULT_THETAS, EXPERIMENT_CONFIG, InventoryExperiment, PairedDifference,
                                PolicyStats, SeedRun, SyntheticEvents, SyntheticMarket, ThetaResult,
                                equity_by_step, run_experiment, run_policies, synthetic_events)
from ..replay.inventory_report import plot_equity, to_markdown

__all__ = ["DEFAULT_THETAS", "EXPERIMENT_CONFIG", "InventoryExperiment", "PairedDifference", "PolicyStats",
           "SeedRun", "SyntheticEvents", "SyntheticMarket", "ThetaResult", "equity_by_step", "plot_equity",
           "run_experiment", "run_policies", "synthetic_events", "to_markdown"]
