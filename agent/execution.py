"""The one local execution path for tools, and the JSON check every answer passes.

Used by the HTTP side (``routing``, asyncio) and by the P2P tool handler
(``serving``, trio) alike: anyio runs on both, so one implementation serves
both loops.  A local call

1. validates the arguments once, against the tool's schema;
2. runs a blocking tool in a worker thread, a non-blocking one inline, both
   within ``tools.call_timeout``;
3. checks that the result can travel as JSON (no NaN/infinity, no text that is
   not valid Unicode, not nested beyond what a decoder accepts).

Everything a local call raises is a :class:`~agent.errors.ToolError`, so every
caller (HTTP, MCP, A2A, the tool protocol) maps one class.  A worker thread
cannot be stopped from outside in Python: on timeout or cancellation the
caller stops waiting at once and the thread is abandoned to finish on its own.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.to_thread

from . import errors
from .errors import INTERNAL, INVALID_ARGUMENTS, TIMEOUT, TOO_LARGE, TOOL_FAILED, PraxisError, ToolError
from .messages import dumps
from .tools import Tool, ToolRegistry

__all__ = ["ToolExecutor", "encode_json", "check_size"]

log = logging.getLogger("agent.execution")


def encode_json(obj: Any, what: str = "the answer") -> bytes:
    """``obj`` as compact UTF-8 JSON, or a ToolError saying why it cannot be.

    (:func:`messages.dumps` refuses ``NaN``/``Infinity``: not JSON.)
    """
    try:
        return dumps(obj)
    except UnicodeEncodeError:
        # A lone surrogate: e.g. a file name that is not valid UTF-8.
        raise ToolError(TOOL_FAILED, f"{what} holds text that is not valid Unicode "
                                     "(for example a file name that is not UTF-8)") from None
    except ValueError as e:
        if "circular" in str(e):
            raise ToolError(INTERNAL, f"{what} refers to itself") from None
        raise ToolError(INVALID_ARGUMENTS, f"{what} holds a number JSON cannot carry (NaN or infinity); "
                                           "the input values are out of range") from None
    except RecursionError:
        raise ToolError(TOOL_FAILED, f"{what} is nested too deeply to encode") from None
    except TypeError as e:
        raise _internal(e, f"encoding {what}") from None


def check_size(data: bytes, limit: int, what: str = "the answer") -> bytes:
    if len(data) > limit:
        raise PraxisError(
            TOO_LARGE,
            f"{what} is {len(data)} bytes as JSON, over the {limit}-byte message limit "
            "(the limit applies after JSON escaping: base64, newlines and quotes count extra)",
        )
    return data


def _internal(exc: BaseException, where: str) -> ToolError:
    err = errors.internal(exc, where)
    return ToolError(err.code, err.message, **err.details)


def _invoke(tool: Tool, arguments: dict[str, Any]) -> Any:
    """Run the tool in this thread; anything but a PraxisError is a bug → internal."""
    try:
        return tool.func(**arguments)
    except ToolError:
        raise
    except PraxisError as e:
        raise ToolError(e.code, e.message, **e.details) from None
    except OSError as e:
        # strerror only: the exception's own text names local paths.
        raise ToolError(TOOL_FAILED, f"tool '{tool.name}' failed: {e.strerror or type(e).__name__}") from None
    except Exception as e:  # noqa: BLE001 - every failure becomes an answer
        raise _internal(e, f"tool '{tool.name}'") from None


def _validate(tools: ToolRegistry, name: str, arguments: Any) -> Tool:
    try:
        return tools.validate(name, arguments)
    except ToolError:
        raise
    except RecursionError:
        raise ToolError(INVALID_ARGUMENTS, "arguments nested too deeply") from None
    except Exception as e:  # noqa: BLE001
        raise _internal(e, f"validating arguments of '{name}'") from None


def _validate_and_invoke(tools: ToolRegistry, name: str, arguments: Any) -> Any:
    return _invoke(_validate(tools, name, arguments), arguments)


class ToolExecutor:
    """Runs this agent's own tools: one validation, one timeout, one result check."""

    def __init__(self, tools: ToolRegistry, timeout: float) -> None:
        self.tools = tools
        self.timeout = timeout

    def has(self, name: str) -> bool:
        return self.tools.get(name) is not None

    async def run(self, name: str, arguments: Any) -> Any:
        """The tool's result; raises ToolError (codes from agent.errors) and nothing
        else but cancellation."""
        tool = self.tools.get(name)
        try:
            with anyio.fail_after(self.timeout):
                if tool is not None and tool.blocking:
                    # Validation too: 250 000 values take a while to check, and
                    # neither the event loop nor the timeout may be held up by it.
                    result = await anyio.to_thread.run_sync(
                        _validate_and_invoke, self.tools, name, arguments, abandon_on_cancel=True
                    )
                else:
                    result = _validate_and_invoke(self.tools, name, arguments)
        except TimeoutError:
            raise ToolError(TIMEOUT, f"tool '{name}' did not finish within {self.timeout:g}s") from None
        encode_json(result)  # fail here, with a clear error, not in whichever transport sends it
        return result
