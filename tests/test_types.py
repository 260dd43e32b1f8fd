"""Types that help users: a user's script type-checks against the installed package, a wrong one
is caught, and the stub of the compiled module (clusterlob/_core.pyi) matches the build.

The mypy tests run it in a subprocess and skip, with the reason, when mypy is not installed (it
is in the ``test`` extra); every public signature is annotated."""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import clusterlob


def _unannotated(root: Path) -> list[str]:
    """Public functions and methods of public modules with a parameter or the return not annotated."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if any(p.startswith("_") and p not in ("__init__.py", "__main__.py") for p in rel.parts):
            continue
        def visit(body, prefix):
            for node in body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    visit(node.body, f"{prefix}{node.name}.")
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if node.name.startswith("_") and node.name not in ("__init__", "__call__"):
                        continue
                    a = node.args
                    params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
                    missing = [p.arg for p in params if p.annotation is None and p.arg not in ("self", "cls")]
                    if missing or (node.returns is None and node.name != "__init__"):
                        out.append(f"{rel}:{node.lineno} {prefix}{node.name} {missing or 'return'}")
        visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return out


def test_public_functions_are_annotated():
    # mypy checks the bodies; this keeps every public signature typed for users' checkers and IDEs
    assert _unannotated(ROOT / "clusterlob") == []


needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason='mypy is not installed (it is in the test extra: pip install -e ".[test]")')

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PARENT = Path(clusterlob.__file__).resolve().parents[1]

USER_SCRIPT = '''
from __future__ import annotations

import numpy as np

import clusterlob
from clusterlob import Tape, read_tape
from clusterlob.cluster import ClusterModel, FitSettings, TradeLabels, label_trades, load_model
from clusterlob.errors import ClusterlobError
from clusterlob.features import FeatureSettings, Features, build_features
from clusterlob.replay import PipelineRun, ReplayResult, ReplaySummary, StrategyConfig, run_pipeline
from clusterlob.signals import ICSettings, run_ic_study


def notebook(tape_dir: str) -> float:
    tape: Tape = read_tape(tape_dir, "2024-05-01")
    features: Features = build_features(tape, FeatureSettings(window=100))
    z: np.ndarray = features.z[features.valid]
    run: PipelineRun = run_pipeline(tape_dir, config=StrategyConfig(skew_ticks=20), fit=FitSettings(k=3))
    result: ReplayResult = run.result
    summary: ReplaySummary = result.summary
    model: ClusterModel = run.model
    labels: TradeLabels = label_trades(tape, model)
    fills = result.fills.to_arrow()                    # pyarrow.Table: .to_pandas(), polars.from_arrow
    study = run_ic_study(tape_dir, model=model, settings=ICSettings(horizons=(1,)))
    n_ic = study.pooled.to_arrow().num_rows
    try:
        load_model("model.json")
    except ClusterlobError as exc:
        print(exc)
    print(clusterlob.__version__, summary.mapping, len(labels.cluster), fills.num_rows, n_ic)
    return summary.pnl_total + float(z.shape[0])
'''

WRONG_SCRIPT = '''
from clusterlob.replay import StrategyConfig, run_pipeline

run = run_pipeline("data/default_tape", config=StrategyConfig(skew_ticks=20))
mapping: int = run.result.summary.mapping
print(run.result.summary.pnl_totl)
run_pipeline("data/default_tape", config={"skew_ticks": 20})
'''


# what a user's own mypy configuration says: pyarrow and scipy ship no type information
USER_CONFIG = """
[mypy]
python_version = 3.10
follow_imports = silent

[mypy-pyarrow.*,scipy.*]
ignore_missing_imports = True
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory) -> str:
    """mypy's report on the two scripts, checked together (one start-up of mypy)."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "notebook.py").write_text(textwrap.dedent(USER_SCRIPT), encoding="utf-8")
    (folder / "wrong.py").write_text(textwrap.dedent(WRONG_SCRIPT), encoding="utf-8")
    (folder / "mypy.ini").write_text(USER_CONFIG, encoding="utf-8")
    env = dict(os.environ)
    # An editable install is found through an import hook that mypy cannot follow; point mypy at
    # the folder holding the package (a regular install in site-packages needs nothing).
    if PACKAGE_PARENT != Path(sysconfig.get_paths()["purelib"]).resolve():
        env["MYPYPATH"] = str(PACKAGE_PARENT)
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--config-file", "mypy.ini",
                          "--cache-dir", str(folder / ".mypy_cache"), "notebook.py", "wrong.py"],
                         capture_output=True, text=True, cwd=folder, env=env, timeout=300)
    assert out.returncode in (0, 1), out.stdout + out.stderr      # 2: mypy itself failed
    return out.stdout + out.stderr


@needs_mypy
def test_a_users_script_type_checks(mypy_output):
    assert "notebook.py" not in mypy_output, mypy_output


@needs_mypy
def test_a_wrong_script_is_caught(mypy_output):
    text = mypy_output
    assert 'wrong.py:5: error: Incompatible types in assignment (expression has type "str", variable has type "int")' in text
    assert 'wrong.py:6: error: "ReplaySummary" has no attribute "pnl_totl"' in text
    assert 'wrong.py:7: error: Argument "config" to "run_pipeline" has incompatible type' in text


@needs_mypy
def test_the_stub_matches_the_compiled_module():
    out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "clusterlob._core", "--concise",
                          "--mypy-config-file", str(ROOT / "pyproject.toml"),
                          "--allowlist", str(ROOT / "tests" / "core_stubtest_allowlist.txt"),
                          "--ignore-unused-allowlist"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
