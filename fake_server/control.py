"""The HTTP control API (JSON), for clients in other processes: misbehave, script, read, reset.

Every route needs ``Authorization: Bearer <control token>`` (printed at start; the scheme in any
case, a bare token is refused). Every error is ``{"error": "..."}``: 400 bad input, 401 no or wrong
token, 404 no such route, 405 wrong method, 500 a failure of the server itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fake_server.misbehaviour import MisbehaviourError
from fake_server.redact import redact_text

if TYPE_CHECKING:
    from fake_server.server import FakeEstuaryServer

__all__ = ["add_control_routes", "json_errors"]

log = logging.getLogger("fake_server.control")
PREFIX = "/control"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413, …) as ``{"error": …}`` too, not its plain-text pages."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.reason
        if isinstance(exc, web.HTTPMethodNotAllowed):
            text = (
                f"{request.method} is not allowed on {request.path}; allowed: {', '.join(sorted(exc.allowed_methods))}"
            )
        elif isinstance(exc, web.HTTPNotFound):
            text = f"no route {redact_text(request.path)[:200]}"
        response = web.json_response({"error": text}, status=exc.status)
        for header in ("Allow", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), else None."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def add_control_routes(app: web.Application, server: FakeEstuaryServer) -> None:
    def guarded(handler: Any) -> Any:
        async def wrapper(request: web.Request) -> web.Response:
            given = bearer_token(request.headers.get("Authorization", ""))
            if given is None or not hmac.compare_digest(given.encode(), server.control_token.encode()):
                return web.json_response(
                    {"error": "missing or wrong control token: send the header Authorization: Bearer <control_token>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="fake_server control"'},
                )
            try:
                body = await request.json() if request.can_read_body else {}
            except ValueError:
                return web.json_response({"error": "the request body must be JSON"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"error": "the request body must be a JSON object"}, status=400)
            try:
                return web.json_response(await handler(request, body))
            except (MisbehaviourError, ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            except Exception as exc:
                log.exception("control API %s %s failed", request.method, request.path)
                return web.json_response({"error": f"the fake server failed: {type(exc).__name__}"}, status=500)

        return wrapper

    async def state(_request: web.Request, _body: dict[str, Any]) -> dict[str, Any]:
        engine = server.engine
        return {
            "url": server.url,
            "sessions": [asdict(view) for view in await server._views()],
            "misbehaviour": engine.misbehaviour.active(),
            "per_player": {player: m.active() for player, m in engine.per_player.items()},
        }

    async def misbehave(_request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        player_id = body.pop("player_id", None)
        if player_id is not None and not isinstance(player_id, str):
            raise ValueError(f"player_id must be a string, got {player_id!r}")
        in_force = await server.amisbehave(player_id, body)
        return {"misbehaviour": in_force.active(), "player_id": player_id}

    async def script(_request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"transcripts", "replies"}
        if unknown:
            raise ValueError(f"unknown script fields {sorted(unknown)}; expected transcripts and/or replies")
        transcripts, replies = body.get("transcripts", []), body.get("replies", [])
        if not isinstance(transcripts, list) or not isinstance(replies, list):
            raise ValueError("transcripts and replies must be lists of strings")
        await server.ascript(transcripts, replies)
        return {"ok": True}

    async def events(request: web.Request, _body: dict[str, Any]) -> dict[str, Any]:
        name = request.query.get("name")
        direction = request.query.get("direction")
        if direction not in (None, "in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        found = server.events.find(name=name, direction=direction)  # type: ignore[arg-type]
        return {
            "events": [e.as_json() for e in found],
            "violations": [asdict(v) for v in server.events.violations],
        }

    async def utterances(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        """GET: the known recordings. POST ``{"directory"}`` or ``{"transcript", "wav": <base64 WAV>}``."""
        if request.method == "POST":
            if set(body) == {"directory"} and isinstance(body["directory"], str):
                await asyncio.to_thread(server.add_utterances, body["directory"])
            elif set(body) == {"transcript", "wav"} and all(isinstance(body[k], str) for k in body):
                try:
                    wav = base64.b64decode(body["wav"], validate=True)
                except binascii.Error:
                    raise ValueError("wav must be the base64 of a WAV file") from None
                await asyncio.to_thread(server.add_utterance, body["transcript"], wav)
            else:
                raise ValueError('expected {"directory": path} or {"transcript": text, "wav": base64 of a WAV file}')
        known = server.utterances.known
        return {
            "utterances": [
                {"name": k.name, "transcript": k.transcript, "seconds": k.fingerprint.seconds} for k in known
            ]
        }

    async def reset(_request: web.Request, _body: dict[str, Any]) -> dict[str, Any]:
        await server.areset()
        return {"ok": True}

    def trigger(kind: str) -> Any:
        async def handler(_request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
            player_id = body.get("player_id")
            if player_id is not None and not isinstance(player_id, str):
                raise ValueError(f"player_id must be a string, got {player_id!r}")
            return {"sessions": await server.atrigger(kind, player_id)}

        return handler

    app.router.add_get(f"{PREFIX}/state", guarded(state))
    app.router.add_post(f"{PREFIX}/misbehave", guarded(misbehave))
    app.router.add_post(f"{PREFIX}/script", guarded(script))
    app.router.add_get(f"{PREFIX}/events", guarded(events))
    app.router.add_post(f"{PREFIX}/reset", guarded(reset))
    app.router.add_get(f"{PREFIX}/utterances", guarded(utterances))
    app.router.add_post(f"{PREFIX}/utterances", guarded(utterances))
    app.router.add_post(f"{PREFIX}/session_timeout", guarded(trigger("session")))
    app.router.add_post(f"{PREFIX}/voice_timeout", guarded(trigger("voice")))
