"""The one line that replays an explorer finding: parsed here, where the settings validate it.

Two forms: a seed (``12345``: the exploration again from that seed) or a finding
(``LK-9@6.170.27:AXicY2Bg…``: the requirement, the hypothesis version, and hypothesis'
``@reproduce_failure`` blob, which replays the shrunk sequence's choices exactly).
hypothesis' own ``@reproduce_failure('6.170.27', b'AXic…')`` text is accepted for the latter
with the requirement in front (``LK-9 @reproduce_failure(…)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ExploreReplay", "ReplayError", "parse_replay"]

_FINDING = re.compile(r"(?P<id>[A-Z]+-\d+)@(?P<version>\d+(?:\.\d+)+):(?P<blob>[A-Za-z0-9+/=]+)")
_DECORATOR = re.compile(
    r"(?P<id>[A-Z]+-\d+)\s*@reproduce_failure\(\s*['\"](?P<version>\d+(?:\.\d+)+)['\"]\s*,\s*"
    r"b['\"](?P<blob>[A-Za-z0-9+/=]+)['\"]\s*\)"
)
FORMS = "a seed (an integer ≥ 0) or 'ID@HYPOTHESIS_VERSION:BLOB' (e.g. 'LK-9@6.170.27:AXicY2Bg')"


class ReplayError(ValueError):
    """Replay text that is neither a seed nor a finding line."""


@dataclass(frozen=True)
class ExploreReplay:
    """A parsed replay line: ``seed`` set, or ``requirement``, ``version`` and ``blob`` set."""

    seed: int | None = None
    requirement: str | None = None
    version: str | None = None
    blob: str | None = None

    @property
    def is_finding(self) -> bool:
        return self.blob is not None

    def line(self) -> str:
        """The text form, as ``--estuary-explore-replay`` takes it."""
        if self.blob is not None:
            return f"{self.requirement}@{self.version}:{self.blob}"
        return str(self.seed)


def parse_replay(text: str) -> ExploreReplay:
    """The replay line ``text``; :class:`ReplayError` says which forms are understood."""
    stripped = text.strip()
    if stripped.isdigit():
        return ExploreReplay(seed=int(stripped))
    found = _FINDING.fullmatch(stripped) or _DECORATOR.fullmatch(stripped)
    if found is None:
        shown = stripped if len(stripped) <= 60 else stripped[:59] + "…"
        raise ReplayError(f"--estuary-explore-replay must be {FORMS}, got {shown!r}")
    return ExploreReplay(requirement=found["id"], version=found["version"], blob=found["blob"])
