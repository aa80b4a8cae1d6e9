"""The agent's one configuration object and its YAML loader.

``load_config(path)`` reads a YAML file, applies ``PRAXIS__SECTION__KEY``
environment overrides and ``--set``-style overrides, substitutes ``${VAR}`` /
``${VAR:-default}`` in string values, then validates into :class:`Config`.
Every failure is a :class:`ConfigError` whose ``str()`` is one line::

    configs/x.yaml: p2p.port: must be between 0 and 65535 (got 70000)

Two spellings of the P2P section are accepted, both from the original system:
the plain one (``peer_discovery``, ``security.use_noise``, ``max_peers``) and
the analytics worker's (``enable_mdns``, ``security.enabled`` +
``security.noise_enabled``, ``security.max_peer_connections``). They map onto
the same fields; a file may not use both spellings for one setting.

Relative paths are kept relative (to the working directory, as in the seed).
Loading never touches the disk beyond reading the file.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import math
import os
import re
import types
import typing
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from multiaddr import Multiaddr
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .constants import (
    ALL_PROTOCOLS,
    CARD_PROTOCOL,
    DEFAULT_API_PORT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MDNS_SERVICE,
    DEFAULT_P2P_PORT,
    ROLES,
    TOOL_GROUPS,
)

__all__ = [
    "ENV_PREFIX",
    "AgentSection",
    "AnalyticsToolConfig",
    "ApiConfig",
    "Config",
    "ConfigError",
    "FilesystemToolConfig",
    "LoggingConfig",
    "MetricsConfig",
    "P2PConfig",
    "SecurityConfig",
    "ToolsConfig",
    "load_config",
]

ENV_PREFIX = "PRAXIS__"
_MASK = "***"

Role = Literal["orchestrator", "worker"]
assert set(typing.get_args(Role)) == set(ROLES)


# --- errors ------------------------------------------------------------------


class ConfigError(Exception):
    """A configuration problem: ``file``, dotted ``key`` (``a.b[2]``), ``reason``.

    ``problems`` lists every (key, reason) found; ``str()`` shows the first.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        key: str | None = None,
        problems: list[tuple[str | None, str]] | None = None,
    ) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        self.problems = problems if problems is not None else [(key, reason)]
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(p for p in (self.file, self.key, self.reason) if p)


class _KeyedValueError(ValueError):
    """A ValueError from a model validator that knows the key below the model."""

    def __init__(self, subkey: str, reason: str) -> None:
        super().__init__(reason)
        self.subkey = subkey


# --- reusable field types -----------------------------------------------------


def _blank_to_none(v: Any) -> Any:
    # `${VAR:-}` yields "" and means "not set".
    return None if isinstance(v, str) and not v.strip() else v


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Mapping):
        return "a mapping"
    if isinstance(v, (list, tuple)):
        return "a list"
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _between(lo: int, hi: int):
    def check(v: int | None) -> int | None:
        if v is not None and not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi} (got {v})")
        return v

    return AfterValidator(check)


def _at_least(lo: int):
    def check(v: int) -> int:
        if v < lo:
            raise ValueError(f"must be at least {lo} (got {v})")
        return v

    return AfterValidator(check)


def _positive_seconds(v: float) -> float:
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"must be a number of seconds greater than 0 (got {_describe(v)})")
    return v


def _ip(v: str) -> str:
    try:
        return str(ipaddress.ip_address(v.strip()))
    except ValueError:
        raise ValueError(f"must be an IP address (got {_describe(v)})") from None


def _non_empty_path(v: Any) -> Any:
    if isinstance(v, str) and not v.strip():
        raise ValueError("must not be empty")
    return v


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else v


Port = Annotated[int, _between(0, 65535)]
OptPort = Annotated[Union[int, None], BeforeValidator(_blank_to_none), _between(0, 65535)]
Seconds = Annotated[float, AfterValidator(_positive_seconds)]
IPAddress = Annotated[str, AfterValidator(_ip)]
OptStr = Annotated[Union[str, None], BeforeValidator(_blank_to_none)]
OptPath = Annotated[Union[Path, None], BeforeValidator(_blank_to_none)]
ReqPath = Annotated[Path, BeforeValidator(_non_empty_path)]

