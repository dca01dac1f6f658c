"""The out-of-process adapter: a client in any language, driven through a shim speaking JSON lines.

One shim process per client. The harness writes requests to the shim's stdin, one JSON object a
line; the shim writes replies, events and log lines to its stdout; its stderr is free text kept for
diagnostics. The protocol (README, "Testing your own client"):

- shim → harness, first: ``{"hello": {"name", "version", "capabilities": [...], "protocol": 1}}``
- harness → shim: ``{"id": n, "op": "create", "settings": {...}}``, then one request per action
  (``connect``, ``start_voice``, ``stop_voice``, ``toggle_mute``, ``send_text`` + ``text``, ``say`` +
  ``pcm16`` (base64) and ``sample_rate``, ``state``, ``disconnect``); ``{"op": "cancel", "id": n}``
  when the harness stopped waiting for request n (no reply)
- shim → harness: ``{"id": n, "ok": true, "result": ...}``, ``{"id": n, "ok": false, "error":
  {"code", "message", "raw", "cause"}}``, ``{"id": n, "ok": false, "unsupported": "reason"}``, and
  unsolicited ``{"event": name, "payload": {...}}`` and ``{"log": {"level", "message"}}``
- EOF on stdin: the shim releases its client and exits.

A shim that dies, writes something that is not a protocol line, or does not answer in time raises
:class:`ShimError` naming the command, what was expected, what came and its last stderr lines.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import os
import re
import shlex
import signal
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from pytest_estuary.clients.interface import (
    LIVEKIT_LIBRARY_ENV,
    ClientFailure,
    ClientInfo,
    ClientSettings,
    ClientState,
    ClientUnderTest,
    Unsupported,
)

__all__ = [
    "HELLO_TIMEOUT",
    "PROTOCOL_VERSION",
    "JsonLinesClient",
    "ShimError",
    "probe",
    "request_timeout",
]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
HELLO_TIMEOUT = 30.0  # a Python shim importing livekit on a loaded 2-core machine takes seconds
REQUEST_MARGIN = 10.0  # on top of the client's own timeouts: process hops, a slow create
CLOSE_TIMEOUT = 5.0  # stdin closed → the shim must exit within this, else it is killed
DISCONNECT_AT_CLOSE = 10.0  # aclose's disconnect request: a hung shim must not stall teardown
LINE_LIMIT = 64 * 1024 * 1024  # one protocol line (a long say() is megabytes of base64)
STDERR_KEPT = 40  # lines of the shim's stderr kept for error messages
SHOWN = 300  # characters of an offending line shown in an error

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_LEVELS = {"WARN": logging.WARNING, "FATAL": logging.CRITICAL}


def request_timeout(settings: ClientSettings) -> float:
    """How long the harness waits for one reply: a voice start may spend the token, connect and ready
    timeouts one after the other, so their sum (not the largest) plus a margin for the process hop."""
    return settings.token_timeout + settings.connect_timeout + settings.ready_timeout + REQUEST_MARGIN


class ShimError(RuntimeError):
    """The shim process broke the line protocol: died, wrote a non-protocol line, or did not answer."""


class _Shim:
    """One shim process: its pipes, the drained stderr, and redaction of secrets in what is shown."""

    def __init__(self, command: list[str], process: asyncio.subprocess.Process, secrets: list[str]) -> None:
        self.command, self.process = command, process
        self.secrets = [secret for secret in secrets if secret]
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_KEPT)
        self.closed = False
        self._stderr_task = asyncio.create_task(self._drain_stderr(), name=f"shim stderr {process.pid}")

    @classmethod
    async def spawn(cls, command: list[str], env: dict[str, str], secrets: list[str]) -> _Shim:
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                limit=LINE_LIMIT,
                start_new_session=True,  # its own process group: killed as a whole, children included
            )
        except OSError as exc:
            raise ShimError(f"JSON-lines shim {shlex.join(command)!r}: cannot start it: {exc}") from exc
        return cls(command, process, secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _JWT.sub("eyJ***", text)

    def shown(self, line: bytes | str) -> str:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = self.redact(text.rstrip("\n"))
        return repr(text if len(text) <= SHOWN else text[: SHOWN - 3] + "...")

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while True:
            try:
                line = await self.process.stderr.readline()
            except ValueError:  # a line over the limit: keep its end
                line = b"(stderr line over the limit)\n"
            if not line:
                return
            self.stderr.append(self.redact(line.decode("utf-8", "replace").rstrip()))

    async def error(self, expected: str | _Later, came: str) -> ShimError:
        """A ShimError naming the command, what was expected and what came, with its stderr's last lines
        (after a moment for the stderr of a dying shim to arrive)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5 if self.process.returncode is None else 2.0)
        status = "running" if self.process.returncode is None else f"exit status {self.process.returncode}"
        tail = "\n".join(f"  | {line}" for line in self.stderr) or "  (nothing)"
        return ShimError(
            f"JSON-lines shim {shlex.join(self.command)!r} (pid {self.process.pid}, {status}): "
            f"expected {expected}; came {came}\nits last stderr lines:\n{tail}"
        )

    async def read_line(
        self, expecting: str | Callable[[], str], timeout: float | None, bound: float | None = None
    ) -> dict[str, Any]:
        """The next stdout line as a JSON object; ShimError on EOF, a bad line or the timeout.
        ``expecting`` says what was awaited (a callable: asked when the line came); ``bound`` is the
        whole wait that ``timeout`` is the rest of, for the message."""
        assert self.process.stdout is not None
        expected = expecting if isinstance(expecting, str) else _Later(expecting)
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise await self.error(expected, f"nothing within {bound or timeout:g} s") from None
        except (ValueError, asyncio.LimitOverrunError):
            raise await self.error(expected, f"a line longer than {LINE_LIMIT} bytes") from None
        if not line:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 2.0)
            raise await self.error(expected, "end of its stdout (the shim exited or closed it)")
        try:
            message = json.loads(line)
        except ValueError:
            raise await self.error(expected, f"a line that is not JSON: {self.shown(line)}") from None
        if not isinstance(message, dict):
            raise await self.error(expected, f"JSON that is not an object: {self.shown(line)}")
        return message

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.process.stdin.drain()

    async def close(self, grace: float | None = None) -> None:
        """Close stdin, wait up to ``grace`` seconds (CLOSE_TIMEOUT) for the exit, then kill its process
        group (a shim that already broke the protocol gets no grace)."""
        grace = CLOSE_TIMEOUT if grace is None else grace
        process = self.process
        if self.closed:
            return
        self.closed = True
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
            with contextlib.suppress(OSError):
                await process.stdin.wait_closed()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            if grace > 0:
                log.warning(
                    "JSON-lines shim %r (pid %d) did not exit within %g s of stdin's EOF; killing it",
                    shlex.join(self.command),
                    process.pid,
                    grace,
                )
        # the group too: a shell or launcher may have left its children running
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stderr_task, 2.0)
        self._stderr_task.cancel()


