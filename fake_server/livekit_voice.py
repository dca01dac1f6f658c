"""LiveKit voice (protocol.md section 4): token, bot join, ready, leave."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fake_server.bot_host import RemoteBot
from fake_server.engine import Engine
from fake_server.sessions import Session, WarmBot
from fake_server.stt import SttEvent
from fake_server.tokens import bot_token, mint

__all__ = ["LiveKitVoice"]

log = logging.getLogger("fake_server.livekit_voice")
TURN_MODES = ("push_to_talk", "server_vad", "continuous")


class LiveKitVoice:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def on_token(self, session: Session, payload: Any) -> None:
        engine, bad = self.engine, self.engine.bad(session)
        if payload is not None and not _turn_mode_ok(payload):
            await engine.error(session, f"livekit_token: turn_mode must be one of {TURN_MODES}, got {payload!r}")
            return
        if engine.settings.livekit is None or bad.livekit_disabled:
            return  # a server without LiveKit never answers (LK-11): the client must time out
        if bad.livekit_refused is not None:
            await engine.emit(session, "livekit_error", {"error": bad.livekit_refused})
            return
        room = engine.new_room_name(session)
        assert session.player_id is not None
        reply = mint(
            engine.settings.livekit,
            identity=session.player_id,
            room=room,
            ttl=engine.settings.token_ttl,
            misbehaviour=bad,
        )
        session.token_room = room
        stale, session.warm_bot = session.warm_bot, None
        if stale is not None:  # a second token before livekit_join: that room will never be joined
            session.spawn(engine.discard_warm_bot(stale))
        body = {"token": reply.token, "url": reply.url, "room": reply.room}
        if bad.token_reply_missing:
            body.pop(bad.token_reply_missing, None)
        await engine.emit(session, "livekit_token", body)
        if engine.settings.bot_warmup and not bad.no_bot:
            # LK-11: the bot joins while the client connects, so livekit_join finds it in the room.
            engine.rooms.add(room)
            session.warm_bot = WarmBot(room, asyncio.ensure_future(self._start_bot(session, room)))

    async def on_join(self, session: Session, payload: Any) -> None:
        engine, bad = self.engine, self.engine.bad(session)
        if payload is not None and not (isinstance(payload, dict) and _join_payload_ok(payload)):
            await engine.error(
                session, f"livekit_join: expected no argument, null or {{room, turn_mode?}}, got {payload!r}"
            )
            return
        room = payload.get("room") if isinstance(payload, dict) and payload.get("room") else session.token_room
        if session.token_room is None:
            engine.violation(session, "LK-handshake", "livekit_token before livekit_join", "livekit_join first")
            await engine.emit(session, "livekit_error", {"error": "livekit_join before livekit_token: no room"})
            return
        if room != session.token_room:
            engine.violation(session, "LK-handshake", f"livekit_join for room {session.token_room!r}", repr(room))
            await engine.emit(session, "livekit_error", {"error": f"livekit_join: unknown room {room!r}"})
            return
        if bad.livekit_refused is not None:
            await engine.emit(session, "livekit_error", {"error": bad.livekit_refused})
            return
        warm, session.warm_bot = session.warm_bot, None  # warmed for token_room, i.e. this room
        if session.voice is not None and session.room != room:
            await engine.release_voice(session)
        session.voice, session.room = "livekit", room
        engine.rooms.add(room)
        if session.bot is not None or bad.no_bot:  # no_bot set after the token: the warm bot must go
            await engine.discard_warm_bot(warm, keep_room=True)
        else:
            try:
                session.bot = await (warm.joined() if warm is not None else self._start_bot(session, room))
            except Exception as exc:
                log.warning("bot could not join %s: %s", room, exc)
                await engine.emit(session, "livekit_error", {"error": f"the bot could not join room {room}: {exc}"})
                await engine.release_voice(session)
                return
        session.touch()
        if bad.no_livekit_ready:
            return
        await engine.emit(session, "livekit_ready", {"room": f"{room}-wrong" if bad.ready_wrong_room else room})

    async def _start_bot(self, session: Session, room: str) -> RemoteBot:
        engine = self.engine
        livekit = engine.settings.livekit
        assert livekit is not None and session.player_id is not None

        async def on_speech(event: SttEvent) -> None:
            await engine.heard(session, event)

        identity = f"bot-{session.session_id}"
        return await engine.bots.join(
            url=livekit.ws_url,
            token=bot_token(livekit, identity=identity, room=room),
            identity=identity,
            listen_to=session.player_id,
            on_speech=None if engine.bad(session).bot_deaf else on_speech,
            pitch=engine.settings.bot_pitch_hz,
        )

    async def on_leave(self, session: Session, _payload: Any) -> None:
        await self.engine.release_voice(session)


def _turn_mode_ok(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("turn_mode", "push_to_talk") in TURN_MODES


def _join_payload_ok(payload: dict[str, Any]) -> bool:
    room = payload.get("room")
    return (room is None or isinstance(room, str)) and payload.get("turn_mode", "push_to_talk") in TURN_MODES
