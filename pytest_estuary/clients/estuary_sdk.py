"""The official Python SDK (``estuary-sdk`` 0.8.0) as a client under test, in this process.

The SDK is driven the way its README drives voice: ``EstuaryClient`` plus a ``VoiceSession`` (which
owns the SDK's ``AudioRecorder`` and ``AudioPlayer``). Both audio classes talk to sounddevice; here
they are subclassed so that their "device" is a thread at real-time pace: the recorder's input
stream reads the speech given to :meth:`EstuarySdkClient.say` (silence otherwise), the player's
output stream consumes the bot's audio. Everything else (device fallback, the recording flag, the
drain, resampling, the playback markers) is the SDK's own code.

Settings the SDK has no setting for, so they are ignored (never Unsupported):

- ``token_timeout`` and ``ready_timeout``: ``EstuaryClient.start_voice`` builds its voice manager
  without a timeout, so the manager's fixed 10 s applies to the ``livekit_token`` reply, to
  ``livekit_ready`` and to WebSocket ``voice_started``;
- ``connect_timeout``: the room connect gets no ``RoomOptions``; livekit.rtc's own default applies
  (5 s per signal attempt).

``reconnect`` is ``EstuaryConfig.auto_reconnect``. The SDK exposes neither the transport in use nor
the room: both are read from its voice manager (a private attribute), see :func:`transport_of`.

What the adapter adds, as an app would: ``stop_voice``/``send_text`` return once the SDK's
fire-and-forget emits are written (bounded); a new ``start_voice`` first stops a VoiceSession whose
voice the SDK itself dropped (voice_timeout, session_timeout). Warnings are the ``estuary_sdk``
logger's lines: module-wide, so two SDK clients in one process see each other's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from estuary_sdk import EstuaryClient, EstuaryConfig, VoiceMode, VoiceSession
from estuary_sdk import __version__ as SDK_VERSION
from estuary_sdk.audio.player import AudioPlayer
from estuary_sdk.audio.recorder import AudioRecorder

from pytest_estuary import audio
from pytest_estuary.client.audio_input import resample
from pytest_estuary.clients.interface import (
    APP_EVENTS,
    ClientFailure,
    ClientInfo,
    ClientSettings,
    ClientState,
    ClientUnderTest,
)
from pytest_estuary.clients.ours import failure_from, jsonable

__all__ = ["CAPABILITIES", "SDK_LOGGER", "EstuarySdkClient", "PortAudioError", "transport_of"]

# livekit_library: the adapter never imports livekit itself, so the shim can block or break it before
# the SDK first imports it (at the first LiveKit start_voice).
CAPABILITIES = frozenset({"livekit_library", "unavailable_microphone", "task_count", "reconnect_setting"})
SDK_LOGGER = "estuary_sdk"  # the only logger the SDK writes to
BLOCK_SECONDS = 0.02  # the SDK's recorder and player both use 20 ms device blocks
MAX_LAG_SECONDS = 0.2  # a device thread further behind than this drops the backlog (a real device overruns)
EMIT_FLUSH_SECONDS = 1.0  # how long an action waits for the events it queued to be written
_EMIT_TASK = "emit_event.<locals>._emit"  # the coroutine SocketManager.emit_event schedules (0.8.0)

log = logging.getLogger(__name__)
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")  # livekit.rtc quotes a refused token whole in its error


def _redacted(text: str) -> str:
    return _JWT.sub("<JWT redacted>", text)


def _failure(exc: Exception) -> ClientFailure:
    """What the SDK raised, as ours (:func:`failure_from`), with any JWT cut out of the texts."""
    failure = failure_from(exc)
    cause = None if failure.cause is None else _redacted(failure.cause)
    return ClientFailure(failure.code, _redacted(failure.message), raw=failure.raw, cause=cause)


class PortAudioError(OSError):
    """Stands in for ``sounddevice.PortAudioError``: what opening an input stream raises when the
    device cannot be opened (``microphone="unavailable"``)."""


class _Speech:
    """Mono PCM16 queued for the microphone, read out in order at the reader's rate; silence when empty."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: deque[list[Any]] = deque()  # [pcm, rate, position]

    def add(self, pcm: audio.PCM16, rate: int) -> None:
        with self._lock:
            self._segments.append([pcm, rate, 0])

    def read(self, samples: int, rate: int) -> audio.PCM16:
        out = np.zeros(samples, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < samples and self._segments:
                segment = self._segments[0]
                if segment[1] != rate:
                    segment[0], segment[1], segment[2] = resample(segment[0][segment[2] :], segment[1], rate), rate, 0
                pcm, _, position = segment
                take = min(samples - filled, len(pcm) - position)
                out[filled : filled + take] = pcm[position : position + take]
                filled += take
                segment[2] = position + take
                if segment[2] >= len(pcm):
                    self._segments.popleft()
        return out


class _DeviceStream:
    """Stands in for a sounddevice stream: a thread calls the SDK's stream callback once per block,
    at real-time pace. An input stream hands it ``read(frames)``; an output stream a buffer to fill."""

    def __init__(
        self,
        samplerate: int,
        blocksize: int,
        callback: Callable[..., None],
        read: Callable[[int], audio.PCM16] | None = None,
    ) -> None:
        self.samplerate, self.blocksize, self.callback, self.read = samplerate, blocksize, callback, read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="estuary-sdk-device", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    abort = close = stop

    def _run(self) -> None:
        period = self.blocksize / self.samplerate
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.read is not None:
                    self.callback(self.read(self.blocksize).reshape(-1, 1), self.blocksize, None, None)
                else:
                    self.callback(memoryview(bytearray(2 * self.blocksize)), self.blocksize, None, None)
            except Exception:  # sounddevice would abort the stream; keep the thread honest and say so
                log.exception("the SDK's audio callback raised; the synthetic device stops")
                return
            due += period
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -MAX_LAG_SECONDS:
                due = time.monotonic()


class _SyntheticRecorder(AudioRecorder):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's recorder with a synthetic device: the speech queue, or a device that cannot be opened."""

    def __init__(self, sample_rate: int, on_audio: Callable[[bytes], Any], speech: _Speech, available: bool) -> None:
        # AudioRecorder.__init__ (0.8.0) refuses to run without sounddevice; these are the attributes it sets.
        self._target_rate = sample_rate
        self._device_rate = sample_rate
        self._device_rate_resolved = False
        self._on_audio = on_audio
        self._stream: _DeviceStream | None = None
        self._recording = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight_count = 0
        self._in_flight_lock = threading.Lock()
        self._drain_event: asyncio.Event | None = None
        self.speech, self.available = speech, available

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def _resolve_device_rate(self) -> int:
        self._device_rate_resolved = True
        return int(self._target_rate)

    def _candidate_input_devices(self) -> list[int | None]:
        return [None]  # the system default, as on a machine with one input device

    def _open_stream(self, device: int | None) -> _DeviceStream:
        if not self.available:
            raise PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
        rate = int(self._device_rate)
        return _DeviceStream(rate, rate // 50, self._audio_callback, lambda n: self.speech.read(n, rate))


class _SinkPlayer(AudioPlayer):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's player with a synthetic output device that consumes audio in real time."""

    def __init__(self, sample_rate: int, on_playback_event: Callable[[str, str | None], None]) -> None:
        # AudioPlayer.__init__ (0.8.0) refuses to run without sounddevice; these are the attributes it sets.
        self._sample_rate = sample_rate
        self._on_event = on_playback_event
        self._volume = 1.0
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._bytes_written = 0
        self._bytes_consumed = 0
        self._markers: deque[tuple[int, str, bool]] = deque()
        self._stream: _DeviceStream | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._silence_frames = 0
        self._current_message_id: str | None = None
        self._stream_opening = False
        self._open_mutex = threading.Lock()
        self.closed = False  # set by the adapter: a disposed player never opens its device again

    def _ensure_stream(self) -> None:
        with self._open_mutex:
            if self._stream is not None or self.closed:
                return
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # opened from a worker thread: the loop captured by start() stays
            self._silence_frames = 0
            self._stream = _DeviceStream(self._sample_rate, self._sample_rate // 50, self._audio_callback)
            self._stream.start()


async def _sdk_emits_written(timeout: float = EMIT_FLUSH_SECONDS) -> None:
    """Wait (bounded) for the SDK's fire-and-forget emits queued so far: ``SocketManager.emit_event``
    returns before the event is written, so an action would otherwise return before its event left."""
    pending = [task for task in asyncio.all_tasks() if _EMIT_TASK in getattr(task.get_coro(), "__qualname__", "")]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def transport_of(client: Any) -> str | None:
    """The transport of the SDK client's voice manager ("livekit"/"websocket"), None without one.

    0.8.0 has no public way to tell: ``start_voice()`` returns None and the config keeps the value
    asked for, not the one in use; the manager (``client._voice``) is the only witness."""
    name = type(getattr(client, "_voice", None)).__name__
    return {"LiveKitVoiceManager": "livekit", "WebSocketVoiceManager": "websocket"}.get(name)


def _room_of(client: Any) -> str | None:
    room = getattr(getattr(client, "_voice", None), "_room", None)
    name = getattr(room, "name", None)
    return name if isinstance(name, str) and name else None


def _payload(name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """An SDK app event's arguments as this project's JSON-able payload; tokens never leave."""
    value = args[0] if args else None
    if name == "livekit_connected":
        return {"room": value}
    if name == "disconnected":
        return {"reason": value}
    if name == "connected" and dataclasses.is_dataclass(value) and not isinstance(value, type):
        session = dataclasses.asdict(value)
        if session.get("livekit_token"):
            session["livekit_token"] = "<redacted>"
        return {"session": session}
    return jsonable(value)


class _Warnings(logging.Handler):
    def __init__(self, client: EstuarySdkClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        self.client.record_warning(_redacted(record.getMessage()))


class EstuarySdkClient(ClientUnderTest):
    """Drives an ``estuary_sdk.EstuaryClient`` built from the settings, voice through ``VoiceSession``."""

    def __init__(self, settings: ClientSettings) -> None:
        super().__init__(settings)
        self.info = ClientInfo("estuary-sdk", SDK_VERSION, CAPABILITIES)
        self.config = EstuaryConfig(
            server_url=settings.server_url,
            api_key=settings.api_key,
            character_id=settings.character_id,
            player_id=settings.player_id,
            voice_transport=settings.voice_transport,  # as given, "auto" and unknown values included
            auto_reconnect=settings.reconnect,
        )
        self.client = EstuaryClient(self.config)
        for name in sorted(APP_EVENTS):
            self.client.on(name, self._recorder(name))
        self.speech = _Speech()
        self.session: Any = None  # the VoiceSession whose start succeeded (or left voice started)
        self._players: list[_SinkPlayer] = []
        self._recorders: list[_SyntheticRecorder] = []
        self._log_handler = _Warnings(self)
        logging.getLogger(SDK_LOGGER).addHandler(self._log_handler)

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.record_event(name, _payload(name, args))

        return record

    async def connect(self) -> None:
        try:
            await self.client.connect()
        except Exception as exc:
            raise _failure(exc) from exc

    async def start_voice(self) -> str:
        """A fresh ``VoiceSession`` (continuous mode) with the synthetic recorder and player, as an app
        starts voice; returns the transport of the SDK's voice manager."""
        if self.session is not None and not self.client.is_voice_active:
            await self._end_session()  # the SDK dropped voice itself (voice_timeout, room gone): the app cleans up
        rate = int(self.config.audio_sample_rate)
        session = VoiceSession(self.client, VoiceMode.CONTINUOUS, sample_rate=rate)
        # VoiceSession builds these only when unset; its default playback callback, as it would wire it:
        player = _SinkPlayer(rate, self._playback_event)
        recorder = _SyntheticRecorder(
            rate, self.client.send_audio, self.speech, self.settings.microphone == "synthetic"
        )
        session._player, session._recorder = player, recorder
        self._players.append(player)
        self._recorders.append(recorder)
        try:
            await session.start()
        except Exception as exc:
            if session.is_started:
                self.session = session  # voice started, the microphone failed: the SDK keeps voice running
            else:
                await self._dispose_player(player)
            raise _failure(exc) from exc
        self.session = session
        transport = transport_of(self.client)
        if transport is None:
            raise ClientFailure(None, "the SDK started voice but has no voice manager", raw="adapter")
        return transport

    def _playback_event(self, event: str, message_id: str | None) -> None:
        if event == "complete" and message_id:
            self.client.notify_audio_playback_complete(message_id)

    async def stop_voice(self) -> None:
        try:
            if self.session is not None:
                await self._end_session()  # VoiceSession.stop: drain + close the input, stop_voice, player off
            else:
                await self.client.stop_voice()
        except Exception as exc:
            raise _failure(exc) from exc
        await _sdk_emits_written()

    async def toggle_mute(self) -> bool:
        try:
            self.client.toggle_mute()
        except Exception as exc:
            raise _failure(exc) from exc
        return bool(self.client.is_muted)

    async def send_text(self, text: str) -> None:
        try:
            self.client.send_text(text)
        except Exception as exc:
            raise _failure(exc) from exc
        await _sdk_emits_written()

    async def say(self, pcm16: bytes, sample_rate: int) -> None:
        self.speech.add(audio.from_bytes(pcm16), sample_rate)

    async def state(self) -> ClientState:
        active = bool(self.client.is_voice_active)
        return ClientState(
            # after a failed start the SDK keeps the dead manager in client._voice: not a transport in use
            transport=transport_of(self.client) if active else None,
            room=_room_of(self.client),
            voice_active=active,
            muted=bool(self.client.is_muted),
            input_open=any(recorder.is_open for recorder in self._recorders),
            tasks=len(asyncio.all_tasks()),
        )

    async def disconnect(self) -> None:
        recording = [recorder for recorder in self._recorders if recorder.is_open]
        for recorder in recording:  # hold the microphone so no chunk meets a voice manager being torn down
            await recorder.drain()
        try:
            await self.client.disconnect()
        except Exception as exc:
            raise _failure(exc) from exc
        finally:
            await self._end_session()

    async def aclose(self) -> None:
        try:
            try:
                await self.client.disconnect()
            except Exception:
                log.debug("the SDK's disconnect failed during aclose", exc_info=True)
            await self._end_session()
            # a refused connect leaves engine.io's aiohttp session open; the SDK's disconnect skips it
            http = getattr(getattr(self.client._socket.sio, "eio", None), "http", None)
            if http is not None and not http.closed:
                await http.close()
            for recorder in self._recorders:
                await recorder.stop()
            for player in self._players:
                await self._dispose_player(player)
        finally:
            logging.getLogger(SDK_LOGGER).removeHandler(self._log_handler)

    async def _end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            player = session._player  # VoiceSession.stop forgets it
            await session.stop()  # swallows its own failures (logs them at DEBUG)
            if isinstance(player, _SinkPlayer):
                await self._dispose_player(player)

    @staticmethod
    async def _dispose_player(player: _SinkPlayer) -> None:
        player.closed = True
        await player.dispose()
