"""Stage 6, the replay: the market maker and the simulated exchange it trades against.

* :mod:`.strategy` - :class:`StrategyConfig` (every parameter, its flags and TOML form) and the
  quote rule :func:`decide_quotes`;
* :mod:`.accumulator` - the O(1) decayed quote signal, :class:`SignalAccumulator`;
* :mod:`.engine` - :func:`replay`, the compiled event-driven batch engine, and its result objects;
* :mod:`.stream` - :class:`ReplayStream`, the same engine fed one day at a time (the main job);
* :mod:`.online` - :class:`OnlineEngine`, the same rules one event at a time, and :func:`replay_online`;
* :mod:`.gateway` - the :class:`Gateway` interface, :class:`SimulatedGateway`, :class:`BinanceDecoder`;
* :mod:`.pipeline` - :func:`run_pipeline`, the main job (fit, label, replay) as one call;
* :mod:`.summary` - the printed summary and the output files;
* :mod:`.inventory`, :mod:`.inventory_report` - the synthetic inventory experiment.

``python -m clusterlob.replay`` (:mod:`.__main__`) runs the main job.  See ``docs/replay.md``.
"""
from .accumulator import SignalAccumulator
from .engine import replay, replay_arrays
from .results import MARK_INTERVAL_US, MIN_MARKS_ANNUALISED, EquitySeries, Fills, ReplayResult, ReplaySummary
from .gateway import BinanceDecoder, Gateway, SimulatedGateway
from .events import BookEvent, OrderAction, TradeEvent, tape_events
from .online import OnlineEngine
from .online_replay import OnlineReplay, replay_online
from .pipeline import DEFAULT_TAPE, PipelineRun, run_pipeline, sample_of
from .strategy import ROLE_PRESETS, StrategyConfig, decide_quotes, load_config
from .stream import ReplayStream
from .summary import format_table, write_outputs

__all__ = ["BinanceDecoder", "BookEvent", "DEFAULT_TAPE", "EquitySeries", "Fills", "Gateway", "MARK_INTERVAL_US", "MIN_MARKS_ANNUALISED",
           "OnlineEngine", "OnlineReplay", "OrderAction", "PipelineRun", "ROLE_PRESETS", "ReplayResult", "ReplayStream", "ReplaySummary",
           "SignalAccumulator", "SimulatedGateway", "StrategyConfig", "TradeEvent", "decide_quotes", "format_table",
           "load_config", "replay", "replay_arrays", "replay_online", "run_pipeline", "sample_of", "tape_events",
           "write_outputs"]
