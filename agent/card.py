"""This agent's card: A2A-shaped, plus what Praxis peers need to route calls."""

from __future__ import annotations

from typing import Any

__all__ = ["build_card"]


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
    return {
        # A2A AgentCard fields
        "name": name,
        "description": description or f"Praxis {role} agent",
        "version": version,
        "url": api_url or (addresses[0] if addresses else ""),
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json"],
        "capabilities": {"streaming": False, "pushNotifications": False},
        "skills": [
            {
                "id": t["name"],
                "name": t["name"],
                "description": t.get("description", ""),
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
