"""One agent: config → keystore → tools → P2P service → HTTP API, and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from typing import Any

from .activity import Activity
from .api import create_app
from .card import build_card
from .config import Config
from .constants import EXIT_P2P_DIED, FAILURE_EXIT_GRACE
from .execution import ToolExecutor
from .http_server import QuietServer, build_server
from .keys import PeerRegistry, node_seed, peer_id_from_seed, publish_public_entry
from .metrics import Metrics
from .p2p.discovery import local_ipv4_addresses
from .p2p.service import P2PService
from .routing import ToolRouter
from .rpc import A2ADispatcher, McpDispatcher, TaskStore
from .tools import build_registry

__all__ = ["Agent"]

log = logging.getLogger("agent")

# Room kept in a frame for the JSON envelope around a tool's payload, so a
# file of up to max_message_size minus this still travels in one message.
ENVELOPE_ROOM = 64 * 1024


class Agent:
    """Build with a validated :class:`Config`; the keystore is opened here."""

    def __init__(self, config: Config) -> None:
        self.config = config
        p2p = config.p2p
        self.metrics = Metrics()
        self.seed = node_seed(p2p.keystore_path, p2p.identity_secret_file, config.agent.name)
        self.peer_id = peer_id_from_seed(self.seed)
        max_payload = max(1024, p2p.max_message_size - ENVELOPE_ROOM)
        self.tools = build_registry(
            config.agent.tool_names(),
            fs_root=config.tools.filesystem.root,
            analytics_root=config.tools.analytics.root or config.tools.filesystem.root,
            max_bytes=max_payload,
        )
        self.registry = PeerRegistry(p2p.effective_keystore_root)
        self.tasks = TaskStore()
        # One local execution path: the P2P handlers and the HTTP router share it.
        self.executor = ToolExecutor(self.tools, config.tools.call_timeout)
        self.service = P2PService(
            config, self.seed, self.tools, self.registry, self.metrics, self.tasks, executor=self.executor
        )
        self.service.card_builder = self._card
        self.metrics.describe_agent(config.agent.name, config.agent.role, self.peer_id, config.agent.version,
                                    self.service.peers.with_cards)
        self.router = ToolRouter(self.service, self.executor, config.tools.call_timeout)
        self.activity = self.router.activity = Activity()  # fed by routing's @recorded, read by /ui
        self.http_mcp = McpDispatcher(
            config.agent.name, config.agent.version, self.router.list_tools, self._invoke_routed
        )
        self.http_a2a = A2ADispatcher(self.tasks, self._invoke_routed)
        self.started_at = time.monotonic()
        self._server: QuietServer | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _invoke_routed(self, name: str, arguments: dict[str, Any]) -> Any:
        return (await self.router.invoke(name, arguments)).result

    def _card(self, addresses: list[str]) -> dict[str, Any]:
        api = self.config.api
        host = api.host
        if host in ("0.0.0.0", "::"):
            ips = local_ipv4_addresses()
            host = ips[0] if ips else "127.0.0.1"
        return build_card(
            name=self.config.agent.name,
            role=self.config.agent.role,
            description=self.config.agent.description,
            version=self.config.agent.version,
            peer_id=self.peer_id,
            addresses=addresses,
            protocols=list(self.config.p2p.protocols),
            tools=self.tools.describe_all(),
            api_url=f"http://{host}:{self.api_port}",
        )

    @property
    def api_port(self) -> int:
        server = self._server
        if server is not None and server.started and server.servers:
            for s in server.servers:
                for sock in s.sockets:
                    return int(sock.getsockname()[1])
        return self.config.api.port

    # ------------------------------------------------------------ lifecycle
    def publish_identity(self) -> None:
        p2p = self.config.p2p
        if p2p.publish_peer_id:
            path = publish_public_entry(
                p2p.effective_keystore_root, self.config.agent.name, self.peer_id, self.config.agent.role
            )
            log.info("Published PeerID %s at %s", self.peer_id, path)

    def start_p2p(self) -> None:
        if not self.config.p2p.enabled:
            self.service.state = "disabled"
            self.service.failure = "p2p.enabled is false"
            return
        self.service.start()

    def stop_p2p(self) -> None:
        self.service.stop()

    async def serve(self, install_signal_handlers: bool = True, ready: threading.Event | None = None) -> int:
        """Run the API and the P2P host until SIGTERM/SIGINT (or :meth:`request_stop`).

        Stop order: P2P host first (so /health turns 503 and mDNS says goodbye),
        then the HTTP server.
        """
        app = create_app(self)
        server = self._server = build_server(app, self.config.api.host, self.config.api.port)
        # Our handlers, not uvicorn's: uvicorn stops HTTP first and re-raises
        # the signal once it has stopped, killing the process before the P2P
        # host is closed and mDNS has said goodbye.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        loop = self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
        serving = asyncio.create_task(server.serve())
        # The API comes up first so /health answers 503 while the host starts.
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if serving.done():
            await serving
            log.error("HTTP API could not start on %s:%d", self.config.api.host, self.config.api.port)
            return 1
        code = 0
        # The P2P loop dying while running ends the process with EXIT_P2P_DIED
        # (compose restarts it) rather than leaving an agent that cannot serve.
        died = asyncio.Event()
        self.service.on_failure = lambda reason: loop.call_soon_threadsafe(died.set)
        try:
            self.publish_identity()
            await asyncio.to_thread(self.start_p2p)
        except Exception as e:
            log.error("P2P host failed to start: %s", e)
            code = 1
            self._stop.set()
        if ready is not None:
            ready.set()
        stop_wait = asyncio.create_task(self._stop.wait())
        died_wait = asyncio.create_task(died.wait())
        await asyncio.wait({serving, stop_wait, died_wait}, return_when=asyncio.FIRST_COMPLETED)
        if died.is_set() and not stop_wait.done():
            # /health answers 503 with the reason meanwhile, so a watcher sees why.
            log.error("Exiting with code %d: %s", EXIT_P2P_DIED, self.service.failure)
            await asyncio.wait({serving, stop_wait}, timeout=FAILURE_EXIT_GRACE, return_when=asyncio.FIRST_COMPLETED)
            code = EXIT_P2P_DIED
        await asyncio.to_thread(self.stop_p2p)
        server.should_exit = True
        await serving
        stop_wait.cancel()
        died_wait.cancel()
        log.info("Agent %s stopped", self.config.agent.name)
        return code

    def request_stop(self) -> None:
        """Thread-safe: ask :meth:`serve` to stop."""
        stop = self._stop
        if stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(stop.set)
