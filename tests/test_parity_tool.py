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
