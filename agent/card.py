"""This agent's card: an A2A AgentCard valid for 1.0 and 0.3 clients, plus
what Praxis peers need to route calls (``peer_id``, ``role``, ``tools``, …).

- 1.0 clients read ``supportedInterfaces`` (url, protocolBinding,
  protocolVersion): JSON-RPC at ``/a2a`` for 1.0 and for 0.3.
- 0.3 clients read ``url`` + ``preferredTransport`` + ``protocolVersion``:
  the same endpoint, which answers 0.3 when no ``A2A-Version`` header is sent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_card", "for_base_url", "A2A_PATH"]

A2A_PATH = "/a2a"


def _interfaces(endpoint: str) -> list[dict[str, str]]:
    return [
        {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]


def build_card(
    *,
    name: str,
    role: str,
    description: str,
    version: str,
    peer_id: str,
    addresses: list[str],
    protocols: list[str],
    tools: list[dict[str, Any]],
    api_url: str | None,
) -> dict[str, Any]:
    endpoint = api_url.rstrip("/") + A2A_PATH if api_url else ""
    card: dict[str, Any] = {
        # A2A AgentCard (1.0 and 0.3 fields side by side)
        "name": name,
        "description": description or f"Praxis {role} agent",
        "version": version,
        "supportedInterfaces": _interfaces(endpoint) if endpoint else [],
        "url": endpoint or (addresses[0] if addresses else ""),
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "additionalInterfaces": [{"url": endpoint, "transport": "JSONRPC"}] if endpoint else [],
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json"],
        # streaming: SendStreamingMessage / message/stream over SSE on /a2a.
        "capabilities": {"streaming": True, "pushNotifications": False, "extendedAgentCard": False},
        "skills": [
            {
                "id": t["name"],
                "name": t["name"],
                "description": t.get("description", "") or t["name"],
                "tags": [role],
            }
            for t in tools
        ],
        # Praxis fields
        "peer_id": peer_id,
        "role": role,
        "addresses": addresses,
        "protocols": protocols,
        "tools": tools,
    }
    return card


def for_base_url(card: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The card with its A2A endpoint under ``base_url`` (how the client reached us)."""
    endpoint = base_url.rstrip("/") + A2A_PATH
    return {
        **card,
        "url": endpoint,
        "supportedInterfaces": _interfaces(endpoint),
        "additionalInterfaces": [{"url": endpoint, "transport": "JSONRPC"}],
    }
