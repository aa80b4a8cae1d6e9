"""System tools: ``echo``."""

from __future__ import annotations

from typing import Any

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
