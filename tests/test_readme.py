"""README.md is a front page: short, its set-up commands are the ones CI runs, its links and its
layout table are true to the tree, and its Python example runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

MAIN_JOB = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python -m clusterlob.replay"
TESTS = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test,dask]" && python -m pytest -q'


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_short_with_the_two_set_up_commands():
    assert len(README.splitlines()) <= 150
    lines = README.splitlines()
    assert MAIN_JOB in lines and TESTS in lines
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test,dask]"' in ci and "python -m clusterlob.replay" in ci and "python -m pytest -q" in ci


def test_links_resolve_and_every_stage_page_is_linked():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert links and all((ROOT / link).is_file() for link in links), [l for l in links if not (ROOT / l).is_file()]
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages <= set(links), sorted(pages - set(links))
    assert "docs/performance.md" in links


def test_layout_table_is_true_to_the_tree():
    rows = [line for line in _section("Layout").splitlines() if line.startswith("| `")]
    named: set[Path] = set()
    for row in rows:
        path_cell, holds = row.split(" | ", 1)
        for path in re.findall(r"`([^`]+)`", path_cell):
            if "{" in path:                                   # clusterlob/{a,b}/
                head, alts, tail = re.match(r"(.*)\{(.*)\}(.*)", path).groups()
                paths = [head + a + tail for a in alts.split(",")]
            else:
                paths = [path]
            for p in paths:
                assert (ROOT / p).exists(), p
                named.add((ROOT / p).resolve())
                if p.endswith("/"):                           # the files a package row names exist there
                    for name in re.findall(r"`(\w+\.py|\w+/)`", holds):
                        assert (ROOT / p / name).exists(), f"{p}{name}"
    packages = {d.resolve() for d in (ROOT / "clusterlob").iterdir() if (d / "__init__.py").is_file()}
    assert packages <= named, sorted(str(p) for p in packages - named)
    modules = {f.resolve() for f in (ROOT / "clusterlob").glob("*.py") if f.name != "__init__.py"}
    assert modules <= named, sorted(str(m) for m in modules - named)


def test_the_python_example_runs():
    code = re.search(r"```python\n(.*?)```", _section("The main job"), re.S).group(1)
    assert 'run_pipeline("data/default_tape"' in code and len(code.splitlines()) <= 12
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    float(lines[0])                                           # the PnL
    assert lines[1] == "out_of_sample ['2024-05-01'] ['2024-05-02']"
    assert "trade_index" in out.stdout
