"""Tool model, errors, registry and the ``@tool`` declaration decorator.

A tool is declared once, next to its implementation::

    @tool("echo", "Return the arguments unchanged.", schema={...}, blocking=False)
    def echo(ctx: ToolContext, /, **arguments): ...

The decorator records a :class:`ToolSpec` in a module-level catalog;
:func:`build_registry` binds the selected specs to a :class:`ToolContext`
(roots, size limit) and registers the resulting :class:`Tool` objects.
Implementations take the context as their first, positional-only parameter and
the validated arguments as keyword arguments.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jsonschema
from jsonschema.exceptions import best_match

from ..constants import TOOL_GROUPS

log = logging.getLogger(__name__)

# --- errors (the vocabulary lives in agent/errors.py) --------------------------

from ..errors import (  # noqa: E402
    FORBIDDEN,
    INVALID_ARGUMENTS,
    NOT_FOUND,
    TIMEOUT,
    TOO_LARGE,
    TOOL_FAILED,
    UNKNOWN_TOOL,
    ToolError,
    internal,
)

ERROR_CODES = (UNKNOWN_TOOL, INVALID_ARGUMENTS, FORBIDDEN, NOT_FOUND, TOO_LARGE, TOOL_FAILED, TIMEOUT)


# --- tool model --------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A callable tool. ``func`` is synchronous and takes the validated
    arguments as keyword arguments; ``blocking`` tools (file I/O, heavy CPU)
    must be run in a worker thread by async callers."""

    name: str
    description: str
    input_schema: dict
    func: Callable[..., Any]
    blocking: bool = True

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": self.input_schema}


@dataclass(frozen=True)
class ToolContext:
    """Per-registry configuration handed to every tool implementation."""

    fs_root: Path
    analytics_root: Path
    max_bytes: int


@dataclass(frozen=True)
class ToolSpec:
    """A declared tool, not yet bound to a context."""

    name: str
    description: str
    input_schema: dict
    impl: Callable[..., Any]
    blocking: bool

    def bind(self, ctx: ToolContext) -> Tool:
        return Tool(
            name=self.name,
            description=self.description,
            input_schema=self.input_schema,
            func=functools.partial(self.impl, ctx),
            blocking=self.blocking,
        )


_CATALOG: dict[str, ToolSpec] = {}


def tool(name: str, description: str, *, schema: dict, blocking: bool = True) -> Callable:
    """Declare ``func`` as the tool ``name``; returns ``func`` unchanged."""
    _check_schema(name, schema)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _CATALOG and _CATALOG[name].impl is not func:
            raise ValueError(f"tool {name!r} declared twice")
        _CATALOG[name] = ToolSpec(name, description, schema, func, blocking)
        return func

    return decorate


def catalog() -> dict[str, ToolSpec]:
    """All declared tools by name (imports the built-in tool modules)."""
    from . import analytics, filesystem, system  # noqa: F401  (declare the tools)

    return dict(_CATALOG)


def _check_schema(name: str, schema: Mapping[str, Any]) -> None:
    if schema.get("type") != "object":
        raise ValueError(f"tool {name!r}: input schema must have \"type\": \"object\"")
    jsonschema.Draft202012Validator.check_schema(schema)


# --- registry ----------------------------------------------------------------


def _format_path(path: Iterable[Any]) -> str:
    out = "arguments"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class ToolRegistry:
    """Name -> Tool map with cached schema validators. Safe for concurrent
    ``call``s (registration takes a lock and swaps in new dicts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    def register(self, tool: Tool) -> None:
        _check_schema(tool.name, tool.input_schema)
        validator = jsonschema.Draft202012Validator(tool.input_schema)
        with self._lock:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} is already registered")
            self._validators = {**self._validators, tool.name: validator}
            self._tools = {**self._tools, tool.name: tool}

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def describe_all(self) -> list[dict[str, Any]]:
        return [t.describe() for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def validate(self, name: str, arguments: Any) -> Tool:
        """Return the tool if ``arguments`` fit its schema, else raise ToolError."""
        tools, validators = self._tools, self._validators
        found = tools.get(name)
        if found is None:
            raise ToolError(UNKNOWN_TOOL, f"unknown tool {name!r}")
        error = best_match(validators[name].iter_errors(arguments))
        if error is not None:
            raise ToolError(INVALID_ARGUMENTS, f"{_format_path(error.absolute_path)}: {error.message}")
        return found

    def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Validate and run a tool synchronously (in the calling thread)."""
        if arguments is None:
            arguments = {}
        found = self.validate(name, arguments)
        try:
            return found.func(**arguments)
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a ToolError
            raise _failed(name, exc) from exc


def _failed(name: str, exc: Exception) -> ToolError:
    """An exception a tool did not turn into a ToolError itself.  Its text is
    not passed on: an OSError's names the absolute path (and any exception's
    may name local state).  An OSError keeps its errno text ("Permission
    denied", "No space left on device"); anything else becomes an incident id
    that is logged next to the traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        log.warning("tool %s failed", name, exc_info=exc)
        return ToolError(TOOL_FAILED, f"tool {name!r} failed: {exc.strerror}")
    incident = internal(exc, f"tool {name}")
    return ToolError(TOOL_FAILED, f"tool {name!r} failed: {incident.message}", incident=incident.details["incident"])


# --- building ----------------------------------------------------------------


def build_registry(
    selection: Iterable[str], *, fs_root: Path, analytics_root: Path, max_bytes: int
) -> ToolRegistry:
    """Registry with the selected tools. ``selection`` holds group names from
    ``TOOL_GROUPS`` and/or single tool names; anything else is a ValueError.
    Creates ``fs_root`` (0755) if a filesystem tool is selected."""
    if isinstance(selection, str):
        raise TypeError("selection must be a list of names, not a string")
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    specs = catalog()
    names: list[str] = []
    for item in selection:
        if item in TOOL_GROUPS:
            members = TOOL_GROUPS[item]
        elif item in specs:
            members = (item,)
        else:
            raise ValueError(
                f"unknown tool or tool group {item!r} "
                f"(groups: {', '.join(TOOL_GROUPS)}; tools: {', '.join(sorted(specs))})"
            )
        for member in members:
            if member not in specs:
                raise ValueError(f"tool group {item!r} names tool {member!r}, which does not exist")
            if member not in names:
                names.append(member)

    from . import filesystem

    fs_root = Path(fs_root)
    if any(specs[n].impl.__module__ == filesystem.__name__ for n in names):
        fs_root.mkdir(mode=0o755, parents=True, exist_ok=True)
    ctx = ToolContext(fs_root=fs_root, analytics_root=Path(analytics_root), max_bytes=max_bytes)
    registry = ToolRegistry()
    for n in names:
        registry.register(specs[n].bind(ctx))
    return registry
