"""The fake server's state and the actions every handler shares: emit, reply, release voice.

Everything here runs on the server's own event loop; the public, thread-safe face is
:class:`fake_server.server.FakeEstuaryServer`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import socketio
from livekit import api

from fake_server.bot_host import BotError, BotHost, RemoteBot
from fake_server.eventlog import EventLog
from fake_server.misbehaviour import Misbehaviour
from fake_server.redact import redact_text, redact_value
from fake_server.sessions import Session, WarmBot
from fake_server.stt import SttEvent, Transcripts
from fake_server.text import Brain, reply_chunks
from fake_server.tokens import LiveKitConfig
from fake_server.utterances import UtteranceLibrary
from fake_server.voice_synth import BOT_PITCH_HZ, synthesize

__all__ = ["NAMESPACE", "Engine", "EngineSettings"]

log = logging.getLogger("fake_server")
NAMESPACE = "/sdk"
CHUNK_DELAY = 0.005  # between streamed chunks: a stream, yet a fast one
BOT_VOICE_CHUNK_SECONDS = 0.2
DELETE_BOUND = 3.0  # a LiveKit server that accepts and never answers must not hold up a shutdown
ERROR_EVENTS = frozenset({"error", "auth_error", "livekit_error", "voice_error"})
REPLY_EVENTS = frozenset({"bot_response", "bot_voice"})


@dataclass(frozen=True)
class EngineSettings:
    api_keys: tuple[str, ...]
    livekit: LiveKitConfig | None
    token_ttl: float = 600.0
    session_idle_timeout: float | None = None
    voice_idle_timeout: float | None = None
    bot_pitch_hz: float = BOT_PITCH_HZ
    bot_warmup: bool = True  # a standby bot, and bots in the room before livekit_join (LK-11)


class Engine:
    """Sessions, misbehaviour, scripts and the event log, plus the actions handlers share."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: EngineSettings,
        events: EventLog,
        utterances: UtteranceLibrary | None = None,
    ) -> None:
        self.sio = sio
        self.utterances = utterances or UtteranceLibrary()
        self.settings = settings
        self.events = events
        self.sessions: dict[str, Session] = {}
        self.misbehaviour = Misbehaviour()
        self.per_player: dict[str, Misbehaviour] = {}
        self.brain = Brain()
        self.transcripts = Transcripts()
        self.closing = False
        self.closed = False
        self._lk_api: api.LiveKitAPI | None = None
        self.bots = BotHost()
        self.standby: WarmBot | None = None  # a bot waiting in a fresh room for the next voice start
        self._background: set[asyncio.Task[None]] = set()
        # This server's rooms, apart from other servers' on a shared LiveKit server (live_rooms).
        self.room_prefix = f"estuary-{secrets.token_hex(3)}-"

    # -- lookups ------------------------------------------------------------------------------

    def bad(self, session: Session | None) -> Misbehaviour:
        """The misbehaviour in force for ``session``: its player's own, else the server-wide one."""
        if session is not None and session.player_id in self.per_player:
            return self.per_player[session.player_id]
        return self.misbehaviour

    def lk_api(self) -> api.LiveKitAPI:
        assert self.settings.livekit is not None
        if self._lk_api is None:  # created lazily: it needs this loop's aiohttp session
            lk = self.settings.livekit
            self._lk_api = api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret)
        return self._lk_api

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work that belongs to no session; awaited by :meth:`aclose`."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Remove every bot (the worker's exit takes them all at once, joins under way too), delete
        every room, close the LiveKit API session."""
        self.closing = True  # no new standby bot from here on
        await self.bots.aclose()
        for session in list(self.sessions.values()):
            await self.release_voice(session)
            await self.release_strays(session)
        standby, self.standby = self.standby, None
        await self.discard_warm_bot(standby)
        await asyncio.gather(*self._background, return_exceptions=True)
        self.closed = True  # sockets closing after this must not open a new API session
        if self._lk_api is not None:
            await self._lk_api.aclose()
            self._lk_api = None

    # -- wire ---------------------------------------------------------------------------------

    async def emit(self, session: Session, name: str, payload: dict[str, Any]) -> None:
        """Send one event with its one object argument (WIRE-1), unless told to misbehave.

        Error texts may quote what the client sent: they are redacted by value first."""
        if name in ERROR_EVENTS:
            payload = redact_value(payload)
        if name in REPLY_EVENTS and self.bad(session).second_socket_steals_replies:
            session = self._newest_socket_of(session)
        self.events.record(session.sid, session.session_id, "out", name, payload)
        if self.bad(session).no_argument_events:
            await self.sio.emit(name, namespace=NAMESPACE, to=session.sid)
        else:
            await self.sio.emit(name, payload, namespace=NAMESPACE, to=session.sid)

    def _newest_socket_of(self, session: Session) -> Session:
        """second_socket_steals_replies: replies are routed by player, to the player's newest socket."""
        same = [s for s in self.sessions.values() if s.authenticated and s.player_id == session.player_id]
        return same[-1] if same else session  # the dict keeps connect order

    async def error(self, session: Session, message: str) -> None:
        await self.emit(session, "error", {"message": message})

    def violation(self, session: Session, rule: str, expected: str, actual: str) -> None:
        expected, actual = redact_text(expected), redact_text(actual)
        log.info("client violation %s by %s: expected %s, actual %s", rule, session.session_id, expected, actual)
        self.events.violation(session.session_id, rule, expected, actual)

    # -- session life -------------------------------------------------------------------------

    def open_session(self, session: Session, character_id: str, player_id: str, sample_rate: int) -> dict[str, Any]:
        """Mark ``session`` authenticated; returns the session_info payload to send."""
        session.session_id = f"sess-{uuid.uuid4().hex[:16]}"
        session.conversation_id = f"conv-{uuid.uuid4().hex[:16]}"
        session.character_id, session.player_id, session.audio_sample_rate = character_id, player_id, sample_rate
        session.touch()
        return {
            "session_id": session.session_id,
            "conversation_id": session.conversation_id,
            "character_id": character_id,
            "player_id": player_id,
        }

    async def end_session(self, session: Session) -> None:
        self.sessions.pop(session.sid, None)
        await self.release_voice(session)
        await self.release_strays(session)
        for task in list(session.tasks):
            task.cancel()

    async def session_timeout(self, session: Session) -> None:
        idle = time.monotonic() - session.last_activity
        timeout = self.settings.session_idle_timeout or idle
        await self.emit(
            session,
            "session_timeout",
            {"reason": "inactivity", "idle_seconds": round(idle, 3), "timeout_seconds": timeout},
        )
        await self.release_voice(session)
        await self.sio.disconnect(session.sid, namespace=NAMESPACE)

    async def voice_timeout(self, session: Session) -> None:
        idle = time.monotonic() - session.voice_activity
        timeout = self.settings.voice_idle_timeout or idle
        await self.emit(
            session,
            "voice_timeout",
            {"reason": "voice_inactivity", "idle_seconds": round(idle, 3), "timeout_seconds": timeout},
        )
        await self.release_voice(session)

    async def release_voice(self, session: Session) -> None:
        """Close STT, remove the bot (a warm one too) and delete the rooms; safe to call twice."""
        bot, room = session.bot, session.room
        if session.voice is not None:
            session.voice_released_at = time.monotonic()
        session.bot, session.room, session.detector, session.voice = None, None, None, None
        warm, session.warm_bot = session.warm_bot, None
        await self.discard_warm_bot(warm)
        if bot is not None:
            await bot.leave()
        # The token's room goes too, joined or not (LK-9: every room the session was given): the
        # client may have connected to it without a livekit_join, and then nothing else ends it.
        # join_twice_two_bots: a room is deleted when its last bot is gone, and a stray bot counts.
        for gone in dict.fromkeys(r for r in (room, session.token_room) if r is not None):
            if not any(stray.room == gone for stray in session.strays):
                await self.delete_room(gone)

    async def release_strays(self, session: Session) -> None:
        """Remove the bots a sequence-only misbehaviour lost track of, and delete their rooms."""
        strays, session.strays = session.strays, []
        for stray in strays:
            if isinstance(stray.bot, WarmBot):
                await self.discard_warm_bot(stray.bot)
            else:
                await stray.bot.leave()
                await self.delete_room(stray.room)

    async def discard_warm_bot(self, warm: WarmBot | None, *, keep_room: bool = False) -> None:
        """Remove a bot that warmed up ahead of livekit_join, and its room unless ``keep_room``."""
        if warm is None:
            return
        bot = await warm.settled()
        if bot is not None:
            await bot.leave()
        if not keep_room:
            await self.delete_room(warm.room)

    async def delete_room(self, room: str) -> None:
        if self.settings.livekit is None or self.closed:
            return
        try:
            await asyncio.wait_for(self.lk_api().room.delete_room(api.DeleteRoomRequest(room=room)), DELETE_BOUND)
        except TimeoutError:
            log.warning("the LiveKit server did not delete room %s within %.0f s", room, DELETE_BOUND)
        except Exception as exc:  # a room nobody joined does not exist: nothing to delete
            log.debug("delete_room(%s): %s", room, exc)

    # -- replies ------------------------------------------------------------------------------

    async def reply(self, session: Session, said: str, *, text_only: bool = False) -> None:
        """Stream a reply as bot_response chunks, then voice it (LiveKit track or bot_voice audio)."""
        session.messages += 1
        message_id = f"msg-{uuid.uuid4().hex[:12]}"
        session.recent_replies.append(message_id)
        reply = self.brain.reply(said)
        streamed = asyncio.Event()
        # On LiveKit the bot starts saying the reply while its text streams (its audio is on its
        # way longer than the text is); bot_voice still follows the text (TEXT-2).
        voicing = None if text_only else asyncio.ensure_future(self.speak(session, reply, message_id, streamed))
        session.streaming += 1
        cut = False
        try:
            for chunk in reply_chunks(reply, message_id):
                # stale_interrupt_cuts_next_reply: an interrupt that found no reply streaming is
                # taken by the next one, which stops after its first chunk (there always is a second)
                if chunk["chunk_index"] == 1 and session.interrupt_armed:
                    session.interrupt_armed, cut = False, True
                    break
                if chunk["is_final"]:  # no pause after it: the stream ends as it goes out
                    await self.emit(session, "bot_response", chunk)
                    break
                await self.emit(session, "bot_response", chunk)
                await asyncio.sleep(CHUNK_DELAY)
        except BaseException:
            if voicing is not None:
                voicing.cancel()
            raise
        finally:
            session.streaming -= 1
            streamed.set()
        if voicing is not None and cut:
            voicing.cancel()
            await asyncio.gather(voicing, return_exceptions=True)
        elif voicing is not None:
            await voicing

    async def speak(
        self, session: Session, text: str, message_id: str | None = None, streamed: asyncio.Event | None = None
    ) -> None:
        """Voice ``text``: on the bot's LiveKit track (bot_voice is metadata, LK-8) or as bot_voice audio.

        One reply is voiced at a time per session (protocol.md §9): a reply that comes while another
        is spoken waits for it to end (a queue, in order; the session's end drops what waits), so
        bot_voice chunks and bot audio never interleave. Queue, not interrupt: cutting a reply short
        is the client's call (client_interrupt), not the server's."""
        message_id = message_id or f"msg-{uuid.uuid4().hex[:12]}"
        text_streamed = streamed or asyncio.Event()
        if streamed is None:
            text_streamed.set()  # nothing to wait for: say_line, or a caller that streamed already
        async with session.speaking:
            bot = session.bot
            if session.voice == "livekit" and bot is not None:
                await self._speak_on_track(session, bot, text, message_id, text_streamed)
            else:
                await text_streamed.wait()
                await self._bot_voice_audio(session, text, message_id)

    async def _speak_on_track(
        self, session: Session, bot: RemoteBot, text: str, message_id: str, text_streamed: asyncio.Event
    ) -> None:
        saying = None if self.bad(session).bot_silent else asyncio.ensure_future(bot.speak(text, message_id))
        try:
            await text_streamed.wait()
            if saying is None:
                return
            await self.emit(session, "bot_voice", {"message_id": message_id, "chunk_index": 0, "is_livekit": True})
            await saying
        except BotError as exc:  # the reply itself went out; its voice is lost
            log.warning("the bot of %s could not speak: %s", session.session_id, exc)
        finally:
            if saying is not None and not saying.done():
                saying.cancel()

    async def _bot_voice_audio(self, session: Session, reply: str, message_id: str) -> None:
        rate = session.audio_sample_rate
        pcm = synthesize(reply, rate, self.settings.bot_pitch_hz)
        step = round(rate * BOT_VOICE_CHUNK_SECONDS)
        starts = list(range(0, len(pcm), step))
        for index, start in enumerate(starts):
            data = pcm[start : start + step].astype("<i2").tobytes()
            await self.emit(
                session,
                "bot_voice",
                {
                    "audio": base64.b64encode(data).decode("ascii"),
                    "message_id": message_id,
                    "chunk_index": index,
                    "is_final": index == len(starts) - 1,
                    "sample_rate": rate,
                },
            )
            await asyncio.sleep(CHUNK_DELAY)

    async def heard(self, session: Session, event: SttEvent) -> None:
        """An utterance event from the fake STT: interim at its start, final (and a reply) at its end."""
        session.touch()
        if event.kind == "start":
            await self.emit(session, "stt_response", {"text": "…", "is_final": False})
            return
        session.utterances += 1
        recognised = None if self.transcripts.scripted else self.utterances.recognise(event.fingerprint)
        transcript = self.transcripts.next(session.utterances, recognised)
        await self.emit(session, "stt_response", {"text": transcript, "is_final": True})
        session.spawn(self.reply(session, transcript))

    def new_room_name(self) -> str:
        return f"{self.room_prefix}{secrets.token_hex(6)}"
