"""FakeEstuaryServer: the fake server on its own thread and event loop, with a thread-safe API.

Socket.IO runs on python-socketio's AsyncServer over aiohttp: aiohttp serves the Socket.IO
endpoint and the JSON control API from one port with no extra ASGI server, and livekit-api
already depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from fake_server.control import add_control_routes, json_errors
from fake_server.engine import NAMESPACE, Engine, EngineSettings
from fake_server.eventlog import EventLog
from fake_server.memory import Reclaimer
from fake_server.misbehaviour import Misbehaviour
from fake_server.namespace import SdkNamespace
from fake_server.sessions import SessionView
from fake_server.tokens import LiveKitConfig
from fake_server.utterances import KnownUtterance, UtteranceLibrary, read_wav
from fake_server.utterances import suite_utterances as find_suite_utterances
from fake_server.voice_synth import BOT_PITCH_HZ
from fake_server.wire import MAX_UNAUTHENTICATED, GuardedServer

__all__ = ["FakeEstuaryServer", "FakeServerError"]

log = logging.getLogger("fake_server")
T = TypeVar("T")
CALL_TIMEOUT = 30.0
WATCHDOG_PERIOD = 0.2
AUTH_DEADLINE = 10.0
TRIM_PERIOD = 1.0  # a check reads /proc/self/statm; a reclaim happens only after a burst


class FakeServerError(RuntimeError):
    """The fake server could not start, or was used while not running."""


class FakeEstuaryServer:
    """A fake Estuary server for tests: real Socket.IO, real LiveKit tokens, a real bot."""

    def __init__(
        self,
        livekit: LiveKitConfig | None = None,
        api_keys: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: float = 600.0,
        session_idle_timeout: float | None = None,
        voice_idle_timeout: float | None = None,
        bot_pitch_hz: float = BOT_PITCH_HZ,
        control_token: str | None = None,
        bot_warmup: bool = True,
        auth_deadline: float = AUTH_DEADLINE,
        allowed_origins: Sequence[str] | None = None,
        utterances: Sequence[str | Path] = (),
        suite_utterances: bool = True,
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
        reclaim_memory: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``auth_deadline``: seconds a socket may stay open without authenticating.
        ``allowed_origins``: browser origins accepted besides loopback ones (``["*"]``: any).
        ``utterances``: directories of known recordings (``NAME.wav`` + ``NAME.txt``) the fake STT
        recognises, besides the conformance suite's own (unless ``suite_utterances`` is False).
        ``max_unauthenticated``: sockets open at once without having authenticated; more are refused.
        ``reclaim_memory``: after a burst, collect and return freed memory to the system
        (fake_server.memory); for a long-running server in its own process, as the CLI runs it.
        ``ssl_context``: a server context with its certificate loaded: serve HTTPS/WSS (``url`` is https://)."""
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError(f"ssl_context must be an ssl.SSLContext with a certificate loaded, got {ssl_context!r}")
        self.ssl_context = ssl_context
        if api_keys is not None and (isinstance(api_keys, str) or not all(isinstance(k, str) and k for k in api_keys)):
            raise ValueError("api_keys must be a sequence of non-empty strings")
        keys = tuple(api_keys) if api_keys else (f"est-{secrets.token_urlsafe(24)}",)
        for name, value in (
            ("token_ttl", token_ttl),
            ("session_idle_timeout", session_idle_timeout),
            ("voice_idle_timeout", voice_idle_timeout),
            ("auth_deadline", auth_deadline),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        self.settings = EngineSettings(
            keys, livekit, token_ttl, session_idle_timeout, voice_idle_timeout, bot_pitch_hz, bot_warmup
        )
        if allowed_origins is not None and (
            isinstance(allowed_origins, str) or not all(isinstance(o, str) and o for o in allowed_origins)
        ):
            raise ValueError("allowed_origins must be a sequence of origins such as 'https://app.example'")
        if isinstance(utterances, (str, Path)):
            raise ValueError("utterances must be a sequence of directories, not one path")
        self.utterances = UtteranceLibrary()
        suite = find_suite_utterances() if suite_utterances else None
        for directory in ([suite] if suite is not None else []) + [Path(d) for d in utterances]:
            self.utterances.add_directory(directory)
        if isinstance(max_unauthenticated, bool) or not isinstance(max_unauthenticated, int) or max_unauthenticated < 1:
            raise ValueError(f"max_unauthenticated must be a positive integer, got {max_unauthenticated!r}")
        self.max_unauthenticated = max_unauthenticated
        self.reclaim_memory = reclaim_memory
        self.auth_deadline = auth_deadline
        self.allowed_origins = tuple(allowed_origins) if allowed_origins is not None else None
        self.host = host
        self.port = port
        self.control_token = control_token or secrets.token_urlsafe(24)
        self.events = EventLog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._runner: web.AppRunner | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._trimming: asyncio.Task[None] | None = None

    # -- life ---------------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.settings.api_keys[0]

    @property
    def url(self) -> str:
        if self._engine is None:
            raise FakeServerError("the fake server is not running: call start() first")
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeEstuaryServer:
        """Start listening (port 0 picks a free port); returns once it accepts connections."""
        if self._thread is not None:
            return self
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(started, failure), name="fake-estuary", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise FakeServerError(f"the fake server did not start within {timeout:.1f} s")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise FakeServerError(f"the fake server could not start on {self.host}:{self.port}: {failure[0]}")
        log.info("fake Estuary server on %s", self.url)
        return self

    def _run(self, started: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(), which raises it with context
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            if self._runner is not None:  # a shutdown cut short (stop()'s bound) left the site open
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        # always_connect: CONNECT is acked before on_connect runs, so session_info (or auth_error)
        # can follow at once; clients drop events that come before the ack.
        sio = GuardedServer(
            auth_deadline=self.auth_deadline,
            allowed_origins=self.allowed_origins,
            max_unauthenticated=self.max_unauthenticated,
            async_handlers=False,
            always_connect=True,
        )
        engine = Engine(sio, self.settings, self.events, self.utterances)
        namespace = SdkNamespace(engine)
        app = web.Application(middlewares=[json_errors])
        sio.attach(app)
        add_control_routes(app, self)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock, ssl_context=self.ssl_context).start()
        if self.settings.livekit is not None:
            await engine.bots.start()  # not awaited to readiness: early requests wait in its pipe
            namespace.livekit.fill_standby()
        self._engine, self._runner = engine, runner
        self._watchdog = asyncio.ensure_future(self._watch_idle())
        if self.reclaim_memory:
            self._trimming = asyncio.ensure_future(self._trim_memory())

    def stop(self, timeout: float = 15.0) -> None:
        """Disconnect everyone, remove bots, delete rooms, stop the loop and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._engine is not None:
            try:
                self._call(self._shutdown(), timeout)
            except Exception as exc:  # the loop's own end closes the listening socket (_run)
                log.warning("the fake server's shutdown did not complete: %s", f"{type(exc).__name__}: {exc}")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = self._engine = self._runner = None

    async def _shutdown(self) -> None:
        engine = self._engine
        assert engine is not None
        for task in (self._watchdog, self._trimming):
            if task is not None:
                task.cancel()
        if isinstance(engine.sio, GuardedServer):
            engine.sio.cancel_deadlines()
        try:
            await self._disconnect_all()
            await engine.aclose()
        finally:  # whatever failed above, the port is given back
            runner, self._runner = self._runner, None
            if runner is not None:
                await runner.cleanup()

    def __enter__(self) -> FakeEstuaryServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- thread-safe API ----------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        if self._loop is None or self._engine is None:
            coro.close()
            raise FakeServerError("the fake server is not running: call start() first")
        if threading.current_thread() is self._thread:
            coro.close()
            raise FakeServerError("call the async control methods from the server's own loop, not the sync API")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise FakeServerError("the fake server is not running: call start() first")
        return self._engine

    def reset(self) -> None:
        """Drop all sessions, bots and rooms; clear misbehaviour, scripts and the event log."""
        self._call(self.areset())

    async def areset(self) -> None:
        engine = self.engine
        await self._disconnect_all()
        engine.misbehaviour = Misbehaviour()
        engine.per_player.clear()
        engine.brain.scripted.clear()
        engine.transcripts.scripted.clear()
        self.events.clear()

    async def _disconnect_all(self) -> None:
        engine = self.engine
        for session in list(engine.sessions.values()):
            await engine.release_voice(session)
            with contextlib.suppress(Exception):
                await engine.sio.disconnect(session.sid, namespace=NAMESPACE)
        deadline = time.monotonic() + 5.0
        while engine.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for session in list(engine.sessions.values()):  # a socket that never said goodbye
            await engine.end_session(session)

    def misbehave(self, player_id: str | None = None, **settings: Any) -> Misbehaviour:
        """Apply misbehaviour settings server-wide, or for one player only; returns what is in force."""
        return self._call(self.amisbehave(player_id, settings))

    async def amisbehave(self, player_id: str | None, settings: dict[str, Any]) -> Misbehaviour:
        engine = self.engine
        if player_id is None:
            engine.misbehaviour = engine.misbehaviour.updated(settings)
            return engine.misbehaviour
        current = engine.per_player.get(player_id, engine.misbehaviour)
        engine.per_player[player_id] = current.updated(settings)
        return engine.per_player[player_id]

    def script(self, transcripts: Sequence[str] = (), replies: Sequence[str] = ()) -> None:
        """Queue transcripts (what the STT "hears") and replies (what the bot says), used in order."""
        self._call(self.ascript(list(transcripts), list(replies)))

    async def ascript(self, transcripts: list[str], replies: list[str]) -> None:
        for name, values in (("transcripts", transcripts), ("replies", replies)):
            if not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"{name} must be non-empty strings, got {values!r}")
        self.engine.transcripts.scripted.extend(transcripts)
        self.engine.brain.scripted.extend(replies)

    def add_utterances(self, directory: str | Path) -> list[KnownUtterance]:
        """Recognise the recordings of ``directory`` (``NAME.wav`` + ``NAME.txt``) from now on."""
        return self.utterances.add_directory(Path(directory))

    def add_utterance(self, transcript: str, wav: str | Path | bytes) -> KnownUtterance:
        """Recognise one recording (a WAV file's path or bytes) as ``transcript`` from now on."""
        if isinstance(wav, bytes):
            pcm, rate = read_wav(wav)
            return self.utterances.add(transcript, pcm, rate)
        return self.utterances.add_wav(Path(wav), transcript)

    @property
    def sessions(self) -> list[SessionView]:
        return self._call(self._views())

    async def _views(self) -> list[SessionView]:
        return [s.view() for s in self.engine.sessions.values() if s.authenticated]

    def trigger_session_timeout(self, player_id: str | None = None) -> int:
        """Send session_timeout (then disconnect) to the player's sessions, or all; returns how many."""
        return self._call(self.atrigger("session", player_id))

    def trigger_voice_timeout(self, player_id: str | None = None) -> int:
        """Send voice_timeout (releasing voice) to the player's sessions, or all; returns how many."""
        return self._call(self.atrigger("voice", player_id))

    async def atrigger(self, kind: str, player_id: str | None) -> int:
        engine = self.engine
        chosen = [s for s in list(engine.sessions.values()) if s.authenticated and player_id in (None, s.player_id)]
        for session in chosen:
            await (engine.session_timeout(session) if kind == "session" else engine.voice_timeout(session))
        return len(chosen)

    def live_rooms(self) -> list[str]:
        """This server's rooms that still exist on the LiveKit server, but the standby bot's (other
        servers' rooms on a shared LiveKit server are not this server's)."""
        return self._call(self.alive_rooms())

    async def alive_rooms(self) -> list[str]:
        from livekit import api

        engine = self.engine
        if engine.settings.livekit is None:
            return []
        listed = await engine.lk_api().room.list_rooms(api.ListRoomsRequest())
        standby = engine.standby.room if engine.standby is not None else None
        return sorted(r.name for r in listed.rooms if r.name.startswith(engine.room_prefix) and r.name != standby)

    # -- memory -------------------------------------------------------------------------------

    async def _trim_memory(self) -> None:
        """Every ``TRIM_PERIOD``, give memory freed since a burst back to the system (fake_server.memory)."""
        reclaimer = Reclaimer()
        sio = self.engine.sio
        while True:
            await asyncio.sleep(TRIM_PERIOD)
            try:
                if isinstance(sio, GuardedServer):  # busy: sockets not authenticated yet (abusers, maybe)
                    await reclaimer.check(sio.frames, busy=sio.unauthenticated > 0)
                else:
                    await reclaimer.check()
            except Exception as exc:  # a failed check must not end the reclaims for good
                log.warning("reclaiming memory failed: %s: %s", type(exc).__name__, exc)

    # -- idle timeouts ------------------------------------------------------------------------

    async def _watch_idle(self) -> None:
        engine = self.engine
        session_limit, voice_limit = self.settings.session_idle_timeout, self.settings.voice_idle_timeout
        if session_limit is None and voice_limit is None:
            return
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            now = time.monotonic()
            for session in list(engine.sessions.values()):
                if not session.authenticated:
                    continue
                if session_limit is not None and now - session.last_activity > session_limit:
                    session.spawn(engine.session_timeout(session))
                    session.last_activity = float("inf")  # once
                elif voice_limit is not None and session.voice and now - session.voice_activity > voice_limit:
                    await engine.voice_timeout(session)
