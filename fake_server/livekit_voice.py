"""LiveKit voice (protocol.md section 4): token, bot join, ready, leave."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from fake_server.bot_host import OnSpeech, RemoteBot
from fake_server.engine import Engine
from fake_server.redact import quote
from fake_server.sessions import Session, StrayBot, WarmBot
from fake_server.stt import SttEvent
from fake_server.tokens import SESSION_ATTRIBUTE, STATE_ATTRIBUTE, bot_token, mint

__all__ = ["LiveKitVoice"]

log = logging.getLogger("fake_server.livekit_voice")
TURN_MODES = ("push_to_talk", "server_vad", "continuous")
# LK-5 gives livekit_ready 5 s from livekit_join: a bot that is not in by then is reported
# (livekit_error), never answered late; the rest of the 5 s is the answer's way to the client.
READY_WITHIN = 4.0
REJOIN_BOUND = 5.0  # a bot that cannot rejoin by then is reported (livekit_error), not awaited longer


class LiveKitVoice:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def on_token(self, session: Session, payload: Any) -> None:
        engine, bad = self.engine, self.engine.bad(session)
        if payload is not None and not _turn_mode_ok(payload):
            await engine.error(session, f"livekit_token: turn_mode must be one of {TURN_MODES}, got {quote(payload)}")
            return
        if engine.settings.livekit is None or bad.livekit_disabled:
            return  # a server without LiveKit never answers (LK-11): the client must time out
        if bad.livekit_refused is not None:
            await engine.emit(session, "livekit_error", {"error": bad.livekit_refused})
            return
        # At most one room per session: a new token releases the voice and the warm bot of the last,
        # and deletes the last token's room (the client may be in it without a join or a warm bot:
        # no_bot, or warm-up off).
        previous, joined = session.token_room, session.voice == "livekit"
        stale, session.warm_bot = session.warm_bot, None
        if joined:
            await engine.release_voice(session)
        await engine.discard_warm_bot(stale)
        if previous is not None and stale is None and not joined:
            await engine.delete_room(previous)
        if engine.sessions.get(session.sid) is not session:
            return  # it ended while its last room went: no new one for nobody
        warm_up = engine.settings.bot_warmup and not bad.no_bot
        standby = self.take_standby() if warm_up else None
        room = standby.room if standby is not None else engine.new_room_name()
        assert session.player_id is not None
        reply = mint(
            engine.settings.livekit,
            identity=session.player_id,
            room=room,
            ttl=engine.settings.token_ttl,
            misbehaviour=bad,
        )
        session.token_room = room
        body = {"token": reply.token, "url": reply.url, "room": reply.room}
        if bad.token_reply_missing:
            body.pop(bad.token_reply_missing, None)
        await engine.emit(session, "livekit_token", body)
        if warm_up:
            # LK-11: the standby bot is in this room already, or a bot joins it while the client
            # connects; either way livekit_join finds it there.
            joining = self._serve(standby, session) if standby is not None else self._start_bot(session, room)
            session.warm_bot = WarmBot(room, asyncio.ensure_future(joining))

    async def on_join(self, session: Session, payload: Any) -> None:
        engine, bad = self.engine, self.engine.bad(session)
        if payload is not None and not (isinstance(payload, dict) and _join_payload_ok(payload)):
            await engine.error(
                session, f"livekit_join: expected no argument, null or {{room, turn_mode?}}, got {quote(payload)}"
            )
            return
        room = payload.get("room") if isinstance(payload, dict) and payload.get("room") else session.token_room
        if session.token_room is None:
            engine.violation(session, "LK-handshake", "livekit_token before livekit_join", "livekit_join first")
            await engine.emit(session, "livekit_error", {"error": "livekit_join before livekit_token: no room"})
            return
        if room != session.token_room:
            engine.violation(session, "LK-handshake", f"livekit_join for room {session.token_room!r}", quote(room))
            await engine.emit(session, "livekit_error", {"error": f"livekit_join: unknown room {quote(room)}"})
            return
        if bad.livekit_refused is not None:
            await engine.emit(session, "livekit_error", {"error": bad.livekit_refused})
            return
        warm, session.warm_bot = session.warm_bot, None  # warmed for token_room, i.e. this room
        if session.voice is not None and session.room != room:
            await engine.release_voice(session)
        if bad.join_twice_two_bots and session.bot is not None and session.room == room and not bad.no_bot:
            # Every livekit_join starts a bot: the one already in the room is forgotten, not removed
            session.strays.append(StrayBot(room, session.bot))
            session.bot = None
        session.voice, session.room = "livekit", room
        if session.bot is not None or bad.no_bot:  # no_bot set after the token: the warm bot must go
            await engine.discard_warm_bot(warm, keep_room=True)
        else:
            joining = warm or WarmBot(room, asyncio.ensure_future(self._start_bot(session, room)))
            try:
                session.bot = await asyncio.wait_for(joining.joined(), READY_WITHIN)
            except Exception as exc:
                # The join runs on (shielded); whenever it ends, its bot leaves and the room goes.
                engine.spawn(engine.discard_warm_bot(joining))
                reason = f"no bot within {READY_WITHIN:g} s" if isinstance(exc, TimeoutError) else str(exc)
                log.warning("bot could not join %s: %s", room, reason)
                await engine.emit(session, "livekit_error", {"error": f"the bot could not join room {room}: {reason}"})
                await engine.release_voice(session)
                return
        session.touch()
        if not bad.no_livekit_ready:
            await engine.emit(session, "livekit_ready", {"room": f"{room}-wrong" if bad.ready_wrong_room else room})
        self.fill_standby()  # now, not at the token: its join would have slowed the client's

    async def _start_bot(self, session: Session, room: str, identity: str | None = None) -> RemoteBot:
        """A bot joining ``room`` for ``session``."""
        assert session.player_id is not None and session.session_id is not None
        return await self._join_bot(
            room, session.player_id, self._hearing(session), {SESSION_ATTRIBUTE: session.session_id}, identity
        )

    async def _join_bot(
        self,
        room: str,
        listen_to: str | None,
        on_speech: OnSpeech | None,
        attributes: dict[str, str],
        identity: str | None = None,
    ) -> RemoteBot:
        engine = self.engine
        livekit = engine.settings.livekit
        assert livekit is not None
        identity = identity or f"bot-{secrets.token_hex(6)}"
        return await engine.bots.join(
            url=livekit.ws_url,
            token=bot_token(livekit, identity=identity, room=room, attributes={STATE_ATTRIBUTE: "idle", **attributes}),
            identity=identity,
            listen_to=listen_to,
            on_speech=on_speech,
            pitch=engine.settings.bot_pitch_hz,
        )

    def _hearing(self, session: Session) -> OnSpeech | None:
        """What the session's bot does with an utterance: nothing when deaf."""
        engine = self.engine

        async def on_speech(event: SttEvent) -> None:
            await engine.heard(session, event)

        return None if engine.bad(session).bot_deaf else on_speech

    # -- the bot worker died -------------------------------------------------------------------

    async def recover(self, code: int) -> None:
        """The bot worker died (BotHost has started a new one): every session in LiveKit voice gets its
        bot back in its room, under the same identity (LiveKit drops the dead one at once), within
        ``REJOIN_BOUND``, or ``livekit_error`` saying why and its voice released; warm bots of
        pending joins are joined again; the standby is replaced."""
        engine = self.engine
        if engine.closing:
            return
        await asyncio.gather(
            *(self._rejoin(s, code) for s in list(engine.sessions.values()) if s.voice == "livekit" or s.warm_bot)
        )
        standby = engine.standby
        if standby is not None and (not standby.joining.done() or not _alive(standby)):
            engine.standby = None
            engine.spawn(engine.discard_warm_bot(standby))
        self.fill_standby()

    async def _rejoin(self, session: Session, code: int) -> None:
        engine = self.engine
        warm = session.warm_bot
        if warm is not None and (not warm.joining.done() or not _alive(warm)):
            session.warm_bot = WarmBot(warm.room, asyncio.ensure_future(self._start_bot(session, warm.room)))
        bot, room = session.bot, session.room
        if session.voice != "livekit" or room is None or (bot is not None and bot.alive):
            return
        if bot is not None:
            engine.bots.listeners.pop(bot.name, None)
        if engine.bad(session).no_bot:
            return
        try:
            joining = self._start_bot(session, room, bot.identity if bot is not None else None)
            new = await asyncio.wait_for(joining, REJOIN_BOUND)
        except Exception as exc:
            log.warning("the bot of %s could not come back after its worker died: %s", session.session_id, exc)
            if session.room == room:
                await engine.emit(
                    session,
                    "livekit_error",
                    {"error": f"the bot worker died (exit code {code}) and the bot could not rejoin room {room}: "
                     f"{type(exc).__name__}: {exc}"},
                )  # fmt: skip
                await engine.release_voice(session)
            return
        if session.room != room or engine.sessions.get(session.sid) is not session:
            await new.leave()  # voice ended while the bot came back
            return
        session.bot = new
        log.info("the bot of %s is back in room %s after its worker died", session.session_id, room)

    # -- the standby bot ----------------------------------------------------------------------

    def fill_standby(self) -> None:
        """Have a bot wait in a fresh room for the next voice start, unless one is there or coming.

        A bot already in the room costs the client's connect nothing; one joining beside it costs
        it 20-30 % more on 2 cores (bench/voice_handshake.py, its pair floor).
        """
        engine = self.engine
        if engine.standby is not None or engine.closing or engine.settings.livekit is None:
            return
        if engine.settings.bot_warmup:
            room = engine.new_room_name()
            engine.standby = WarmBot(room, asyncio.ensure_future(self._join_bot(room, None, None, {})))

    def take_standby(self) -> WarmBot | None:
        """The standby bot if it is in its room by now, else None (a failed one is cleared away)."""
        standby = self.engine.standby
        if standby is None or not standby.joining.done():
            return None
        self.engine.standby = None
        joining = standby.joining
        if joining.cancelled() or joining.exception() is not None or not joining.result().alive:
            self.engine.spawn(self.engine.discard_warm_bot(standby))
            return None
        return standby

    async def _serve(self, standby: WarmBot, session: Session) -> RemoteBot:
        """The standby bot, now listening to ``session``'s player and naming the session."""
        assert session.player_id is not None and session.session_id is not None
        bot = await standby.joined()
        try:
            await bot.serve(session.player_id, self._hearing(session), {SESSION_ATTRIBUTE: session.session_id})
        except BaseException:
            await bot.leave()
            raise
        return bot

    async def on_leave(self, session: Session, _payload: Any) -> None:
        warm = session.warm_bot
        if warm is not None and session.voice != "livekit" and self.engine.bad(session).leave_mid_handshake_keeps_room:
            # Teardown written for live voice only: the bot warmed up for the token stays in its room
            session.strays.append(StrayBot(warm.room, warm))
            session.warm_bot = None
        await self.engine.release_voice(session)
        self.fill_standby()


def _alive(warm: WarmBot) -> bool:
    """A settled warm bot's join succeeded and its worker still runs."""
    joining = warm.joining
    return not joining.cancelled() and joining.exception() is None and joining.result().alive


def _turn_mode_ok(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("turn_mode", "push_to_talk") in TURN_MODES


def _join_payload_ok(payload: dict[str, Any]) -> bool:
    room = payload.get("room")
    return (room is None or isinstance(room, str)) and payload.get("turn_mode", "push_to_talk") in TURN_MODES
