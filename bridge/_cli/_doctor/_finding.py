"""One line of the doctor's diagnosis."""

from __future__ import annotations

import dataclasses

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One line of the diagnosis: what, where, and the fix."""

    severity: str  # "error", "warning" or "info"
    what: str
    where: str = ""
    fix: str = ""
