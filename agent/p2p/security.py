"""Security options for the libp2p host (P2PSecurityManager in the seed's terms).

Always an explicit ``sec_opt``: without one py-libp2p 0.8.1 also offers
plaintext, where a dialer that merely knows a peer's public key is accepted as
that peer.  Noise proves the dialer holds the private key.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import X25519PrivateKey, create_new_key_pair as new_x25519
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID, Transport as NoiseTransport

from ..keys import load_swarm_key

__all__ = ["security_options", "resolve_psk", "NOISE_PROTOCOL_ID", "PLAINTEXT_PROTOCOL_ID"]

log = logging.getLogger("agent.p2p")


def security_options(keypair: KeyPair, use_noise: bool, noise_key: str | None) -> dict[Any, Any]:
    if not use_noise:
        log.warning(
            "SECURITY: p2p.security.use_noise is false: this agent talks PLAINTEXT and will not "
            "interoperate with Noise agents. For development only."
        )
        return {PLAINTEXT_PROTOCOL_ID: InsecureTransport(keypair)}
    if noise_key:
        static = X25519PrivateKey.from_bytes(base64.b64decode(noise_key))
    else:
        # The Noise static key is per-session; the identity is the Ed25519 key,
        # which signs the Noise payload, so it need not persist.
        static = new_x25519().private_key
    return {NOISE_PROTOCOL_ID: NoiseTransport(keypair, noise_privkey=static)}


def resolve_psk(configured: str | None, keystore_root: Path) -> str | None:
    """The private-network key: from config, else ``<keystore root>/swarm.key``."""
    if configured:
        return configured.lower()
    return load_swarm_key(keystore_root)
