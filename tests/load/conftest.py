"""tests/load: estuary-load against standalone fakes (tests/ is no package: helpers by name)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
