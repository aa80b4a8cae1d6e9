"""Tests for agent.config: substitution, dialects, overrides, errors, shipped files."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from agent.config import Config, ConfigError, load_config
from agent.constants import ALL_PROTOCOLS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["orchestrator.yaml", "worker_filesystem.yaml", "worker_analytics.yaml", "worker.yaml"]
DOCKER_ENV = {"KEYSTORE_PATH": "/var/lib/praxis/key", "KEYSTORE_ROOT": "/keys", "HOSTNAME": "abc123"}
BASE = "agent: {name: a, role: worker}\n"
PSK = "ab" * 32
NOISE_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def write(tmp_path):
    def _write(text: str, name: str = "c.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def load(path, **kw):
    kw.setdefault("environ", {})
    return load_config(path, **kw)


def error(path, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, **kw)
    return info.value


# --- substitution -------------------------------------------------------------


@pytest.mark.parametrize(
    "value, env, expected",
    [
        ("${NAME}", {"NAME": "n1"}, "n1"),
        ("${NAME:-dflt}", {}, "dflt"),
        ("${NAME:-dflt}", {"NAME": ""}, "dflt"),  # shell ':-': empty counts as unset
        ("${NAME:-dflt}", {"NAME": "set"}, "set"),
        ("w-${A}-${B:-b}", {"A": "a"}, "w-a-b"),
        ("${NAME:-worker-${HOST:-local}}", {}, "worker-local"),
        ("${NAME:-worker-${HOST:-local}}", {"HOST": "h1"}, "worker-h1"),
        ("${NAME:-worker-${HOST:-local}}", {"NAME": "x", "HOST": "h1"}, "x"),
        ("a$$b", {}, "a$b"),
        ("$${NAME}", {"NAME": "n"}, "${NAME}"),
        ("cost-$5", {}, "cost-$5"),  # a lone '$' stays
    ],
)
def test_substitution(write, value, env, expected):
    cfg = load(write(f"agent: {{name: a, role: worker, description: '{value}'}}\n"), environ=env)
    assert cfg.agent.description == expected


def test_substitution_value_is_not_re_expanded(write):
    cfg = load(write("agent: {name: a, role: worker, description: '${X}'}\n"), environ={"X": "${Y}"})
    assert cfg.agent.description == "${Y}"


def test_unused_default_with_missing_var_is_fine(write):
    cfg = load(write("agent: {name: '${N:-${MISSING}}', role: worker}\n"), environ={"N": "n"})
    assert cfg.agent.name == "n"


def test_missing_variable_names_key_and_variable(write):
    path = write("agent: {name: a, role: worker}\np2p: {bootstrap_nodes: ['/dns4/${ORCH}/tcp/1']}\n")
    e = error(path)
    assert e.key == "p2p.bootstrap_nodes[0]"
    assert "ORCH" in e.reason
    assert str(e).startswith(f"{path}: p2p.bootstrap_nodes[0]: ")


def test_unterminated_reference(write):
    e = error(write("agent: {name: '${N:-x', role: worker}\n"))
    assert e.key == "agent.name" and "unterminated" in e.reason


def test_substituted_strings_coerce_to_field_types(write):
    cfg = load(
        write(BASE + "p2p: {port: '${P:-9100}', publish_peer_id: '${PUB:-false}'}\n"),
        environ={},
    )
    assert cfg.p2p.port == 9100 and cfg.p2p.publish_peer_id is False


def test_empty_optional_means_none(write):
    cfg = load(
        write(
            BASE
            + "p2p: {keystore_root: '${R:-}', rendezvous: '', security: {psk: '${PSK:-}'}}\n"
            + "api: {token: '${T:-}'}\n"
        )
    )
    assert cfg.p2p.keystore_root is None
    assert cfg.p2p.rendezvous is None
    assert cfg.p2p.security.psk is None
    assert cfg.api.token is None


# --- dialects -----------------------------------------------------------------

PLAIN = """
agent: {name: a, role: worker}
p2p:
  peer_discovery: false
  max_peers: 7
  security:
    use_noise: false
    accept_tasks_from: [orchestrator]
    allowed_peer_types: [orchestrator, worker]
"""

SEED_DIALECT = """
agent: {name: a, role: worker}
p2p:
  enable_mdns: false
  security:
    enabled: true
    noise_enabled: false
    max_peer_connections: 7
    accept_tasks_from: [orchestrator]
    allowed_peer_types: [orchestrator, worker]
