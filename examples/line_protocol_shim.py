"""A JSON-lines shim around pytest_estuary's EstuaryClient: --estuary-client "cmd:python line_protocol_shim.py"."""

import asyncio
import dataclasses
import json
import sys
from typing import Any

from pytest_estuary.client import EstuaryClient, EstuaryError

TIMEOUTS = ("token_timeout", "ready_timeout", "connect_timeout")
EVENTS = ("connected", "disconnected", "stt_response", "bot_response", "livekit_connected", "livekit_disconnected",
          "voice_timeout", "session_timeout")  # the app events, by this project's names


def send(message: dict[str, Any]) -> None:
    print(json.dumps(message, default=str), flush=True)  # one line a message, flushed at once


def event(name: str, payload: Any = None) -> None:  # livekit_connected's payload is the room's name
    body = {"room": payload} if isinstance(payload, str) else dataclasses.asdict(payload) if payload else {}
    send({"event": name, "payload": body})


async def main() -> None:
    send({"hello": {"name": "example-shim", "version": "0.1", "capabilities": ["observable_transport"], "protocol": 1}})
    client: Any = None
    while line := await asyncio.to_thread(sys.stdin.readline):  # "" at EOF: disconnect and exit
        request = json.loads(line)
        op, reply = request["op"], {"id": request["id"], "ok": True, "result": None}
        try:
            if op == "create":
                s = request["settings"]
                client = EstuaryClient(s["server_url"], s["api_key"], s["character_id"], s["player_id"],
                                       voice_transport=s["voice_transport"], **{k: s[k] for k in TIMEOUTS})
                for name in EVENTS:
                    client.on(name, lambda *payload, name=name: event(name, *payload))
            elif op == "state":
                reply["result"] = {"transport": client.transport, "room": client.room, "muted": client.is_muted,
                                   "voice_active": client.is_voice_active, "input_open": client.audio_input.is_open}
            elif op == "toggle_mute":
                reply["result"] = client.toggle_mute()
            elif op in ("connect", "start_voice", "stop_voice", "send_text", "disconnect"):
                result = await getattr(client, op)(*([request["text"]] if op == "send_text" else []))
                reply["result"] = result if op == "start_voice" else None  # the transport in use
            else:
                reply = {"id": request["id"], "ok": False, "unsupported": f"this shim has no {op!r}"}
        except EstuaryError as exc:
            cause = exc.__cause__ and f"{type(exc.__cause__).__name__}: {exc.__cause__}"
            error = {"code": exc.code.value, "message": str(exc), "raw": type(exc).__name__, "cause": cause}
            reply = {"id": request["id"], "ok": False, "error": error}
        send(reply)
    if client is not None:
        await client.disconnect()


asyncio.run(main())
