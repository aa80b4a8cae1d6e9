"""Tools an agent exposes to peers (MCP / A2A / the tool protocol).

Each tool is declared once with :func:`tool` (name, description, JSON Schema,
blocking flag) next to its implementation; :func:`build_registry` turns a
selection of groups/tool names into a :class:`ToolRegistry`.
"""

from ._registry import (
    ERROR_CODES,
    FORBIDDEN,
    INVALID_ARGUMENTS,
    NOT_FOUND,
    TOO_LARGE,
    TOOL_FAILED,
    UNKNOWN_TOOL,
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolSpec,
    build_registry,
    catalog,
    tool,
)
from . import analytics, filesystem, system  # noqa: E402,F401  (declare the built-in tools)
from .filesystem import ResolvedPath, read_limited, resolve_path

__all__ = [
    "ERROR_CODES",
    "FORBIDDEN",
    "INVALID_ARGUMENTS",
    "NOT_FOUND",
    "TOO_LARGE",
    "TOOL_FAILED",
    "UNKNOWN_TOOL",
    "ResolvedPath",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "build_registry",
    "catalog",
    "read_limited",
    "resolve_path",
    "tool",
]
