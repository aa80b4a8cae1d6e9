"""Analytics tools: describe (values / inline CSV / CSV file) and text_stats."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from agent.tools import ToolError, build_registry

MAX = 10_000


@pytest.fixture
def aroot(tmp_path: Path) -> Path:
    root = tmp_path / "analytics"
    root.mkdir()
    return root


@pytest.fixture
def reg(tmp_path: Path, aroot: Path):
    return build_registry(["analytics"], fs_root=tmp_path / "fs", analytics_root=aroot, max_bytes=MAX)


def _err(reg, name, args) -> ToolError:
    with pytest.raises(ToolError) as ei:
        reg.call(name, args)
    return ei.value


EXPECTED_1_TO_5 = {
    "count": 5,
    "mean": 3.0,
    "std": 1.5811388300841898,
    "min": 1.0,
    "max": 5.0,
    "quantiles": {"0.25": 2.0, "0.5": 3.0, "0.75": 4.0},
}


def test_describe_values(reg):
    assert reg.call("describe", {"values": [1, 2, 3, 4, 5]}) == EXPECTED_1_TO_5
    assert reg.call("describe", {"values": [5, 1, 4, 2, 3]}) == EXPECTED_1_TO_5


def test_describe_interpolates_like_numpy(reg):
    # numpy.quantile([1, 2, 3, 4], [.25, .5, .75]) == [1.75, 2.5, 3.25]
    out = reg.call("describe", {"values": [4, 1, 3, 2]})
    assert out["quantiles"] == {"0.25": 1.75, "0.5": 2.5, "0.75": 3.25}
    assert out["std"] == pytest.approx(statistics.stdev([1, 2, 3, 4]))


def test_describe_single_value(reg):
    out = reg.call("describe", {"values": [7.5]})
    assert out == {"count": 1, "mean": 7.5, "std": 0.0, "min": 7.5, "max": 7.5,
                   "quantiles": {"0.25": 7.5, "0.5": 7.5, "0.75": 7.5}}


CSV = "name,score,age\na,1,30\nb,2,31\nc,3,32\nd,4,33\ne,5,34\n"


def test_describe_csv_by_header(reg):
    assert reg.call("describe", {"csv": CSV, "column": "score"}) == EXPECTED_1_TO_5


def test_describe_csv_by_index(reg):
    assert reg.call("describe", {"csv": CSV, "column": 1}) == EXPECTED_1_TO_5
    headerless = "x,1\ny,2\nz,3\nw,4\nv,5"
    assert reg.call("describe", {"csv": headerless, "column": 1}) == EXPECTED_1_TO_5


def test_describe_csv_quoting_blank_lines_and_missing_cells(reg):
    text = 'label,"v"\n"a, quoted",1\n\nb,2\nc,\nd,3\ne,4\nf,5\n'
    assert reg.call("describe", {"csv": text, "column": "v"}) == EXPECTED_1_TO_5


def test_describe_csv_file(reg, aroot):
    (aroot / "data").mkdir()
    (aroot / "data" / "scores.csv").write_text(CSV, encoding="utf-8")
    assert reg.call("describe", {"path": "data/scores.csv", "column": "score"}) == EXPECTED_1_TO_5


def test_describe_csv_file_with_bom(reg, aroot):
    (aroot / "bom.csv").write_bytes("\ufeffscore\n1\n2\n3\n4\n5\n".encode())
    assert reg.call("describe", {"path": "bom.csv", "column": "score"}) == EXPECTED_1_TO_5


@pytest.mark.parametrize("path", ["../secret.csv", "/etc/passwd", "a/../../secret.csv", "x\x00"])
def test_describe_traversal_refused(reg, path):
    assert _err(reg, "describe", {"path": path, "column": 0}).code == "forbidden"


def test_describe_symlink_escape_refused(reg, aroot, tmp_path):
    (tmp_path / "secret.csv").write_text("v\n1\n")
    (aroot / "link.csv").symlink_to(tmp_path / "secret.csv")
    assert _err(reg, "describe", {"path": "link.csv", "column": "v"}).code == "forbidden"
    assert _err(reg, "text_stats", {"path": "link.csv"}).code == "forbidden"


def test_describe_file_limits(reg, aroot):
    assert _err(reg, "describe", {"path": "missing.csv", "column": 0}).code == "not_found"
    (aroot / "big.csv").write_text("1\n" * MAX)
    assert _err(reg, "describe", {"path": "big.csv", "column": 0}).code == "too_large"


def test_describe_bad_cell_names_row_and_column(reg):
    text = "name,score\na,1\nb,oops\nc,3\n"
    e = _err(reg, "describe", {"csv": text, "column": "score"})
    assert e.code == "invalid_arguments"
    assert "row 3" in e.message and "'score'" in e.message and "'oops'" in e.message


def test_describe_non_finite_cell_refused(reg):
    e = _err(reg, "describe", {"csv": "v\n1\nnan\n", "column": "v"})
    assert e.code == "invalid_arguments" and "row 3" in e.message


def test_describe_unknown_column(reg):
    e = _err(reg, "describe", {"csv": CSV, "column": "height"})
    assert e.code == "invalid_arguments" and "height" in e.message
    e = _err(reg, "describe", {"csv": CSV, "column": 9})
    assert e.code == "invalid_arguments" and "9" in e.message


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"values": []},
        {"csv": ""},
        {"csv": "", "column": 0},
        {"csv": "v\n", "column": "v"},
        {"values": [1], "csv": "v\n1", "column": 0},
        {"values": [1], "column": 0},
        {"csv": "v\n1"},
        {"values": ["1"]},
        {"values": [True]},
        {"column": -1, "csv": "1"},
        {"values": [1], "extra": 1},
    ],
)
def test_describe_invalid(reg, args):
    assert _err(reg, "describe", args).code == "invalid_arguments"


def test_text_stats_counts(reg):
    text = "The cat sat.\nThe dog sat, the END.\nend"
    out = reg.call("text_stats", {"text": text})
    assert out == {
        "lines": 3,
        "words": 9,
        "characters": len(text),
        "top_words": [["the", 3], ["end", 2], ["sat", 2], ["cat", 1], ["dog", 1]],
    }


def test_text_stats_top_and_ties(reg):
    out = reg.call("text_stats", {"text": "b a c b a c d\n", "top": 2})
    assert out["top_words"] == [["a", 2], ["b", 2]]
    assert out["lines"] == 1 and out["words"] == 7 and out["characters"] == 14


def test_text_stats_empty(reg):
    assert reg.call("text_stats", {"text": ""}) == {"lines": 0, "words": 0, "characters": 0, "top_words": []}


def test_text_stats_file(reg, aroot):
    (aroot / "t.txt").write_text("één twee\ntwee\n", encoding="utf-8")
    out = reg.call("text_stats", {"path": "t.txt"})
    assert out == {"lines": 2, "words": 3, "characters": 14, "top_words": [["twee", 2], ["één", 1]]}


def test_text_stats_invalid(reg, aroot):
    for args in ({}, {"text": "a", "path": "x"}, {"text": "a", "top": 0}, {"text": "a", "top": 101}):
        assert _err(reg, "text_stats", args).code == "invalid_arguments"
    (aroot / "bin").write_bytes(b"\xff\xfe")
    assert _err(reg, "text_stats", {"path": "bin"}).code == "invalid_arguments"
    assert _err(reg, "text_stats", {"path": "../x"}).code == "forbidden"


# --- issue 8: no inf/NaN in answers, no OverflowError ------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"values": [1e308, -1e308]},  # quantiles: inf - inf
        {"values": [1.7e308, 1.7e308]},  # the mean's sum overflows
        {"values": [10**400]},  # not representable as a float at all
        {"values": [1, -(10**400)]},
        {"csv": "x\n1e308\n-1e308\n", "column": "x"},
    ],
)
def test_describe_overflow_is_invalid_arguments(reg, args):
    e = _err(reg, "describe", args)
    assert e.code == "invalid_arguments"
    assert "too large" in e.message


def test_describe_large_but_fine_values_still_work(reg):
    out = reg.call("describe", {"values": [1e300, 2e300, 10**300]})
    assert out["count"] == 3 and out["max"] == 2e300
