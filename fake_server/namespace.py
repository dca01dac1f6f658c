"""The /sdk namespace: connection, authentication, and dispatch of every client event.

Handlers accept no argument, ``null`` or an object (WIRE-2); anything malformed gets
``error {message}`` naming the event and the field (WIRE-3); unknown events (reserved names such
as ``connect`` included, see fake_server.wire) are ignored, and logged only as a summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fake_server.abbreviate import NotDecoded, short_name
from fake_server.auth import AuthError, check_auth
from fake_server.engine import NAMESPACE, Engine
from fake_server.livekit_voice import LiveKitVoice
from fake_server.redact import quote
from fake_server.sessions import Session
from fake_server.websocket_voice import WebSocketVoice
from fake_server.wire import GuardedServer

__all__ = ["SdkNamespace"]

log = logging.getLogger("fake_server.namespace")
Handler = Callable[[Session, Any], Awaitable[None]]
MAX_TEXT = 10_000
NOISE_PER_SOCKET = 10
NOT_LOGGED = f"this socket's unknown and unauthenticated events after its first {NOISE_PER_SOCKET} are not logged"


class SdkNamespace:
    """Registers itself on the Socket.IO server and turns wire events into engine actions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.livekit = livekit = LiveKitVoice(engine)
        engine.bots.on_exit = livekit.recover
        websocket = WebSocketVoice(engine)
        self.handlers: dict[str, Handler] = {
            "authenticate": self.on_authenticate,
            "text": self.on_text,
            "say_line": self.on_say_line,
            "client_interrupt": self.on_interrupt,
            "livekit_token": livekit.on_token,
            "livekit_join": livekit.on_join,
            "livekit_leave": livekit.on_leave,
            "start_voice": websocket.on_start,
            "stream_audio": websocket.on_audio,
            "stop_voice": websocket.on_stop,
            "audio_playback_complete": self.on_playback_complete,
        }
        sio = engine.sio
        sio.on("connect", self.on_connect, namespace=NAMESPACE)
        sio.on("disconnect", self.on_disconnect, namespace=NAMESPACE)
        sio.on("*", self.on_event, namespace=NAMESPACE)
        if isinstance(sio, GuardedServer):
            sio.unknown_event = self.on_event
            sio.known_events = frozenset(self.handlers)
            sio.authenticated = self.authenticated_socket
            sio.overdue = self.on_auth_overdue

    # -- connection ---------------------------------------------------------------------------

    async def on_connect(self, sid: str, _environ: dict[str, Any], auth: Any = None) -> bool:
        session = Session(sid)
        self.engine.sessions[sid] = session
        self.engine.events.record(sid, None, "in", "connect", auth)
        if auth:  # CONN-2; the server runs with always_connect, so CONNECT is acked already
            await self.engine.emit(session, *self.authenticate(session, auth))
        return True

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        session = self.engine.sessions.get(sid)
        self.engine.events.record(sid, session.session_id if session else None, "in", "disconnect", None)
        if session is not None:
            await self.engine.end_session(session)

    def _session_of(self, eio_sid: str) -> Session | None:
        sid = self.engine.sio.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        return self.engine.sessions.get(sid) if sid is not None else None

    def authenticated_socket(self, eio_sid: str) -> bool:
        session = self._session_of(eio_sid)
        return session is not None and session.authenticated

    async def on_auth_overdue(self, eio_sid: str) -> None:
        """The auth deadline passed: say so to a socket in /sdk; the caller then closes it."""
        session = self._session_of(eio_sid)
        if session is not None:
            deadline = getattr(self.engine.sio, "auth_deadline", 0.0)
            await self.engine.emit(
                session, "auth_error", {"error": f"no authentication within {deadline:g} s; closing the connection"}
            )

    def authenticate(self, session: Session, auth: Any) -> tuple[str, dict[str, Any]]:
        """Check ``auth`` and open the session; returns the event to send (session_info or an error)."""
        engine = self.engine
        if session.authenticated:
            return "error", {"message": "authenticate: this socket is already authenticated"}
        try:
            creds = check_auth(auth, engine.settings.api_keys)
        except AuthError as exc:
            return "auth_error", {"error": str(exc)}
        if engine.bad(Session(session.sid, player_id=creds.player_id)).auth_always_fails:
            return "auth_error", {"error": "authentication refused (misbehaviour auth_always_fails)"}
        if isinstance(engine.sio, GuardedServer):
            engine.sio.authenticated_now(session.sid, NAMESPACE)
        return "session_info", engine.open_session(
            session, creds.character_id, creds.player_id, creds.audio_sample_rate
        )

    # -- events -------------------------------------------------------------------------------

    async def on_event(self, name: str, sid: str, *args: Any) -> None:
        engine = self.engine
        session = engine.sessions.get(sid)
        if session is None:
            return
        handler = self.handlers.get(name)
        # Unknown events, and anything but authenticate before authentication, are kept as a summary,
        # and only the first NOISE_PER_SOCKET of a socket: one socket cannot wash the log out.
        summary = handler is None or not (session.authenticated or name == "authenticate")
        payload = args[0] if len(args) == 1 else (list(args) or None)
        if not summary or session.noise < NOISE_PER_SOCKET:
            engine.events.record(sid, session.session_id, "in", name, payload, summary=summary)
        elif session.noise == NOISE_PER_SOCKET:
            engine.events.record(sid, session.session_id, "in", "<not logged>", NOT_LOGGED, summary=False)
        session.noise += summary
        if handler is None:
            log.debug("ignoring unknown event %s", short_name(name))
            return
        bad = engine.bad(session)
        if bad.drop_socket_at == name:
            await engine.release_voice(session)
            await engine.sio.disconnect(sid, namespace=NAMESPACE)
            return
        if name != "authenticate" and not session.authenticated:
            engine.violation(session, "CONN-6", "authentication before other events", f"{name} before auth")
            await engine.error(
                session, f"{name}: not authenticated; send auth in CONNECT or an authenticate event first"
            )
            return
        if len(args) > 1:
            await engine.error(session, f"{name}: expected at most one argument, got {len(args)}")
            return
        if args and isinstance(args[0], NotDecoded):  # fake_server.wire did not decode it: too large
            await engine.error(session, f"{name}: a {args[0].size}-byte packet is too large for this event")
            return
        payload = args[0] if args else None
        if payload is not None and not isinstance(payload, dict):
            await engine.error(session, f"{name}: the payload must be an object or null, got {type(payload).__name__}")
            return
        session.touch()
        delay = bad.delay.get(name)
        if delay:
            session.spawn(self._delayed(delay, handler, session, payload))
        else:
            await handler(session, payload)

    @staticmethod
    async def _delayed(delay: float, handler: Handler, session: Session, payload: Any) -> None:
        await asyncio.sleep(delay)
        await handler(session, payload)

    async def on_authenticate(self, session: Session, payload: Any) -> None:
        await self.engine.emit(session, *self.authenticate(session, payload))

    async def on_text(self, session: Session, payload: Any) -> None:
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.engine.error(session, f"text: field 'text' must be a non-empty string, got {quote(text)}")
            return
        if len(text) > MAX_TEXT:
            await self.engine.error(session, f"text: field 'text' is longer than {MAX_TEXT} characters")
            return
        text_only = payload.get("textOnly", False) if isinstance(payload, dict) else False
        if not isinstance(text_only, bool):
            await self.engine.error(session, f"text: field 'textOnly' must be true or false, got {quote(text_only)}")
            return
        session.spawn(self.engine.reply(session, text, text_only=text_only))

    async def on_say_line(self, session: Session, payload: Any) -> None:
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.engine.error(session, "say_line: field 'text' must be a non-empty string")
            return
        if payload.get("text_only") is True if isinstance(payload, dict) else False:
            return
        session.spawn(self.engine.speak(session, text))

    async def on_playback_complete(self, session: Session, payload: Any) -> None:
        """TEXT-4: the client finished playing a reply's audio; recorded (the event log), no answer."""
        message_id = payload.get("message_id") if isinstance(payload, dict) else None
        if message_id is not None and not isinstance(message_id, str):
            await self.engine.error(session, "audio_playback_complete: field 'message_id' must be a string")
            return
        if message_id in session.interrupted and self.engine.bad(session).playback_complete_after_interrupt_kills:
            # The interrupt dropped the reply's playback record; the ack's lookup of it fails, and a
            # failing handler costs the socket.
            log.info("closing %s: audio_playback_complete for interrupted reply %s", session.session_id, message_id)
            await self.engine.release_voice(session)
            await self.engine.sio.disconnect(session.sid, namespace=NAMESPACE)

    async def on_interrupt(self, session: Session, payload: Any) -> None:
        message_id = payload.get("message_id") if isinstance(payload, dict) else None
        if message_id is not None and not isinstance(message_id, str):
            await self.engine.error(session, "client_interrupt: field 'message_id' must be a string")
            return
        bad = self.engine.bad(session)
        if bad.stale_interrupt_cuts_next_reply and not session.streaming:
            session.interrupt_armed = True  # only a streaming reply takes the flag: the next one will
        if bad.playback_complete_after_interrupt_kills:
            interrupted = message_id or (session.recent_replies[-1] if session.recent_replies else None)
            if interrupted is not None and interrupted in session.recent_replies:
                session.interrupted.append(interrupted)
        body: dict[str, Any] = {"reason": "client_interrupt", "interrupted_at": time.time()}
        if message_id:
            body["message_id"] = message_id
        await self.engine.emit(session, "interrupt", body)
