"""tools/parity_hftbacktest.py as a user runs it, without hftbacktest (its side is skipped)."""
import json
import subprocess
import sys

from conftest import ROOT, shared_file


def test_parity_tool_runs_clusterlob_side_without_hftbacktest(tmp_path):
    recording = shared_file("binance-futures", "btcusdt_20240808.gz")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "parity_hftbacktest.py"), str(recording),
                           "--hftbt-python", str(tmp_path / "no-python")],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "hftbacktest side skipped" in out
    doc = json.loads(out[out.index("{"):])
    assert doc["engine"] == "clusterlob" and doc["fills"] > 100 and doc["fills_by_reason"]["queue"] > 0


def _tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("parity_hftbacktest", ROOT / "tools" / "parity_hftbacktest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parity_speed_rows_use_one_common_count_and_the_median_warm_run():
    """The speed rows: the recording's trade + depthUpdate messages (the counts ../shared/data/README.md
    gives) for both engines, and the median of the timed runs with the warm-up left out."""
    tool = _tool()
    counts = tool.market_messages(shared_file("binance-futures", "btcusdt_20240808.gz"))
    assert counts == {"trade": 21_313, "depthUpdate": 6_551}
    side = {"runs": [{"seconds": 9.0, "cpu_seconds": 8.0}, {"seconds": 1.0, "cpu_seconds": 1.0},
                     {"seconds": 3.0, "cpu_seconds": 2.0}, {"seconds": 2.0, "cpu_seconds": 5.0}]}
    assert tool.warm(side) == {"seconds": 2.0, "cpu_seconds": 2.0, "n": 3}
