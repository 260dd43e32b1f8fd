"""Report writers: atomic, never overwrite silently, NaN handled."""
import csv
import json

import numpy as np
import pytest

from clusterlob.errors import ParameterError
from clusterlob.report import markdown_table, to_jsonable, write_csv, write_json, write_markdown


def test_writers_create_files_and_refuse_to_overwrite(tmp_path):
    md = write_markdown(tmp_path / "sub" / "r.md", "# title")
    assert md.read_text() == "# title\n"
    js = write_json(tmp_path / "r.json", {"a": np.float64(1.5), "b": np.array([1, 2]), "c": float("nan"),
                                          "d": (np.int8(3), np.bool_(True))})
    assert json.loads(js.read_text()) == {"a": 1.5, "b": [1, 2], "c": None, "d": [3, True]}
    cs = write_csv(tmp_path / "r.csv", ["x", "y", "name"], [[1, np.nan, "a,b"], [np.int64(2), 0.25, None]])
    with open(cs, newline="") as fh:
        assert list(csv.reader(fh)) == [["x", "y", "name"], ["1", "", "a,b"], ["2", "0.250000", ""]]
    for call in (lambda: write_markdown(md, "other"), lambda: write_json(js, {}),
                 lambda: write_csv(cs, ["x"], [])):
        with pytest.raises(ParameterError, match="exists .*use --force"):
            call()
    assert md.read_text() == "# title\n"
    write_markdown(md, "other", overwrite=True)
    assert md.read_text() == "other\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["r.csv", "r.json", "r.md"]


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ParameterError, match="row 1 has 1 cells, the header has 2"):
        write_csv(tmp_path / "bad.csv", ["a", "b"], [[1, 2], [3]])
    with pytest.raises(ParameterError, match="cannot write"):
        write_json(tmp_path / "bad.json", {"f": object()})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ParameterError, match="is a directory"):
        write_markdown(tmp_path, "x")


def test_markdown_table_and_jsonable():
    text = markdown_table(["a", "b"], [[1, 0.123456], ["x|y", float("inf")]], align=["l", "r"])
    assert text.splitlines() == ["| a | b |", "| :--- | ---: |", "| 1 | 0.12 |", "| x\\|y |  |"]
    assert to_jsonable({1: [np.float32(0.5), float("-inf")]}) == {"1": [0.5, None]}
