"""The first adapter: this project's own client, :class:`pytest_estuary.client.EstuaryClient`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, cast

from pytest_estuary.clients.interface import (
    APP_EVENTS,
    ClientFailure,
    ClientInfo,
    ClientSettings,
    ClientState,
    ClientUnderTest,
    Unsupported,
)

__all__ = ["CAPABILITIES", "OurClient", "failure_from", "jsonable"]

CAPABILITIES = frozenset(
    {"livekit_library", "unavailable_microphone", "task_count", "reconnect_setting", "observable_transport"}
)
SECRET_FIELDS = ("token", "key", "secret")  # an embedded LiveKit token must not reach a report


def failure_from(exc: Exception) -> ClientFailure:
    """A client exception as a :class:`ClientFailure`: its ``code`` if it has an error-code enum."""
    code = getattr(getattr(exc, "code", None), "value", None)
    cause = exc.__cause__
    return ClientFailure(
        code if isinstance(code, str) else None,
        str(exc) or type(exc).__name__,
        raw=f"{type(exc).__module__}.{type(exc).__qualname__}",
        cause=None if cause is None else f"{type(cause).__name__}: {cause}",
    )


def jsonable(payload: Any) -> dict[str, Any]:
    """An app event's payload as a JSON-able dict, secrets (tokens, keys) redacted at any depth."""
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        payload = dataclasses.asdict(payload)
    if isinstance(payload, dict):
        return {str(key): _redacted(str(key), value) for key, value in payload.items() if _plain(value)}
    return {} if payload is None else {"value": payload if _plain(payload) else repr(payload)}


def _redacted(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return jsonable(value)
    if value and any(word in key.lower() for word in SECRET_FIELDS):
        return "<redacted>"
    return value


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


class _Warnings(logging.Handler):
    def __init__(self, client: OurClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        self.client.record_warning(record.getMessage())


class OurClient(ClientUnderTest):
    """Drives an :class:`EstuaryClient` built from the settings, in this process."""

    def __init__(self, settings: ClientSettings) -> None:
        from pytest_estuary import __version__
        from pytest_estuary.client import AudioInput, EstuaryClient, MicrophoneAudioInput, SyntheticAudioInput

        super().__init__(settings)
        self.info = ClientInfo("pytest-estuary", __version__, CAPABILITIES)
        microphone: AudioInput = SyntheticAudioInput()
        if settings.microphone == "unavailable":
            microphone = MicrophoneAudioInput(device="no-such-device")
        self.client = EstuaryClient(
            settings.server_url,
            settings.api_key,
            settings.character_id,
            settings.player_id,
            voice_transport=cast(Any, settings.voice_transport),  # SEL-4 passes any string
            audio_input=microphone,
            token_timeout=settings.token_timeout,
            ready_timeout=settings.ready_timeout,
            connect_timeout=settings.connect_timeout,
            reconnect=settings.reconnect,
        )
        for name in sorted(APP_EVENTS):
            self.client.on(cast(Any, name), self._recorder(name))
        self._log_handler = _Warnings(self)
        logging.getLogger("pytest_estuary.client").addHandler(self._log_handler)

    def _recorder(self, name: str) -> Any:
        def record(*payload: Any) -> None:
            value: Any = payload[0] if payload else None
            if name == "livekit_connected" and isinstance(value, str):
                value = {"room": value}
            self.record_event(name, jsonable(value))

        return record

    async def _call(self, action: Any) -> Any:
        try:
            return await action
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise failure_from(exc) from exc

    async def connect(self) -> None:
        await self._call(self.client.connect())

    async def start_voice(self) -> str:
        transport: str = await self._call(self.client.start_voice())
        return transport

    async def stop_voice(self) -> None:
        await self._call(self.client.stop_voice())

    async def toggle_mute(self) -> bool:
        return bool(self.client.toggle_mute())

    async def send_text(self, text: str) -> None:
        await self._call(self.client.send_text(text))

    async def say(self, pcm16: bytes, sample_rate: int) -> None:
        import numpy as np

        from pytest_estuary.client import SyntheticAudioInput

        microphone = self.client.audio_input
        if not isinstance(microphone, SyntheticAudioInput):
            raise Unsupported("say() needs the synthetic microphone; this client has an unavailable one")
        microphone.say(np.frombuffer(pcm16, dtype=np.int16), sample_rate)

    async def state(self) -> ClientState:
        return ClientState(
            transport=self.client.transport,
            room=self.client.room,
            voice_active=self.client.is_voice_active,
            muted=self.client.is_muted,
            input_open=self.client.audio_input.is_open,
            tasks=len(asyncio.all_tasks()),
        )

    async def disconnect(self) -> None:
        await self._call(self.client.disconnect())

    async def aclose(self) -> None:
        try:
            await self.client.disconnect()
        finally:
            logging.getLogger("pytest_estuary.client").removeHandler(self._log_handler)
