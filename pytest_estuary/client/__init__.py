"""The Estuary client: the seed page's LiveKit voice, transport rules and error codes, in Python.

    async with EstuaryClient(url, api_key, "character", "player") as client:
        await client.start_voice()
        payload = await client.wait_for("stt_response", predicate=lambda r: r.is_final)  # an SttResponse

Errors are :class:`EstuaryError` with a documented :class:`ErrorCode`; events and their payload
types are in :data:`EVENT_PAYLOADS` (``on``/``wait_for`` are typed per event).
"""

from __future__ import annotations

from pytest_estuary.client.audio_input import (
    AudioInput,
    MicrophoneAudioInput,
    Playback,
    SyntheticAudioInput,
    WavAudioInput,
)
from pytest_estuary.client.bot_audio import BotAudio
from pytest_estuary.client.client import EstuaryClient
from pytest_estuary.client.config import ClientConfig, VoiceTransport
from pytest_estuary.client.emitter import HistoryEntry
from pytest_estuary.client.errors import ConfigError, ErrorCode, EstuaryError, EventTimeout
from pytest_estuary.client.event_api import EVENT_PAYLOADS, EventName
from pytest_estuary.client.events import (
    AuthError,
    BotResponse,
    BotVoice,
    Connected,
    Disconnected,
    Interrupt,
    LiveKitDisconnected,
    LiveKitError,
    LiveKitReady,
    LiveKitToken,
    PayloadError,
    ServerError,
    SessionInfo,
    SessionTimeout,
    SttResponse,
    VoiceError,
    VoiceStarted,
    VoiceStopped,
    VoiceTimeout,
)
from pytest_estuary.client.selection import Transport, livekit_installed, select_transport
from pytest_estuary.client.teardown import TeardownFailure

__all__ = [
    "EVENT_PAYLOADS",
    "AudioInput",
    "AuthError",
    "BotAudio",
    "BotResponse",
    "BotVoice",
    "ClientConfig",
    "ConfigError",
    "Connected",
    "Disconnected",
    "ErrorCode",
    "EstuaryClient",
    "EstuaryError",
    "EventName",
    "EventTimeout",
    "HistoryEntry",
    "Interrupt",
    "LiveKitDisconnected",
    "LiveKitError",
    "LiveKitReady",
    "LiveKitToken",
    "MicrophoneAudioInput",
    "PayloadError",
    "Playback",
    "ServerError",
    "SessionInfo",
    "SessionTimeout",
    "SttResponse",
    "SyntheticAudioInput",
    "TeardownFailure",
    "Transport",
    "VoiceError",
    "VoiceStarted",
    "VoiceStopped",
    "VoiceTimeout",
    "VoiceTransport",
    "WavAudioInput",
    "livekit_installed",
    "select_transport",
]
