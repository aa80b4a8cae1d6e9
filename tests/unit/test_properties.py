"""Property tests (hypothesis): the pure protocol pieces and the tools' argument
handling either do their job or fail with the one error the caller is promised.

Bounded in time: each property runs a fixed number of examples (PRAXIS_FUZZ_EXAMPLES
raises it for a longer local run) with no deadline, so a busy CI machine cannot
make them flaky.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from agent import messages
from agent.execution import ToolExecutor
from agent.config import ConfigError, load_config
from agent.errors import CODES, PraxisError
from agent.framing import FrameDecoder, FrameError, encode_frame
from agent.tools import build_registry

EXAMPLES = int(os.environ.get("PRAXIS_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# JSON values, nested a few levels deep.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


# --- framing --------------------------------------------------------------------------


@SETTINGS
@given(payloads=st.lists(st.binary(max_size=300), max_size=8), cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_frames_survive_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(p, limit=1024) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder(max_size=1024)
    got: list[bytes] = []
    for a, b in zip(points, points[1:]):
        got += dec.feed(stream[a:b])
    assert got == payloads
    assert dec.buffered == 0


@SETTINGS
@given(noise=st.binary(max_size=2000), limit=st.integers(1, 4096))
def test_decoder_on_garbage_yields_frames_within_limit_or_frame_error(noise: bytes, limit: int) -> None:
    dec = FrameDecoder(max_size=limit)
    try:
        frames = dec.feed(noise)
    except FrameError:
        return
    assert all(len(f) <= limit for f in frames)
    assert dec.buffered <= len(noise)


# --- messages -------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_loads_object_returns_a_dict_or_protocol_error(data: bytes) -> None:
    try:
        obj = messages.loads_object(data)
    except messages.ProtocolError as e:
        assert e.code in (messages.PARSE_ERROR, messages.INVALID_REQUEST)
        return
    assert isinstance(obj, dict)


@SETTINGS
@given(obj=json_objects | st.fixed_dictionaries({"id": json_values, "tool": json_values, "arguments": json_values}))
def test_parse_tool_request_accepts_only_well_formed_requests(obj: dict) -> None:
    try:
        rid, tool, args = messages.parse_tool_request(obj)
    except messages.ProtocolError as e:
        assert e.code == messages.INVALID_REQUEST
        return
    assert isinstance(rid, (str, int)) and not isinstance(rid, bool)
    assert isinstance(tool, str) and tool
    assert isinstance(args, dict)


@SETTINGS
@given(
    obj=json_objects
    | st.fixed_dictionaries({"jsonrpc": st.just("2.0") | json_values, "id": json_values, "method": json_values, "params": json_values})
)
def test_parse_rpc_request_accepts_only_json_rpc_2(obj: dict) -> None:
    try:
        rid, method, params = messages.parse_rpc_request(obj)
    except messages.ProtocolError as e:
        assert e.code == messages.INVALID_REQUEST
        return
    assert obj["jsonrpc"] == "2.0"
    assert isinstance(method, str) and method
    assert isinstance(params, (dict, list))


@SETTINGS
@given(obj=json_objects)
def test_parse_tool_response_never_raises_anything_else(obj: dict) -> None:
    try:
        messages.parse_tool_response(obj)
    except messages.ProtocolError:
        pass


@SETTINGS
@given(obj=json_objects)
def test_validate_card_never_raises_anything_else(obj: dict) -> None:
    try:
        card = messages.validate_card(obj)
    except messages.ProtocolError:
        return
    assert isinstance(card.get("peer_id"), str)


# --- config ---------------------------------------------------------------------------

CONFIG_KEYS = [
    "agent.name",
    "agent.role",
    "p2p.port",
    "p2p.max_message_size",
    "p2p.bootstrap_peers",
    "p2p.mdns.enabled",
    "api.port",
    "api.host",
    "api.token",
    "tools.call_timeout",
    "tools.enabled",
    "logging.level",
]
yaml_values = st.sampled_from(
    ["0", "-1", "65536", "1e400", "nan", "''", "null", "true", "[]", "{}", "[1, 2]", "x" * 300, "'a b'", "/ip4/1.2.3.4/tcp/1"]
) | st.text(max_size=30)


@SETTINGS
@given(overrides=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), yaml_values), max_size=4))
def test_config_loads_or_says_which_key_is_wrong(overrides: list[tuple[str, str]]) -> None:
    path = Path(__file__).resolve().parents[2] / "configs" / "worker.yaml"
    sets = [f"{k}={v}" for k, v in overrides]
    try:
        cfg = load_config(path, overrides=sets, environ={})
    except ConfigError as e:
        assert str(e)  # names the file/key and the reason
        return
    assert 0 <= cfg.api.port <= 65535
    assert cfg.tools.call_timeout > 0


# --- tools: argument handling -----------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fuzz-root")
    (root / "data.csv").write_text("a,b\n1,2\n3,4\n")
    (root / "notes.txt").write_text("hello\nworld\n")
    reg = build_registry(["system", "filesystem", "analytics"], fs_root=root, analytics_root=root, max_bytes=64 * 1024)
    # The one local execution path every transport uses (validation, timeout,
    # result check), not the bare registry.
    return ToolExecutor(reg, timeout=10.0), str(root)


paths = st.sampled_from(["data.csv", "notes.txt", ".", "..", "../etc/passwd", "/etc/passwd", "a/../../b", "x" * 300, "\x00", "é"]) | st.text(max_size=20)
numbers = st.integers() | st.floats() | st.sampled_from([10**400, -(10**400), 1e308, -1e308, math.inf, -math.inf])
arguments = st.fixed_dictionaries(
    {},
    optional={
        "path": paths | json_values,
        "content": st.text(max_size=100) | json_values,
        "values": st.lists(numbers, max_size=30) | json_values,
        "text": st.text(max_size=200) | json_values,
        "encoding": st.sampled_from(["utf-8", "base64", "latin-1", "nope"]) | json_values,
        "message": json_values,
        "overwrite": json_values,
    },
)


@SETTINGS
# The defects issue 8 found, always tried first.
@example(name="describe", args={"values": [1e308, -1e308]})
@example(name="describe", args={"values": [10**400]})
@example(name="write_file", args={"path": "latin1-\udce9.txt", "content": "x"})
@example(name="write_file", args={"path": "n" * 256, "content": "x"})
@given(name=st.sampled_from(["echo", "sleep", "read_file", "write_file", "list_directory", "file_info", "describe", "text_stats", "nope"]), args=arguments)
def test_tools_answer_json_or_a_vocabulary_error(registry, name: str, args: dict) -> None:
    executor, root = registry
    try:
        result = anyio.run(executor.run, name, args)
    except PraxisError as e:
        assert e.code in CODES
        assert "Traceback" not in e.message
        assert root not in e.message  # no local paths in answers
        return
    # Whatever a tool returns must travel as strict JSON (no NaN/Infinity).
    try:
        json.dumps(result, allow_nan=False)
    except ValueError as e:
        raise AssertionError(f"{name}({args!r}) answered {result!r}: {e}") from None