"""


def test_both_dialects_give_the_same_model(write):
    a = load(write(PLAIN, "a.yaml"))
    b = load(write(SEED_DIALECT, "b.yaml"))
    assert a == b
    assert b.p2p.peer_discovery is False
    assert b.p2p.max_peers == 7
    assert b.p2p.security.use_noise is False


@pytest.mark.parametrize("enabled, noise_enabled, expected", [
    (True, True, True), (False, True, False), (True, False, False), (False, False, False)
])
def test_seed_security_switches(write, enabled, noise_enabled, expected):
    text = BASE + f"p2p: {{security: {{enabled: {enabled}, noise_enabled: {noise_enabled}}}}}\n"
    assert load(write(text.lower())).p2p.security.use_noise is expected


def test_seed_dialect_validates_via_model_directly():
    cfg = Config.model_validate(
        {"agent": {"name": "a", "role": "worker"}, "p2p": {"enable_mdns": False}}
    )
    assert cfg.p2p.peer_discovery is False


@pytest.mark.parametrize(
    "p2p, key, other",
    [
        ("{enable_mdns: true, peer_discovery: false}", "p2p.enable_mdns", "p2p.peer_discovery"),
        ("{security: {enabled: true, use_noise: true}}", "p2p.security.enabled", "p2p.security.use_noise"),
        ("{security: {noise_enabled: true, use_noise: true}}", "p2p.security.noise_enabled", "p2p.security.use_noise"),
        ("{max_peers: 3, security: {max_peer_connections: 3}}", "p2p.security.max_peer_connections", "p2p.max_peers"),
    ],
)
def test_conflicting_dialect_keys(write, p2p, key, other):
    e = error(write(BASE + f"p2p: {p2p}\n"))
    assert e.key == key
    assert other in e.reason


def test_seed_monitoring_block_maps_to_metrics(write):
    cfg = load(
        write(BASE + "metrics_enabled: false\nmonitoring: {enabled: false, metrics: {enabled: false, port: 9091}}\n")
    )
    assert cfg.metrics.enabled is False
    assert cfg.metrics.port == 9091
    assert "monitoring" not in cfg.summary()


def test_metrics_spellings_must_agree(write):
    e = error(write(BASE + "metrics_enabled: true\nmonitoring: {enabled: false}\n"))
    assert e.key == "monitoring.enabled"


# --- error paths: one line, file + key + reason --------------------------------


@pytest.mark.parametrize(
    "body, key, reason",
    [
        ("p2p: {max_peer: 3}", "p2p.max_peer", "unknown key (did you mean 'max_peers'?)"),
        ("p2pp: {}", "p2pp", "unknown key (did you mean 'p2p'?)"),
        ("p2p: {security: {use_nois: true}}", "p2p.security.use_nois", "did you mean 'use_noise'"),
        ("p2p: {port: abc}", "p2p.port", "must be an integer (got 'abc')"),
        ("p2p: {enabled: maybe}", "p2p.enabled", "must be true or false (got 'maybe')"),
        ("p2p: {port: 70000}", "p2p.port", "must be between 0 and 65535 (got 70000)"),
        ("api: {port: -1}", "api.port", "must be between 0 and 65535 (got -1)"),
        ("p2p: {max_peers: 0}", "p2p.max_peers", "must be at least 1 (got 0)"),
        ("p2p: {connection_timeout: 0}", "p2p.connection_timeout", "greater than 0"),
        ("p2p: {max_message_size: 10}", "p2p.max_message_size", "between 1024 and 67108864"),
        ("p2p: {host: localhost}", "p2p.host", "must be an IP address"),
        ("p2p: {mdns_interfaces: [127.0.0.1, eth0]}", "p2p.mdns_interfaces[1]", "IP address"),
        ("p2p: {bootstrap_nodes: ['/dns4/o/tcp/9000', 'nonsense']}", "p2p.bootstrap_nodes[1]", "not a valid multiaddr"),
        ("p2p: {bootstrap_nodes: ['/ip4/1.2.3.4/udp/9000']}", "p2p.bootstrap_nodes[0]", "must look like"),
        ("p2p: {bootstrap_nodes: ['/ip4/1.2.3.4/tcp/0']}", "p2p.bootstrap_nodes[0]", "port 0"),
        ("p2p: {announce_addresses: ['/ip4/1.2.3.4/tcp/1', '/ip9/x']}", "p2p.announce_addresses[1]", "not a valid multiaddr"),
        ("p2p: {protocols: [/praxis/card/1.0.0, /x/1]}", "p2p.protocols[1]", "unknown protocol '/x/1'"),
        ("p2p: {protocols: [/praxis/tool/1.0.0]}", "p2p.protocols", "must include /praxis/card/1.0.0"),
        ("p2p: {security: {psk: abc}}", "p2p.security.psk", "64 hex characters"),
        (f"p2p: {{security: {{psk: '{'g' * 64}'}}}}", "p2p.security.psk", "64 hex characters"),
        ("p2p: {security: {noise_key: 'AAAA'}}", "p2p.security.noise_key", "exactly 32 bytes"),
        ("p2p: {security: {noise_key: 'not base64!'}}", "p2p.security.noise_key", "base64"),
        ("p2p: {security: {accept_tasks_from: [boss]}}", "p2p.security.accept_tasks_from[0]", "'orchestrator' or 'worker'"),
        ("api: {token: short}", "api.token", "at least 16 characters"),
        ("api: {port: 9000}", "api.port", "must differ from p2p.port"),
        ("logging: {level: verbose}", "logging.level", "must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("tools: {call_timeout: -2}", "tools.call_timeout", "greater than 0"),
    ],
)
def test_error_messages(write, body, key, reason):
    path = write(BASE + body + "\n")
    e = error(path)
    assert e.file == str(path)
    assert e.key == key
    assert reason in e.reason
    assert str(e) == f"{path}: {key}: {e.reason}"
    assert "\n" not in str(e)


def test_errors_never_quote_a_secret_value(write):
    # Unquoted in YAML these are numbers, not strings: the error must still not show them.
    token, psk, noise = "12345678901234567890", "9" * 64, "123456789012345"
    e = error(write(BASE + f"api: {{token: {token}}}\np2p: {{security: {{psk: {psk}, noise_key: {noise}}}}}\n"))
    problems = dict(e.problems)
    assert set(problems) == {"api.token", "p2p.security.psk", "p2p.security.noise_key"}
    assert all("must be a string" in r for r in problems.values())
    for value in (token, psk[:40], noise):
        assert value not in str(e.problems)


@pytest.mark.parametrize(
    "agent, key, reason",
    [
        ("{name: a, role: worker, tools: [system, nope]}", "agent.tools[1]", "unknown tool or tool group 'nope'"),
        ("{name: a, role: boss}", "agent.role", "must be 'orchestrator' or 'worker' (got 'boss')"),
        ("{name: 'a b', role: worker}", "agent.name", "letters, digits"),
        (f"{{name: {'x' * 65}, role: worker}}", "agent.name", "1-64"),
        ("{role: worker}", "agent.name", "required key is missing"),
    ],
)
def test_agent_errors(write, agent, key, reason):
    e = error(write(f"agent: {agent}\n"))
    assert e.key == key and reason in e.reason


def test_unknown_tool_lists_known_ones(write):
    e = error(write("agent: {name: a, role: worker, tools: [nope]}\n"))
    for name in ("system", "filesystem", "analytics", "echo", "read_file", "describe"):
        assert name in e.reason


def test_missing_agent_section(write):
    e = error(write("p2p: {}\n"))
    assert e.key == "agent" and e.reason == "required key is missing"


def test_all_problems_are_kept(write):
    e = error(write(BASE + "p2p: {port: 70000, max_peers: 0}\n"))
    assert [k for k, _ in e.problems] == ["p2p.port", "p2p.max_peers"]


def test_missing_file(tmp_path):
    path = tmp_path / "none.yaml"
    e = error(path)
    assert e.file == str(path) and "not found" in str(e)


def test_invalid_yaml_names_line(write):
    path = write(BASE + "p2p:\n  port: 1\n port: 2\n")
    e = error(path)
    assert str(e).startswith(f"{path}: invalid YAML at line 4")


def test_duplicate_yaml_key_is_an_error(write):
    e = error(write(BASE + "p2p:\n  port: 1\n  port: 2\n"))
    assert "duplicate key 'port'" in e.reason and "line 4" in e.reason


def test_top_level_must_be_mapping(write):
    assert "mapping" in error(write("- a\n")).reason


# --- values and defaults ---------------------------------------------------------


def test_defaults(write):
    cfg = load(write(BASE))
    assert cfg.p2p.port == 9000 and cfg.api.port == 8000
    assert cfg.p2p.protocols == list(ALL_PROTOCOLS)
    assert cfg.p2p.security.use_noise is True
    assert cfg.p2p.effective_keystore_root == Path("./keys")
    assert cfg.tools.analytics.root == cfg.tools.filesystem.root == Path("./data")
    assert cfg.metrics.enabled is True
    assert cfg.logging.level == "INFO"


def test_normalisation_and_secrets(write):
    cfg = load(
        write(
            BASE
            + f"p2p: {{keystore_root: /keys, security: {{psk: '{PSK.upper()}', noise_key: '{NOISE_KEY}'}}}}\n"
            + "logging: {level: debug}\n"
            + "api: {token: 0123456789abcdef}\n"
        )
    )
    assert cfg.logging.level == "DEBUG"
    assert cfg.p2p.security.psk == PSK
    assert cfg.p2p.security.psk_bytes == bytes.fromhex(PSK)
    assert cfg.p2p.security.noise_key_bytes == bytes(range(32))
    assert cfg.p2p.effective_keystore_root == Path("/keys")
    for secret in (PSK, NOISE_KEY, "0123456789abcdef"):
        assert secret not in repr(cfg)
    summary = cfg.summary()
    json.dumps(summary)
    assert summary["api"]["token"] == "***"
    assert summary["p2p"]["security"]["psk"] == "***"
    assert summary["p2p"]["security"]["noise_key"] == "***"
    assert summary["p2p"]["keystore_root"] == "/keys"
    for secret in (PSK, NOISE_KEY, "0123456789abcdef"):
        assert secret not in json.dumps(summary)


def test_summary_leaves_unset_secrets_null(write):
    summary = load(write(BASE)).summary()
    assert summary["api"]["token"] is None
    assert summary["p2p"]["security"]["psk"] is None


def test_tool_names_expand_groups(write):
    cfg = load(write("agent: {name: a, role: worker, tools: [system, echo, analytics]}\n"))
    assert cfg.agent.tool_names() == ["echo", "sleep", "describe", "text_stats"]


def test_bootstrap_with_peer_id_is_accepted(write):
    addr = "/ip4/10.0.0.1/tcp/9000/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    cfg = load(write(BASE + f"p2p: {{bootstrap_nodes: ['{addr}', '/dns/o/tcp/1', '/ip6/::1/tcp/2']}}\n"))
    assert cfg.p2p.bootstrap_nodes[0] == addr


# --- overrides -----------------------------------------------------------------------


def test_env_overrides(write):
    env = {
        "PRAXIS__P2P__PORT": "9100",
        "PRAXIS__p2p__Security__Accept_Tasks_From": "[orchestrator, worker]",
        "PRAXIS__LOGGING__LEVEL": "warning",
        "PRAXIS__API__TOKEN": "",
        "PRAXIS_AGENT_NAME": "not-an-override",
    }
    cfg = load(write(BASE + "api: {token: 0123456789abcdef}\n"), environ=env)
    assert cfg.p2p.port == 9100
    assert cfg.p2p.security.accept_tasks_from == ["orchestrator", "worker"]
    assert cfg.logging.level == "WARNING"
    assert cfg.api.token is None


def test_explicit_overrides_win_over_env(write):
    cfg = load(
        write(BASE),
        environ={"PRAXIS__P2P__PORT": "9100"},
        overrides=["p2p.port=9200", "p2p.mdns_interfaces=[127.0.0.1]", "agent.description=hi there"],
    )
    assert cfg.p2p.port == 9200
    assert cfg.p2p.mdns_interfaces == ["127.0.0.1"]
    assert cfg.agent.description == "hi there"


def test_override_values_are_substituted(write):
    cfg = load(write(BASE), overrides=["agent.name=n-${X:-y}"], environ={})
    assert cfg.agent.name == "n-y"


def test_override_replaces_other_dialect_spelling(write):
    cfg = load(write(SEED_DIALECT), overrides=["p2p.peer_discovery=true", "p2p.max_peers=9"])
    assert cfg.p2p.peer_discovery is True and cfg.p2p.max_peers == 9
    cfg = load(write(SEED_DIALECT), environ={"PRAXIS__P2P__SECURITY__USE_NOISE": "true"})
    assert cfg.p2p.security.use_noise is True


def test_bad_override_value_names_its_source(write):
    e = error(write(BASE), environ={"PRAXIS__P2P__PORT": "70000"})
    assert e.key == "p2p.port" and "PRAXIS__P2P__PORT" in e.reason
    e = error(write(BASE), environ={"PRAXIS__P2P__MAX_PEER": "3"})
    assert e.key == "p2p.max_peer" and "did you mean 'max_peers'" in e.reason


@pytest.mark.parametrize("item", ["p2p.port", "=3", "p2p..port=3"])
def test_malformed_override(write, item):
    with pytest.raises(ConfigError):
        load(write(BASE), overrides=[item])


def test_override_into_scalar_is_an_error(write):
    e = error(write(BASE), overrides=["p2p.port.x=1"])
    assert e.key == "p2p.port"


# --- shipped configs -------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("env", [{}, DOCKER_ENV], ids=["empty-env", "docker-env"])
def test_shipped_configs_load(name, env):
    cfg = load_config(REPO / "configs" / name, environ=env)
    assert cfg.p2p.security.use_noise is True
    assert cfg.p2p.security.psk is None and cfg.api.token is None
    assert "system" in cfg.agent.tools
    if env:
        assert cfg.p2p.keystore_path == Path("/var/lib/praxis/key")
        assert cfg.p2p.effective_keystore_root == Path("/keys")
    else:
        assert cfg.p2p.keystore_root is None
        assert str(cfg.p2p.keystore_path).startswith("keys/")


def test_shipped_specifics():
    cfgs = {n: load_config(REPO / "configs" / n, environ={}) for n in SHIPPED}
    orch = cfgs["orchestrator.yaml"]
    assert orch.agent.role == "orchestrator" and orch.p2p.bootstrap_nodes == []
    fs = cfgs["worker_filesystem.yaml"]
    assert fs.agent.tool_names()[:3] == ["echo", "sleep", "read_file"]
    assert fs.p2p.bootstrap_nodes == ["/dns4/orchestrator/tcp/9000"]
    assert fs.p2p.security.accept_tasks_from == ["orchestrator"]
    ana = cfgs["worker_analytics.yaml"]
    assert ana.p2p.port == 4003 and ana.p2p.connection_timeout == 60
    assert ana.p2p.rendezvous == "praxis-agents-production"
    assert ana.p2p.protocol_version == "0.3.0" and ana.p2p.enable_dht is True
    assert ana.p2p.security.allowed_peer_types == ["orchestrator", "worker"]
    assert cfgs["worker.yaml"].agent.name == "worker-local"
    assert load_config(REPO / "configs" / "worker.yaml", environ=DOCKER_ENV).agent.name == "worker-abc123"


def test_shipped_configs_take_docker_env():
    env = {
        "PRAXIS_AGENT_NAME": "w7",
        "ORCHESTRATOR_HOST": "orch",
        "ORCHESTRATOR_P2P_PORT": "9100",
        "PRAXIS_PSK": PSK,
        "PRAXIS_API_TOKEN": "t" * 20,
        "PUBLISH_PEER_ID": "false",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "DATA_ROOT": "/data",
    }
    cfg = load_config(REPO / "configs" / "worker.yaml", environ=env)
    assert cfg.agent.name == "w7"
    assert cfg.p2p.bootstrap_nodes == ["/dns4/orch/tcp/9100"]
    assert cfg.p2p.security.psk == PSK and cfg.api.token == "t" * 20
    assert cfg.p2p.publish_peer_id is False
    assert (cfg.logging.level, cfg.logging.format) == ("DEBUG", "json")
    assert cfg.tools.analytics.root == Path("/data")


# --- no side effects ---------------------------------------------------------------------


def test_loading_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "p2p: {keystore_path: ./keys/x, keystore_root: ./ks}\ntools: {filesystem: {root: ./fs}}\n")
    before = sorted(os.listdir(tmp_path))
    load(path)
    for name in SHIPPED:
        load_config(REPO / "configs" / name, environ=DOCKER_ENV)
    assert sorted(os.listdir(tmp_path)) == before == ["c.yaml"]
