"""``python -m clusterlob.synth``: synthetic tapes with planted order-flow types.

The command is :mod:`.__main__`; the generator is :mod:`clusterlob.tape.synth`, whose public
names are re-exported here, with the calibrated generator of :mod:`clusterlob.tape.calibrate`.  See ``docs/synth.md``.
"""
from ..tape.calibrate import Calibration, calibrate, calibration_report, generate_calibrated_tape
from ..tape.synth import (AGENT_NAMES, INSTRUMENT, LATENCY_BASE_US, LATENCY_JITTER_US, REFERENCE_TRADES_PER_DAY,
                          SynthParams, SynthResult, generate_tape)

__all__ = ["Calibration", "calibrate", "calibration_report", "generate_calibrated_tape", "AGENT_NAMES", "INSTRUMENT", "LATENCY_BASE_US", "LATENCY_JITTER_US", "REFERENCE_TRADES_PER_DAY",
           "SynthParams", "SynthResult", "generate_tape"]
