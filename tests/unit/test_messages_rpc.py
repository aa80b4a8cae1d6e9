import pytest

from agent.messages import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ProtocolError,
    loads_object,
    parse_rpc_request,
    parse_tool_request,
    parse_tool_response,
    validate_card,
)


def test_loads_object_errors():
    with pytest.raises(ProtocolError) as e:
        loads_object(b"{nope")
    assert e.value.code == PARSE_ERROR
    with pytest.raises(ProtocolError) as e:
        loads_object(b"\xff\xfe")
    assert e.value.code == PARSE_ERROR
    with pytest.raises(ProtocolError) as e:
        loads_object(b"[1]")
    assert e.value.code == INVALID_REQUEST


def test_tool_request_shapes():
    assert parse_tool_request({"id": 1, "tool": "echo", "arguments": {"a": 1}}) == (1, "echo", {"a": 1})
    assert parse_tool_request({"id": "x", "tool": "echo"}) == ("x", "echo", {})
    for bad in ({"tool": "echo"}, {"id": 1}, {"id": 1, "tool": ""}, {"id": 1, "tool": "e", "arguments": []},
                {"id": True, "tool": "e"}, {"id": 1, "tool": "e", "extra": 1}):
        with pytest.raises(ProtocolError):
            parse_tool_request(bad)


def test_tool_response_shapes():
    assert parse_tool_response({"id": 1, "result": 5}) == (1, 5, None)
    assert parse_tool_response({"id": 1, "error": {"code": "x", "message": "m"}}) == (1, None, {"code": "x", "message": "m"})
    with pytest.raises(ProtocolError):
        parse_tool_response({"id": 1})


def test_rpc_request_shapes():
    assert parse_rpc_request({"jsonrpc": "2.0", "id": 3, "method": "ping"}) == (3, "ping", {})
    for bad in ({"id": 1, "method": "x"}, {"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "id": 1, "method": "x", "params": 5}):
        with pytest.raises(ProtocolError) as e:
            parse_rpc_request(bad)
        assert e.value.code == INVALID_REQUEST


def test_card_validation():
    good = {"name": "a", "peer_id": "p", "role": "worker", "tools": [{"name": "echo"}]}
    assert validate_card(good) is good
    for bad in ({"name": "a", "role": "worker"}, {**good, "tools": [{"x": 1}]}, {**good, "tools": "no"}):
        with pytest.raises(ProtocolError):
            validate_card(bad)
