"""Build the one compiled module, ``clusterlob._core``, from ``clusterlob/_core.pyx``.

Compiler directives are set here, once, for the whole module.  Set the environment
variable ``CLUSTERLOB_DEBUG=1`` when building to turn bounds checking, wraparound and
initialized-check back on (slower, but an out-of-range index raises instead of
corrupting memory)::

    CLUSTERLOB_DEBUG=1 pip install -e .
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CLUSTERLOB_DEBUG", "").strip().lower() not in ("", "0", "false", "no")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "clusterlob._core",
        ["clusterlob/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            ("CLUSTERLOB_DEBUG_BUILD", "1" if DEBUG else "0"),
        ],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