class _Later:
    """What the reader expected, worked out when the line came (the pending requests change)."""

    def __init__(self, describe: Callable[[], str]) -> None:
        self.describe = describe

    def __str__(self) -> str:
        return self.describe()


def _environment(livekit_library: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(LIVEKIT_LIBRARY_ENV, None)  # an inherited value must not leak into a "present" run
    if livekit_library != "present":
        env[LIVEKIT_LIBRARY_ENV] = livekit_library
    return env


async def _hello(shim: _Shim, warnings: list[str] | None = None) -> ClientInfo:
    """Read lines up to the hello (log lines may come first); its ClientInfo."""
    expected = 'the hello line {"hello": {"name", "version", "capabilities", "protocol": 1}}'
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HELLO_TIMEOUT
    while True:
        message = await shim.read_line(expected, max(deadline - loop.time(), 0.01), HELLO_TIMEOUT)
        if "log" in message and isinstance(message["log"], dict):
            text = _log_text(message["log"], shim)
            if text is not None and warnings is not None:
                warnings.append(text)
            continue
        hello = message.get("hello")
        if not isinstance(hello, dict):
            raise await shim.error(expected, shim.shown(json.dumps(message)))
        protocol = hello.get("protocol")
        if protocol != PROTOCOL_VERSION:
            raise await shim.error(f"a hello with protocol {PROTOCOL_VERSION}", f"protocol {protocol!r}")
        capabilities = hello.get("capabilities", [])
        if not isinstance(hello.get("name"), str) or not isinstance(capabilities, list):
            raise await shim.error(
                'a hello with a string "name" and a list "capabilities"', shim.shown(json.dumps(message))
            )
        return ClientInfo(str(hello["name"]), str(hello.get("version", "?")), frozenset(map(str, capabilities)))


def _log_text(entry: dict[str, Any], shim: _Shim) -> str | None:
    """A shim log line: its message when WARNING or worse (the harness's warnings), else logged at
    debug here and None."""
    level_name = str(entry.get("level", "WARNING")).upper()
    level = _LEVELS.get(level_name, logging.getLevelName(level_name))
    message = str(entry.get("message", ""))
    if not isinstance(level, int):
        level = logging.WARNING  # an unknown level name is not quietly dropped
    if level >= logging.WARNING:
        return message
    log.debug("shim %d: %s %s", shim.process.pid, level_name, shim.redact(message))
    return None


class JsonLinesClient(ClientUnderTest):
    """A :class:`ClientUnderTest` whose client lives in a shim process (see the module docstring)."""

    def __init__(self, settings: ClientSettings, shim: _Shim, info: ClientInfo) -> None:
        super().__init__(settings)
        self.info = info
        self.command = shim.command
        self.timeout = request_timeout(settings)
        self._shim = shim
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}  # id → (op, its reply)
        self._failure: ShimError | None = None  # the protocol broke: every later request raises it
        self._failure_raised = False
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pid(self) -> int:
        return self._shim.process.pid

    @property
    def returncode(self) -> int | None:
        """The shim's exit status once it is gone (negative: killed by that signal)."""
        return self._shim.process.returncode

    @classmethod
    async def start(cls, command: list[str], settings: ClientSettings) -> JsonLinesClient:
        """Spawn the shim, read its hello, and have it create the client from ``settings``.

        Unsupported or ClientFailure when the shim refuses the settings; ShimError when it breaks the
        protocol. The process is gone when this raises."""
        shim = await _Shim.spawn(command, _environment(settings.livekit_library), [settings.api_key])
        try:
            warnings: list[str] = []
            info = await _hello(shim, warnings)
            client = cls(settings, shim, info)
            client.warnings.extend(warnings)
            client._reader = asyncio.create_task(client._read(), name=f"shim reader {shim.process.pid}")
            await client._request("create", settings=settings.to_json())
        except ShimError:
            await shim.close(grace=0)
            raise
        except BaseException:
            await shim.close()
            raise
        return client

    # --- the line traffic ---
    async def _read(self) -> None:
        shim = self._shim
        try:
            while True:
                message = await shim.read_line(self._expecting, None)
                await self._dispatch(message)
        except ShimError as exc:
            self._fail(exc)
        except asyncio.CancelledError:
            self._fail(ShimError(f"JSON-lines shim {shlex.join(self.command)!r}: the client was closed"))
            raise

    def _expecting(self) -> str:
        waiting = ", ".join(f"{op!r} (id {ident})" for ident, (op, _) in self._pending.items())
        return f"the reply to {waiting}, an event or a log line" if waiting else "an event or a log line"

    async def _dispatch(self, message: dict[str, Any]) -> None:
        shim = self._shim
        if "id" in message:
            ident = message["id"]
            _, future = self._pending.pop(ident, ("", None)) if isinstance(ident, int) else ("", None)
            if future is None:
                if isinstance(ident, int) and 0 < ident <= self._next_id:
                    return  # the reply to a request the harness stopped waiting for (cancelled)
                raise await shim.error(
                    f"a reply to one of the requests sent (ids 1..{self._next_id})", shim.shown(json.dumps(message))
                )
            if not future.done():
                future.set_result(message)
        elif "event" in message:
            name, payload = message["event"], message.get("payload") or {}
            if not isinstance(name, str) or not isinstance(payload, dict):
                raise await shim.error(
                    'an event line {"event": name, "payload": {...}}', shim.shown(json.dumps(message))
                )
            self.record_event(name, payload)
        elif "log" in message and isinstance(message["log"], dict):
            text = _log_text(message["log"], shim)
            if text is not None:
                self.record_warning(text)
        else:
            raise await shim.error("a reply, event or log line", shim.shown(json.dumps(message)))

    def _fail(self, error: ShimError) -> None:
        if self._failure is None:
            self._failure = error
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(self._failure)
        self._pending.clear()

    def _raise_failure(self) -> NoReturn:
        assert self._failure is not None
        self._failure_raised = True
        raise self._failure

    async def _request(self, op: str, **fields: Any) -> Any:
        """Send one request and return its result; ClientFailure / Unsupported as the shim answered."""
        if self._failure is not None:
            self._raise_failure()
        self._next_id += 1
        ident = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = (op, future)
        try:
            try:
                await self._shim.send({"id": ident, "op": op, **fields})
            except (ConnectionError, OSError):
                await asyncio.sleep(0.2)  # let the reader see the EOF and say why the shim is gone
                if self._failure is None:
                    self._fail(await self._shim.error(f"to take request {op!r} on its stdin", "a closed pipe"))
                self._raise_failure()
            try:
                reply = await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                error = await self._shim.error(f"the reply to {op!r} (id {ident})", f"none within {self.timeout:g} s")
                self._fail(error)
                self._raise_failure()
            except ShimError:
                self._failure_raised = True
                raise
        except asyncio.CancelledError:
            if self._pending.pop(ident, None) is not None and self._failure is None:
                with contextlib.suppress(ConnectionError, OSError):
                    await asyncio.shield(self._shim.send({"op": "cancel", "id": ident}))
            raise
        return await self._result(op, ident, reply)

    async def _result(self, op: str, ident: int, reply: dict[str, Any]) -> Any:
        ok = reply.get("ok")
        if ok is True:
            return reply.get("result")
        if ok is False:
            if "unsupported" in reply:
                raise Unsupported(
                    f"{self.info.name} {self.info.version} via the shim cannot {op}: {reply['unsupported']}"
                )
            error = reply.get("error")
            if isinstance(error, dict):
                raise ClientFailure.from_json(error)
        expected = (
            f'for id {ident} ({op!r}): "ok": true with "result", or "ok": false with "error": '
            '{"code", "message", "raw", "cause"} or "unsupported"'
        )
        failure = await self._shim.error(expected, self._shim.shown(json.dumps(reply)))
        self._fail(failure)
        self._raise_failure()

    # --- the actions ---
    async def connect(self) -> None:
        await self._request("connect")

    async def start_voice(self) -> str:
        transport = await self._request("start_voice")
        if not isinstance(transport, str):
            self._fail(await self._shim.error("start_voice's result: the transport as a string", repr(transport)))
            self._raise_failure()
        return str(transport)

    async def stop_voice(self) -> None:
        await self._request("stop_voice")

    async def toggle_mute(self) -> bool:
        muted = await self._request("toggle_mute")
        if not isinstance(muted, bool):
            self._fail(await self._shim.error("toggle_mute's result: the new is_muted as a boolean", repr(muted)))
            self._raise_failure()
        return bool(muted)

    async def send_text(self, text: str) -> None:
        await self._request("send_text", text=text)

    async def say(self, pcm16: bytes, sample_rate: int) -> None:
        await self._request("say", pcm16=base64.b64encode(pcm16).decode("ascii"), sample_rate=sample_rate)

    async def state(self) -> ClientState:
        result = await self._request("state")
        if not isinstance(result, dict):
            self._fail(await self._shim.error("state's result: an object of ClientState fields", repr(result)))
            self._raise_failure()
        return ClientState.from_json(result)

    async def disconnect(self) -> None:
        await self._request("disconnect")

    async def aclose(self) -> None:
        """Disconnect (if the shim still speaks), close its stdin, wait ≤ 5 s, then kill it.

        Raised after the process is gone: a ClientFailure or ShimError of that disconnect, or the
        shim's earlier failure if no call has raised it yet (it died while nobody asked)."""
        if self._closed:
            return
        self._closed = True
        raised: BaseException | None = None
        try:
            if self._failure is None and self._shim.process.returncode is None:
                self.timeout = min(self.timeout, DISCONNECT_AT_CLOSE)
                await self._request("disconnect")
        except Unsupported:
            pass  # a shim without disconnect: closing its stdin is its disconnect
        except (ClientFailure, ShimError) as exc:
            raised = exc
        finally:
            if raised is None and self._failure is not None and not self._failure_raised:
                raised = self._failure
            await self._shim.close(grace=0 if self._failure is not None else None)
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
            self._failure = ShimError(f"JSON-lines shim {shlex.join(self.command)!r}: the client was closed")
            self._failure_raised = True
        if raised is not None:
            raise raised


def probe(command: list[str]) -> ClientInfo:
    """Start the shim, read its hello, close it: who the client is (for the report). ShimError on
    failure. Safe to call with an event loop running in this thread (it then uses its own thread)."""

    async def run() -> ClientInfo:
        shim = await _Shim.spawn(command, _environment("present"), [])
        try:
            info = await _hello(shim)
        except ShimError:
            await shim.close(grace=0)
            raise
        await shim.close()
        return info

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    result: list[ClientInfo] = []
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            result.append(asyncio.run(run()))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=in_thread, name="shim probe")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
