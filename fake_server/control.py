"""The HTTP control API (JSON), for clients in other processes: misbehave, script, read, reset.

Every route needs ``Authorization: Bearer <control token>`` (printed at start); errors are
``{"error": "..."}`` with status 400 (bad input) or 401 (no or wrong token).
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fake_server.misbehaviour import MisbehaviourError

if TYPE_CHECKING:
    from fake_server.server import FakeEstuaryServer

__all__ = ["add_control_routes"]

PREFIX = "/control"


def add_control_routes(app: web.Application, server: FakeEstuaryServer) -> None:
    def guarded(handler: Any) -> Any:
        async def wrapper(request: web.Request) -> web.Response:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), server.control_token.encode()):
                return web.json_response(
                    {"error": "missing or wrong control token (Authorization: Bearer …)"}, status=401
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
    app.router.add_post(f"{PREFIX}/session_timeout", guarded(trigger("session")))
    app.router.add_post(f"{PREFIX}/voice_timeout", guarded(trigger("voice")))
