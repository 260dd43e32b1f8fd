"""``python -m clusterlob.convert``: outside market data into a tape directory.

The command is :mod:`.__main__`; the library is :mod:`clusterlob.tape.convert`, whose public
names are re-exported here.  See ``docs/tape.md``.
"""
from ..tape.convert import ConvertResult, convert

__all__ = ["ConvertResult", "convert"]
