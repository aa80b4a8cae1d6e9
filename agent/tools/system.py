"""System tools: ``echo`` and ``sleep``."""

from __future__ import annotations

import time
from typing import Any

from ..constants import SLEEP_MAX_SECONDS
from ._registry import ToolContext, tool


@tool(
    "echo",
    "Return the arguments unchanged (connectivity checks and benchmarks).",
    schema={
        "type": "object",
        "properties": {"message": {"description": "Any JSON value."}},
        "additionalProperties": True,
    },
    blocking=False,
)
def echo(ctx: ToolContext, /, **arguments: Any) -> dict[str, Any]:
    return arguments


@tool(
    "sleep",
    f"Wait `seconds` (at most {SLEEP_MAX_SECONDS:g}) and return how long it waited: a long call "
    "for testing timeouts and cancellation.",
    schema={
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": SLEEP_MAX_SECONDS}},
        "required": ["seconds"],
        "additionalProperties": False,
    },
    blocking=True,
)
def sleep(ctx: ToolContext, /, seconds: float) -> dict[str, Any]:
    # Runs in a worker thread (blocking=True); a cancelled or timed-out call
    # abandons the thread, which ends by itself within the bound.
    t0 = time.monotonic()
    time.sleep(seconds)
    return {"slept": round(time.monotonic() - t0, 3)}
