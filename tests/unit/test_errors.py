"""agent.errors: the one error vocabulary (pure)."""

from __future__ import annotations

import pickle

from agent import errors as E


def test_every_code_has_an_http_status_and_a_json_rpc_code():
    assert set(E.CODES) == set(E.HTTP_STATUS) == set(E.RPC_CODE)


def test_an_unknown_code_never_raises_and_is_reported_as_internal():
    assert E.ToolError("made_up", "x").code == E.INTERNAL
    assert E.http_status(E.ToolError("timeout", "slow")) == 504


def test_a_peer_error_with_an_unknown_code_is_not_trusted():
    err = E.from_wire("peer", {"code": "evil", "message": "x"})
    assert err.code == E.PROTOCOL_ERROR and err.peer_id == "peer"
    assert E.from_wire("peer", "nope").code == E.PROTOCOL_ERROR
    assert E.from_wire("peer", {"code": "not_found", "message": "gone"}).message == "gone"


def test_errors_survive_pickling_and_clip_long_messages():
    err = pickle.loads(pickle.dumps(E.RemoteError("p", "timeout", "x" * 2000)))
    assert (err.peer_id, err.code, len(err.message)) == ("p", "timeout", E.MAX_MESSAGE_CHARS)


def test_internal_errors_name_an_incident_not_the_exception():
    err = E.internal(ValueError("/secret/path"), "somewhere")
    assert err.code == E.INTERNAL and "/secret/path" not in err.message and err.details["incident"] in err.message
def test_reasons_shown_over_http_carry_no_local_paths():
    from agent.errors import redact_paths

    text = "OSError: [Errno 13] Permission denied: '/var/lib/praxis/key/node.key' under /tmp/praxis-x"
    assert redact_paths(text) == "OSError: [Errno 13] Permission denied: '<path>' under <path>"
    # multiaddrs and URLs stay readable
    assert redact_paths("listen on /ip4/0.0.0.0/tcp/9000 failed") == "listen on /ip4/0.0.0.0/tcp/9000 failed"
    assert redact_paths("see http://127.0.0.1:8000/health") == "see http://127.0.0.1:8000/health"
