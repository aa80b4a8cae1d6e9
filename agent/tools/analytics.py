"""Analytics tools: ``describe`` (summary statistics) and ``text_stats``.

File inputs are read from the analytics root through the filesystem module's
confinement (:func:`agent.tools.filesystem.resolve_path`) and size limit.
"""

from __future__ import annotations

import csv as _csv
import io
import math
import re
import statistics
import sys
from collections import Counter
from typing import Any

from ._registry import INVALID_ARGUMENTS, ToolContext, ToolError, tool
from .filesystem import MAX_PATH_CHARS, read_limited, resolve_path

_PATH = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS,
         "description": "File path relative to the analytics root."}
_WORD = re.compile(r"\w+")
_FLOAT_MAX = sys.float_info.max


def _invalid(message: str) -> ToolError:
    return ToolError(INVALID_ARGUMENTS, message)


def _exactly_one(name: str, given: dict[str, Any]) -> str:
    present = [k for k, v in given.items() if v is not None]
    if len(present) != 1:
        options = ", ".join(given)
        got = ", ".join(present) if present else "none"
        raise _invalid(f"{name} needs exactly one of {options} (got {got})")
    return present[0]


def _read_text(ctx: ToolContext, path: str) -> str:
    resolved = resolve_path(ctx.analytics_root, path)
    data = read_limited(resolved, ctx.max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid(f"file {resolved.rel!r} is not valid UTF-8 (byte {exc.start})") from None


# --- describe ----------------------------------------------------------------


def _parse_number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _csv_column(text: str, column: str | int, source: str) -> list[float]:
    """Numbers in one column of CSV ``text``. A string ``column`` names a header
    (the first non-blank row); an integer is a 0-based index, and the first row
    is then taken as a header only if its cell there is not a number. Blank
    lines and empty cells (missing values) are skipped."""
    reader = _csv.reader(io.StringIO(text, newline=""))
    values: list[float] = []
    index: int | None = column if isinstance(column, int) else None
    label = f"column {column!r}"
    first = True
    width = 0
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            width = max(width, len(row))
            if first:
                first = False
                header = [cell.strip() for cell in row]
                if index is None:
                    name = str(column)
                    if name not in header and name.strip() not in header:
                        raise _invalid(f"{source}: column {name!r} is not in the header {header}")
                    index = header.index(name if name in header else name.strip())
                    continue
                if index < len(row) and row[index].strip() and _parse_number(row[index].strip()) is None:
                    label = f"column {index} ({header[index]!r})"
                    continue  # a header row
            if index >= len(row):
                continue  # short row: missing value
            cell = row[index].strip()
            if not cell:
                continue
            value = _parse_number(cell)
            if value is None:
                raise _invalid(f"{source}: row {reader.line_num}, {label}: {cell[:80]!r} is not a finite number")
            values.append(value)
    except _csv.Error as exc:
        raise _invalid(f"{source}: malformed CSV at row {reader.line_num}: {exc}") from None
    if not values:
        if index is not None and width and index >= width:
            raise _invalid(f"{source}: column {index} is out of range (rows have {width} columns)")
        raise _invalid(f"{source}: {label} has no numeric values")
    return values


@tool(
    "describe",
    "Summary statistics of numbers: count, mean, sample standard deviation (n-1; 0 "
    "for one value), min, max and the 0.25/0.5/0.75 quantiles (linear interpolation, "
    "like numpy's default). Give exactly one of: values (a list of numbers), csv "
    "(inline CSV text) or path (a CSV file under the analytics root); csv and path "
    "need column, a header name or a 0-based index. Empty CSV cells are skipped; "
    "rows are numbered from 1 in messages.",
    schema={
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "number"}},
            "csv": {"type": "string"},
            "path": _PATH,
            "column": {"type": ["string", "integer"], "minimum": 0},
        },
        "additionalProperties": False,
    },
)
def describe(
    ctx: ToolContext,
    /,
    *,
    values: list[float] | None = None,
    csv: str | None = None,
    path: str | None = None,
    column: str | int | None = None,
) -> dict[str, Any]:
    source = _exactly_one("describe", {"values": values, "csv": csv, "path": path})
    if isinstance(column, float):  # JSON Schema counts 2.0 as an integer
        column = int(column)
    if source == "values":
        if column is not None:
            raise _invalid("column applies only to csv or path")
        data = []
        for i, v in enumerate(values or ()):
            try:  # a JSON integer may be too big for a float (10**400)
                f = float(v)
            except OverflowError:
                raise _invalid(f"values[{i}] is too large (over {_FLOAT_MAX:g})") from None
            if not math.isfinite(f):
                raise _invalid(f"values[{i}] is not a finite number")
            data.append(f)
    else:
        if column is None:
            raise _invalid(f"column is required with {source}")
        if source == "csv":
            data = _csv_column(csv or "", column, "csv")
        else:
            data = _csv_column(_read_text(ctx, path or ""), column, f"file {path!r}")
    if not data:
        raise _invalid("no values to describe")

    n = len(data)
    try:
        if n >= 2:
            quartiles = statistics.quantiles(data, n=4, method="inclusive")
            std = statistics.stdev(data)
        else:
            quartiles = [data[0]] * 3
            std = 0.0
        stats = {
            "count": n,
            "mean": float(statistics.fmean(data)),
            "std": float(std),
            "min": min(data),
            "max": max(data),
            "quantiles": {"0.25": float(quartiles[0]), "0.5": float(quartiles[1]), "0.75": float(quartiles[2])},
        }
    except OverflowError:
        stats = None
    # Finite inputs near the float limit can still overflow in the arithmetic
    # ([1e308, -1e308]: the interpolated quantiles are inf - inf = nan), and
    # inf/nan are not JSON: refuse rather than answer with them.
    if stats is None or not all(math.isfinite(v) for v in _numbers(stats)):
        raise _invalid(
            f"the values are too large to summarise: a statistic overflows a float (max {_FLOAT_MAX:g}); "
            "scale them down"
        )
    return stats


def _numbers(stats: dict[str, Any]) -> list[float]:
    return [v for v in stats.values() if isinstance(v, float)] + list(stats["quantiles"].values())


# --- text_stats --------------------------------------------------------------


@tool(
    "text_stats",
    "Line, word and character counts of a text plus its most frequent words "
    "(lowercased \\w+ runs; ties broken alphabetically). Give exactly one of text "
    "or path (a UTF-8 file under the analytics root). A last line without a "
    "newline counts as a line.",
    schema={
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "path": _PATH,
            "top": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        },
        "additionalProperties": False,
    },
)
def text_stats(
    ctx: ToolContext, /, *, text: str | None = None, path: str | None = None, top: int = 10
) -> dict[str, Any]:
    source = _exactly_one("text_stats", {"text": text, "path": path})
    if source == "path":
        text = _read_text(ctx, path or "")
    assert text is not None
    words = [w.lower() for w in _WORD.findall(text)]
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: int(top)]
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return {
        "lines": lines,
        "words": len(words),
        "characters": len(text),
        "top_words": [[w, c] for w, c in ranked],
    }