_BOOL = TypeAdapter(bool)


def _as_bool(value: Any, key: str) -> bool:
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        raise _KeyedValueError(key, f"must be true or false (got {_describe(value)})") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Extra spellings a model accepts (the seed's second dialect); used only to
    # suggest names for unknown keys.
    _compat_keys: ClassVar[tuple[str, ...]] = ()


# --- agent --------------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ALL_TOOLS = {name for names in TOOL_GROUPS.values() for name in names}


def _check_name(v: str) -> str:
    if not _NAME_RE.fullmatch(v):
        raise ValueError(
            f"must be 1-64 characters of letters, digits, '.', '_' or '-' (got {_describe(v)})"
        )
    return v


def _check_tool(v: str) -> str:
    if v not in TOOL_GROUPS and v not in _ALL_TOOLS:
        raise ValueError(
            f"unknown tool or tool group {v!r} (groups: {', '.join(TOOL_GROUPS)}; "
            f"tools: {', '.join(sorted(_ALL_TOOLS))})"
        )
    return v


class AgentSection(_Model):
    """Who this node is."""

    name: Annotated[str, AfterValidator(_check_name)]
    role: Role
    description: str = ""
    version: str = "0.1.0"
    tools: list[Annotated[str, AfterValidator(_check_tool)]] = Field(
        default_factory=list, description="tool group names (constants.TOOL_GROUPS) or tool names"
    )

    def tool_names(self) -> list[str]:
        """``tools`` with groups expanded, in order, without duplicates."""
        out: list[str] = []
        for item in self.tools:
            for name in TOOL_GROUPS.get(item, (item,)):
                if name not in out:
                    out.append(name)
        return out


# --- p2p ----------------------------------------------------------------------


def _check_noise_key(v: str | None) -> str | None:
    if v is None:
        return None
    v = v.strip()
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 (of a 32-byte X25519 private key)") from None
    if len(raw) != 32:
        raise ValueError(f"must decode to exactly 32 bytes (got {len(raw)})")
    return v


def _check_psk(v: str | None) -> str | None:
    if v is None:
        return None
    v = v.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", v):
        raise ValueError(f"must be 64 hex characters (a 32-byte key; got {len(v)} characters)")
    return v


class SecurityConfig(_Model):
    """Transport security and who may talk to us."""

    _compat_keys: ClassVar[tuple[str, ...]] = ("enabled", "noise_enabled", "max_peer_connections")

    use_noise: bool = True
    noise_key: Annotated[OptStr, AfterValidator(_check_noise_key)] = Field(
        default=None,
        repr=False,
        description="base64 of a 32-byte X25519 static private key for Noise; None = generated",
    )
    psk: Annotated[OptStr, AfterValidator(_check_psk)] = Field(
        default=None, repr=False, description="64 hex chars: 32-byte private-network key"
    )
    accept_tasks_from: Union[list[Role], None] = Field(
        default=None, description="roles whose tasks we run; None = any authenticated peer"
    )
    allowed_peer_types: Union[list[Role], None] = None

    @property
    def noise_key_bytes(self) -> bytes | None:
        return base64.b64decode(self.noise_key) if self.noise_key else None

    @property
    def psk_bytes(self) -> bytes | None:
        return bytes.fromhex(self.psk) if self.psk else None


_BOOTSTRAP_HOSTS = ("ip4", "ip6", "dns", "dns4", "dns6")
_BOOTSTRAP_SHAPE = "/ip4|/ip6|/dns|/dns4|/dns6/<host>/tcp/<port>[/p2p/<peer-id>]"


def _parse_multiaddr(v: str) -> Multiaddr:
    try:
        return Multiaddr(v)
    except Exception as e:  # multiaddr raises several unrelated types
        # Drop the library's "Invalid MultiAddr '<v>': ... (string: <v>)" framing.
        detail = re.sub(r"^Invalid MultiAddr '.*?': ", "", str(e).split(" (string:")[0])
        raise ValueError(f"not a valid multiaddr ({detail}): {v!r}") from None


def _check_multiaddr(v: str) -> str:
    _parse_multiaddr(v)
    return v


def _check_bootstrap(v: str) -> str:
    addr = _parse_multiaddr(v)
    items = list(addr.items())
    names = [proto.name for proto, _ in items]
    ok = (
        len(names) in (2, 3)
        and names[0] in _BOOTSTRAP_HOSTS
        and names[1] == "tcp"
        and (len(names) == 2 or names[2] == "p2p")
    )
    if not ok:
        raise ValueError(f"must look like {_BOOTSTRAP_SHAPE} (got {v!r})")
    if int(items[1][1]) == 0:
        raise ValueError(f"tcp port 0 cannot be dialled (got {v!r})")
    return v


def _check_protocols(v: list[str]) -> list[str]:
    for i, proto in enumerate(v):
        if proto not in ALL_PROTOCOLS:
            raise _KeyedValueError(
                f"[{i}]", f"unknown protocol {proto!r} (known: {', '.join(ALL_PROTOCOLS)})"
            )
    if CARD_PROTOCOL not in v:
        raise ValueError(f"must include {CARD_PROTOCOL} (peers exchange cards first)")
    return list(dict.fromkeys(v))


class P2PConfig(_Model):
    """libp2p host, discovery and security settings."""

    _compat_keys: ClassVar[tuple[str, ...]] = ("enable_mdns",)

    enabled: bool = True
    port: Port = Field(default=DEFAULT_P2P_PORT, description="TCP port; 0 = ephemeral")
    host: IPAddress = "0.0.0.0"
    keystore_path: ReqPath = Path("./keys/node")
    keystore_root: OptPath = Field(
        default=None,
        description="directory of other agents' peer.id files; None = parent of keystore_path",
    )
    identity_secret_file: OptPath = Field(
        default=None,
        description="file with a cluster secret; set = seed is HMAC(secret, agent.name) "
        "instead of keystore_path/node.key (per task slot / per pod identities)",
    )
    publish_peer_id: bool = True
    peer_discovery: bool = Field(default=True, description="mDNS discovery")
    mdns_service: str = DEFAULT_MDNS_SERVICE
    mdns_interfaces: Annotated[
        Union[list[IPAddress], None], BeforeValidator(_blank_to_none)
    ] = Field(default=None, description="IP addresses zeroconf binds to; None = all interfaces")
    connection_timeout: Seconds = 30.0
    max_peers: Annotated[int, _at_least(1)] = 50
    protocols: Annotated[list[str], AfterValidator(_check_protocols)] = Field(
        default_factory=lambda: list(ALL_PROTOCOLS)
    )
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    bootstrap_nodes: list[Annotated[str, AfterValidator(_check_bootstrap)]] = Field(
        default_factory=list
    )
    announce_addresses: list[Annotated[str, AfterValidator(_check_multiaddr)]] = Field(
        default_factory=list
    )
    discovery_interval: Seconds = Field(
        default=30.0,
        description="max backoff between bootstrap rounds; mDNS re-announce period",
    )
    ping_interval: Seconds = Field(default=2.0, description="liveness ping period")
    max_message_size: Annotated[int, _between(1024, 64 * 1024 * 1024)] = DEFAULT_MAX_MESSAGE_SIZE
    # The seed analytics dialect's extras: stored; DHT and relay are not provided.
    rendezvous: OptStr = None
    enable_dht: bool = False
    enable_relay: bool = False
    protocol_version: OptStr = None

    @property
    def effective_keystore_root(self) -> Path:
        return self.keystore_root if self.keystore_root is not None else self.keystore_path.parent

    @model_validator(mode="before")
    @classmethod
    def _seed_dialect(cls, data: Any) -> Any:
        """Map the analytics worker's spelling onto ours (see module docstring)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "enable_mdns" in data:
            if "peer_discovery" in data:
                raise _conflict("enable_mdns", "peer_discovery")
            data["peer_discovery"] = data.pop("enable_mdns")
        sec = data.get("security")
        if isinstance(sec, Mapping):
            sec = data["security"] = dict(sec)
            if "max_peer_connections" in sec:
                if "max_peers" in data:
                    raise _conflict("security.max_peer_connections", "max_peers")
                data["max_peers"] = sec.pop("max_peer_connections")
            flags = [k for k in ("enabled", "noise_enabled") if k in sec]
            if flags:
                if "use_noise" in sec:
                    raise _conflict(f"security.{flags[0]}", "security.use_noise")
                # Either switch off means no Noise.
                switches = [_as_bool(sec.pop(k), f"security.{k}") for k in flags]
                sec["use_noise"] = all(switches)
        return data


def _conflict(key: str, other: str) -> _KeyedValueError:
    # P2PConfig only ever sits at Config.p2p, hence the fixed prefix.
    return _KeyedValueError(key, f"sets the same thing as p2p.{other}; give only one of them")


# --- api, tools, logging, metrics ----------------------------------------------


def _check_token(v: str | None) -> str | None:
    if v is not None and len(v) < 16:
        raise ValueError(f"must be at least 16 characters (got {len(v)})")
    return v


class ApiConfig(_Model):
    """HTTP API (and /metrics) listener."""

    host: IPAddress = "0.0.0.0"
    port: Port = DEFAULT_API_PORT
    token: Annotated[OptStr, AfterValidator(_check_token)] = Field(
        default=None, repr=False, description="bearer token; None = no auth"
    )


class FilesystemToolConfig(_Model):
    root: ReqPath = Path("./data")


class AnalyticsToolConfig(_Model):
    root: OptPath = Field(default=None, description="None = tools.filesystem.root")


class ToolsConfig(_Model):
    filesystem: FilesystemToolConfig = Field(default_factory=FilesystemToolConfig)
    analytics: AnalyticsToolConfig = Field(default_factory=AnalyticsToolConfig)
    call_timeout: Seconds = 30.0

    @model_validator(mode="after")
    def _default_analytics_root(self) -> ToolsConfig:
        if self.analytics.root is None:
            self.analytics.root = self.filesystem.root
        return self


class LoggingConfig(_Model):
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = "INFO"
    format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = "text"


class MetricsConfig(_Model):
    enabled: bool = True
    port: OptPort = Field(
        default=None,
        description="metrics are served on api.port at /metrics; this key is accepted "
        "for compatibility with the seed and not used",
    )


class _MonitoringMetrics(_Model):
    enabled: Union[bool, None] = None
    port: OptPort = None


class _Monitoring(_Model):
    """The seed's ``monitoring`` block, mapped onto ``metrics``."""

    enabled: Union[bool, None] = None
    metrics: Union[_MonitoringMetrics, None] = None


# --- the config ---------------------------------------------------------------


class Config(_Model):
    """Everything a node needs; build it with :func:`load_config`."""

    agent: AgentSection
    p2p: P2PConfig = Field(default_factory=P2PConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    # Seed compatibility spellings of metrics.enabled / metrics.port.
    metrics_enabled: Union[bool, None] = Field(
        default=None, repr=False, description="alias of metrics.enabled"
    )
    monitoring: Union[_Monitoring, None] = Field(
        default=None, repr=False, description="seed compat; mapped onto metrics"
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        given: list[tuple[str, bool]] = []
        if "enabled" in self.metrics.model_fields_set:
            given.append(("metrics.enabled", self.metrics.enabled))
        if self.metrics_enabled is not None:
            given.append(("metrics_enabled", self.metrics_enabled))
        mon = self.monitoring
        if mon is not None:
            # monitoring.enabled and monitoring.metrics.enabled together say one thing.
            flags = [("monitoring.enabled", mon.enabled)]
            if mon.metrics is not None:
                flags.append(("monitoring.metrics.enabled", mon.metrics.enabled))
            flags = [(k, v) for k, v in flags if v is not None]
            if flags:
                given.append((flags[-1][0], all(v for _, v in flags)))
            if mon.metrics is not None and mon.metrics.port is not None:
                if self.metrics.port not in (None, mon.metrics.port):
                    raise _KeyedValueError(
                        "monitoring.metrics.port", "disagrees with metrics.port; give only one"
                    )
                self.metrics.port = mon.metrics.port
        for key, value in given[1:]:
            if value != given[0][1]:
                raise _KeyedValueError(key, f"disagrees with {given[0][0]}; give only one")
        if given:
            self.metrics.enabled = given[0][1]
        if self.p2p.enabled and self.api.port and self.api.port == self.p2p.port:
            raise _KeyedValueError("api.port", f"must differ from p2p.port (both {self.api.port})")
        return self

    def summary(self) -> dict[str, Any]:
        """JSON-safe effective config with secrets replaced by ``"***"``."""
        out = self.model_dump(mode="json", exclude={"metrics_enabled", "monitoring"})
        out["p2p"]["keystore_root"] = str(self.p2p.effective_keystore_root)
        for section, key in (("api", "token"), ("security", "psk"), ("security", "noise_key")):
            holder = out["p2p"] if section == "security" else out
            if holder[section][key] is not None:
                holder[section][key] = _MASK
        return out


# --- loader -------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (the last one silently wins otherwise)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            continue  # construct_mapping reports it
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, file: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=file) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=file) from None
    except OSError as e:
        raise ConfigError(f"cannot read file ({e.strerror or e})", file=file) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "syntax error"
        raise ConfigError(f"invalid YAML{where}: {problem}", file=file) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", file=file) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"top level must be a mapping (got {_describe(data)})", file=file)
    return data


def _fmt_key(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("["):
            out += part
        else:
            out += f".{part}" if out else str(part)
    return out


# Spellings of one setting: an override of one drops the others from the file,
# so the override wins instead of tripping the "give only one" check.
_ALIASES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("p2p", "peer_discovery"), ("p2p", "enable_mdns")),
    (("p2p", "max_peers"), ("p2p", "security", "max_peer_connections")),
    (
        ("p2p", "security", "use_noise"),
        ("p2p", "security", "enabled"),
        ("p2p", "security", "noise_enabled"),
    ),
    (
        ("metrics", "enabled"),
        ("metrics_enabled",),
        ("monitoring", "enabled"),
        ("monitoring", "metrics", "enabled"),
    ),
    (("metrics", "port"), ("monitoring", "metrics", "port")),
)


