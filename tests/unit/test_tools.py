"""Tool registry: validation, error mapping, build_registry selection."""

from __future__ import annotations

import pickle
import re
import threading
from pathlib import Path

import pytest

from agent.constants import TOOL_GROUPS
from agent.tools import Tool, ToolError, ToolRegistry, build_registry, catalog


def _registry_with(func, schema=None, name="t") -> ToolRegistry:
    reg = ToolRegistry()
    reg.register(
        Tool(
            name=name,
            description="test tool",
            input_schema=schema
            or {
                "type": "object",
                "properties": {"path": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["path"],
                "additionalProperties": False,
            },
            func=func,
            blocking=False,
        )
    )
    return reg


def _build(tmp_path: Path, selection) -> ToolRegistry:
    return build_registry(selection, fs_root=tmp_path / "fs", analytics_root=tmp_path / "an", max_bytes=1024)


def test_unknown_tool():
    reg = ToolRegistry()
    with pytest.raises(ToolError) as ei:
        reg.call("nope", {})
    assert ei.value.code == "unknown_tool"
    assert "nope" in ei.value.message
    assert reg.get("nope") is None


def test_schema_error_names_field():
    reg = _registry_with(lambda **kw: kw)
    with pytest.raises(ToolError) as ei:
        reg.call("t", {"path": 5})
    assert ei.value.code == "invalid_arguments"
    assert ei.value.message == "arguments.path: 5 is not of type 'string'"

    with pytest.raises(ToolError) as ei:
        reg.validate("t", {})
    assert ei.value.code == "invalid_arguments"
    assert "'path' is a required property" in ei.value.message

    with pytest.raises(ToolError) as ei:
        reg.call("t", {"path": "x", "bogus": 1})
    assert ei.value.code == "invalid_arguments"
    assert "bogus" in ei.value.message

    with pytest.raises(ToolError) as ei:
        reg.call("t", ["not", "an", "object"])
    assert ei.value.code == "invalid_arguments"


def test_nested_error_path_uses_index():
    schema = {
        "type": "object",
        "properties": {"values": {"type": "array", "items": {"type": "number"}}},
        "additionalProperties": False,
    }
    reg = _registry_with(lambda **kw: kw, schema)
    with pytest.raises(ToolError) as ei:
        reg.call("t", {"values": [1, "x"]})
    assert ei.value.message.startswith("arguments.values[1]: 'x'")


def test_exception_becomes_tool_failed_with_incident_only(caplog):
    def boom(**kw):
        raise KeyError("/secret/local/path")

    reg = _registry_with(boom)
    with pytest.raises(ToolError) as ei:
        reg.call("t", {"path": "x"})
    assert ei.value.code == "tool_failed"
    incident = ei.value.details["incident"]
    assert re.fullmatch(r"tool 't' failed: internal error \(incident [0-9a-f]{12}\); see the agent's log", ei.value.message)
    assert incident in ei.value.message
    assert "/secret" not in ei.value.message and "Traceback" not in ei.value.message
    # the log keeps what the answer leaves out, under the same incident id
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records)


def test_os_error_keeps_errno_text_not_the_path():
    def denied(**kw):
        raise PermissionError(13, "Permission denied", "/srv/praxis/data/x")

    reg = _registry_with(denied)
    with pytest.raises(ToolError) as ei:
        reg.call("t", {"path": "x"})
    assert ei.value.code == "tool_failed"
    assert ei.value.message == "tool 't' failed: Permission denied"


def test_tool_error_passes_through_and_pickles():
    def refuse(**kw):
        raise ToolError("forbidden", "no")

    reg = _registry_with(refuse)
    with pytest.raises(ToolError) as ei:
        reg.call("t", {"path": "x"})
    assert (ei.value.code, ei.value.message) == ("forbidden", "no")
    again = pickle.loads(pickle.dumps(ei.value))
    assert (again.code, again.message) == ("forbidden", "no")
    assert ei.value.to_dict() == {"code": "forbidden", "message": "no"}
    # An unknown code must never raise (that once killed a P2P loop): it is
    # reported as an internal error instead.
    assert ToolError("made_up", "x").code == "internal"
    assert ToolError("timeout", "slow").code == "timeout"


def test_call_passes_arguments_as_kwargs():
    reg = _registry_with(lambda **kw: kw)
    assert reg.call("t", {"path": "p", "n": 2}) == {"path": "p", "n": 2}


def test_register_rejects_duplicates_and_bad_schemas():
    reg = _registry_with(lambda **kw: kw)
    with pytest.raises(ValueError):
        reg.register(reg.get("t"))
    with pytest.raises(ValueError):
        reg.register(Tool("u", "d", {"type": "array"}, lambda: None))


def test_describe_uses_mcp_names(tmp_path):
    reg = _build(tmp_path, ["system"])
    desc = reg.describe_all()[0]
    assert set(desc) == {"name", "description", "inputSchema"}
    assert desc["name"] == "echo"
    assert desc["inputSchema"]["type"] == "object"


def test_echo_returns_arguments_and_is_inline(tmp_path):
    reg = _build(tmp_path, ["echo"])
    args = {"message": {"nested": [1, 2.5, None, "x"]}, "extra": True}
    assert reg.call("echo", args) == args
    assert reg.call("echo", {}) == {}
    assert reg.get("echo").blocking is False


def test_build_registry_groups(tmp_path):
    reg = _build(tmp_path, ["filesystem", "analytics"])
    assert reg.names() == list(TOOL_GROUPS["filesystem"]) + list(TOOL_GROUPS["analytics"])
    assert (tmp_path / "fs").is_dir()
    assert all(reg.get(n).blocking for n in reg.names())


def test_build_registry_all_groups_cover_catalog(tmp_path):
    reg = _build(tmp_path, list(TOOL_GROUPS))
    assert sorted(reg.names()) == sorted(catalog())
    for name in reg.names():
        schema = reg.get(name).input_schema
        assert schema["type"] == "object"
        if name != "echo":
            assert schema["additionalProperties"] is False


def test_build_registry_single_names_and_dedup(tmp_path):
    reg = _build(tmp_path, ["describe", "analytics", "echo", "echo"])
    assert reg.names() == ["describe", "text_stats", "echo"]
    assert not (tmp_path / "fs").exists()  # no filesystem tool, no root created


def test_build_registry_unknown(tmp_path):
    with pytest.raises(ValueError, match="frobnicate"):
        _build(tmp_path, ["system", "frobnicate"])
    with pytest.raises(ValueError):
        build_registry(["system"], fs_root=tmp_path, analytics_root=tmp_path, max_bytes=0)


def test_fs_root_created_0755(tmp_path):
    _build(tmp_path, ["read_file"])
    assert (tmp_path / "fs").is_dir()


def test_concurrent_calls(tmp_path):
    reg = _build(tmp_path, ["system", "analytics"])
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(50):
                assert reg.call("echo", {"message": [i, j]}) == {"message": [i, j]}
                assert reg.call("describe", {"values": [i, j]})["count"] == 2
                with pytest.raises(ToolError):
                    reg.call("describe", {"values": "x"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
