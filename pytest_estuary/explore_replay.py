"""The one line that replays an explorer finding: parsed here, where the settings validate it.

Three forms:
- a seed (``12345``): the exploration again from that seed;
- a finding's steps (``TEXT-1:open_socket(slot=p1,style=connect);interrupt(slot=p1,form=2,back=0)``):
  the requirement, then the explorer's rules with their arguments, run in that order; this is the
  line a report gives, readable and independent of the hypothesis version;
- a hypothesis finding (``LK-9@6.170.27:AXicY2Bg…``: the requirement, the hypothesis version and its
  ``@reproduce_failure`` blob), as earlier versions reported; hypothesis' own
  ``@reproduce_failure('6.170.27', b'AXic…')`` text is accepted with the requirement in front.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ExploreReplay", "ReplayError", "ReplayStep", "parse_replay"]

Value = str | int | bool
_ID = r"(?P<id>[A-Z]+-\d+)"
_FINDING = re.compile(_ID + r"@(?P<version>\d+(?:\.\d+)+):(?P<blob>[A-Za-z0-9+/=]+)")
_DECORATOR = re.compile(
    _ID + r"\s*@reproduce_failure\(\s*['\"](?P<version>\d+(?:\.\d+)+)['\"]\s*,\s*"
    r"b['\"](?P<blob>[A-Za-z0-9+/=]+)['\"]\s*\)"
)
_STEPS = re.compile(_ID + r":(?P<steps>.+)")
_STEP = re.compile(r"(?P<rule>[a-z_]+)\((?P<args>[^()]*)\)")
_ARG = re.compile(r"(?P<name>[a-z_]+)=(?P<value>[A-Za-z0-9_.-]+)")
FORMS = (
    "a seed (an integer ≥ 0), a finding's steps 'ID:rule(name=value,…);rule(…)' "
    "(e.g. 'TEXT-1:open_socket(slot=p1,style=connect)') or 'ID@HYPOTHESIS_VERSION:BLOB'"
)


class ReplayError(ValueError):
    """Replay text that is none of the forms."""


@dataclass(frozen=True)
class ReplayStep:
    """One explorer rule and the arguments it ran with (names as the rule declares them)."""

    rule: str
    args: tuple[tuple[str, Value], ...] = ()

    def text(self) -> str:
        return f"{self.rule}({','.join(f'{name}={value}' for name, value in self.args)})"


@dataclass(frozen=True)
class ExploreReplay:
    """A parsed replay line: ``seed``; or ``requirement`` with ``steps``, or with ``version`` and ``blob``."""

    seed: int | None = None
    requirement: str | None = None
    version: str | None = None
    blob: str | None = None
    steps: tuple[ReplayStep, ...] = ()

    @property
    def is_finding(self) -> bool:
        return self.requirement is not None

    def line(self) -> str:
        """The text form, as ``--estuary-explore-replay`` takes it."""
        if self.steps:
            return f"{self.requirement}:{';'.join(step.text() for step in self.steps)}"
        if self.blob is not None:
            return f"{self.requirement}@{self.version}:{self.blob}"
        return str(self.seed)


def parse_replay(text: str) -> ExploreReplay:
    """The replay line ``text``; :class:`ReplayError` says which forms are understood and what is wrong."""
    stripped = text.strip()
    if stripped.isdigit():
        return ExploreReplay(seed=int(stripped))
    found = _FINDING.fullmatch(stripped) or _DECORATOR.fullmatch(stripped)
    if found is not None:
        return ExploreReplay(requirement=found["id"], version=found["version"], blob=found["blob"])
    steps = _STEPS.fullmatch(stripped)
    if steps is not None:
        return ExploreReplay(requirement=steps["id"], steps=tuple(_steps(steps["steps"])))
    raise ReplayError(f"--estuary-explore-replay must be {FORMS}, got {_shown(stripped)!r}")


def _steps(text: str) -> list[ReplayStep]:
    parsed = []
    for n, part in enumerate(text.split(";"), 1):
        step = _STEP.fullmatch(part.strip())
        if step is None:
            raise ReplayError(f"--estuary-explore-replay: step {n} must be 'rule(name=value,…)', got {_shown(part)!r}")
        args = []
        for item in filter(None, (a.strip() for a in step["args"].split(","))):
            arg = _ARG.fullmatch(item)
            if arg is None:
                raise ReplayError(f"--estuary-explore-replay: step {n}'s argument must be 'name=value', got {item!r}")
            args.append((arg["name"], _value(arg["value"])))
        parsed.append(ReplayStep(step["rule"], tuple(args)))
    return parsed


def _value(text: str) -> Value:
    if text in ("True", "False"):
        return text == "True"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:59] + "…"
