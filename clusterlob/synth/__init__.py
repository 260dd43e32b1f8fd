"""``python -m clusterlob.synth``: synthetic tapes with planted order-flow types.

The command is :mod:`.__main__`; the generator is :mod:`clusterlob.tape.synth`, whose public
names are re-exported here.  See ``docs/synth.md``.
"""
from ..tape.synth import (AGENT_NAMES, INSTRUMENT, LATENCY_BASE_US, LATENCY_JITTER_US, REFERENCE_TRADES_PER_DAY,
                          SynthParams, SynthResult, generate_tape)

__all__ = ["AGENT_NAMES", "INSTRUMENT", "LATENCY_BASE_US", "LATENCY_JITTER_US", "REFERENCE_TRADES_PER_DAY",
           "SynthParams", "SynthResult", "generate_tape"]