def _delete(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any, file: str, source: str) -> None:
    if not path or any(not p for p in path):
        raise ConfigError(f"bad key path in {source}", file=file, key=".".join(path))
    for group in _ALIASES:
        if path in group:
            for other in group:
                if other != path:
                    _delete(data, other)
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"{source} sets a key inside a value that is not a mapping",
                file=file,
                key=_fmt_key(path[: i + 1]),
            )
        node = child
    node[path[-1]] = value


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not YAML: take it as a plain string


def _apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str], overrides: Sequence[str], file: str
) -> dict[tuple[str, ...], str]:
    """Apply env then explicit overrides in place; return {path: source} for messages."""
    origins: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX):
            path = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
            _set(data, path, _parse_value(environ[name]), file, name)
            origins[path] = name
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value", file=file)
        path = tuple(p.strip() for p in key.strip().split("."))
        _set(data, path, _parse_value(raw), file, f"override {item!r}")
        origins[path] = f"override {item!r}"
    return origins


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _SubstError(Exception):
    pass


def _closing_brace(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        two = text[i : i + 2]
        if two == "$$":
            i += 2
        elif two == "${":
            depth += 1
            i += 2
        elif text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
            i += 1
        else:
            i += 1
    raise _SubstError("unterminated '${'")


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """Shell-like: ``${VAR}``, ``${VAR:-default}`` (default may nest), ``$$`` -> ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if two == "$$":
            out.append("$")
            i += 2
            continue
        if two != "${":
            out.append(text[i])
            i += 1
            continue
        m = _VAR_NAME.match(text, i + 2)
        if not m:
            raise _SubstError(f"bad variable reference {text[i:i + 20]!r}")
        name, j = m.group(), m.end()
        if text.startswith("}", j):
            default, i = None, j + 1
        elif text.startswith(":-", j):
            end = _closing_brace(text, j + 2)
            default, i = text[j + 2 : end], end + 1
        else:
            raise _SubstError(
                f"bad variable reference {text[i:j + 1]!r} "
                f"(use ${{{name}}} or ${{{name}:-default}})"
            )
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise _SubstError(
                    f"environment variable {name} is not set (give a default: ${{{name}:-...}})"
                )
            value = _expand(default, environ)  # only expanded when used
        out.append(value)
    return "".join(out)


def _substitute(node: Any, environ: Mapping[str, str], path: tuple[Any, ...], file: str) -> Any:
    if isinstance(node, str):
        try:
            return _expand(node, environ)
        except _SubstError as e:
            raise ConfigError(str(e), file=file, key=_fmt_key(path) or None) from None
    if isinstance(node, dict):
        return {k: _substitute(v, environ, (*path, k), file) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, environ, (*path, i), file) for i, v in enumerate(node)]
    return node


def _model_at(path: Sequence[Any]) -> type[_Model] | None:
    """The model class that holds the keys at ``path`` (for name suggestions)."""
    cls: type[_Model] = Config
    for part in path:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part)
        if field is None:
            return None
        found = _find_model(field.annotation)
        if found is None:
            return None
        cls = found
    return cls


def _find_model(tp: Any) -> type[_Model] | None:
    if isinstance(tp, type) and issubclass(tp, _Model):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(tp):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


# Keys whose values are secrets: an error about one names its type, never its
# value (an unquoted numeric token in YAML is an int, and the error is logged).
_SECRET_KEYS = frozenset({"token", "psk", "noise_key"})


def _reason(err: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    secret = bool(loc) and loc[-1] in _SECRET_KEYS
    got = f"(got {'a secret ' + type(value).__name__ if secret else _describe(value)})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = [*model.model_fields, *model._compat_keys] if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if close:
            return f"unknown key (did you mean '{close[0]}'?)"
        visible = [k for k in known if model and k in model.model_fields]
        return f"unknown key (known: {', '.join(visible)})" if visible else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')} {got}"
    simple = {
        "int": "must be an integer",
        "float": "must be a number",
        "bool": "must be true or false",
        "string": "must be a string",
        "list": "must be a list",
        "model": "must be a mapping",
        "dict": "must be a mapping",
        "path": "must be a path",
    }
    head = kind.split("_")[0]
    if head in simple:
        return f"{simple[head]} {got}"
    return f"{err['msg']} {got}"


def _from_validation_error(
    exc: ValidationError, file: str | None, origins: Mapping[tuple[str, ...], str]
) -> ConfigError:
    problems: list[tuple[str | None, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        reason = _reason(err, loc)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, _KeyedValueError):
            loc = (*loc, *error.subkey.replace("[", ".[").split("."))
            loc = tuple(p for p in loc if p != "")
        key = _fmt_key(loc)
        for path, source in origins.items():
            if tuple(loc[: len(path)]) == path:
                reason += f" (set by {source})"
                break
        problems.append((key or None, reason))
    key, reason = problems[0]
    return ConfigError(reason, file=file, key=key, problems=problems)


def load_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, override, substitute and validate a config file (see module docstring).

    ``environ`` defaults to ``os.environ``; ``overrides`` are ``"a.b=value"``
    strings (value parsed as YAML), applied after ``PRAXIS__A__B`` variables.
    """
    env = os.environ if environ is None else environ
    file = os.fspath(path)
    data = _read_yaml(Path(file), file)
    origins = _apply_overrides(data, env, overrides, file)
    data = _substitute(data, env, (), file)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise _from_validation_error(e, file, origins) from None
