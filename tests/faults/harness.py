"""Named crash points for the fault-injection suite.

``BANET_CRASH_AT`` names one or more points, comma-separated, each
``module:qualified.name:moment[:n]``: ``moment`` is ``before`` or ``after`` the ``n``-th call
(default 1) of that function or method, where the process kills itself with SIGKILL (no
``finally``, no ``atexit``, no flush: what a lost node or an OOM kill does).  :func:`install`
wraps the named attributes once, at process start; the project code has no hooks for it.

Examples::

    banet_ops.publish.storage:LocalStore.put_file:after:1      # first product file put
    banet_ops.db.runs:record_publish_token:after               # every file put, before the commit
    banet_ops.cube.writer:write_day:after                      # cube committed, DB not recorded
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV = "BANET_CRASH_AT"
MOMENTS = ("before", "after")


@dataclass(frozen=True)
class CrashPoint:
    module: str
    qualname: str
    moment: str
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> CrashPoint:
        parts = text.strip().split(":")
        if len(parts) not in (3, 4) or parts[2] not in MOMENTS:
            raise ValueError(f"{ENV}: expected module:qualname:before|after[:n], found {text!r}")
        return cls(parts[0], parts[1], parts[2], int(parts[3]) if len(parts) == 4 else 1)

    def __str__(self) -> str:
        return f"{self.module}:{self.qualname}:{self.moment}:{self.n}"


def _die(point: CrashPoint) -> None:
    sys.stderr.write(f"crash point {point} reached: SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(point: CrashPoint, original: Callable[..., Any]) -> Callable[..., Any]:
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        hit = calls[0] == point.n
        if hit and point.moment == "before":
            _die(point)
        result = original(*args, **kwargs)
        if hit and point.moment == "after":
            _die(point)
        return result

    return wrapper


def arm(point: CrashPoint) -> None:
    """Wrap the named function or method so that the process dies at the named moment."""
    owner: Any = importlib.import_module(point.module)
    *path, name = point.qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    if isinstance(raw, staticmethod):
        setattr(owner, name, staticmethod(_wrap(point, raw.__func__)))
    elif isinstance(raw, classmethod):
        setattr(owner, name, classmethod(_wrap(point, raw.__func__)))
    else:
        setattr(owner, name, _wrap(point, raw))


def install(spec: str | None = None) -> list[CrashPoint]:
    """Arm every point named by ``spec`` (default: the ``BANET_CRASH_AT`` environment variable)."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    points = [CrashPoint.parse(p) for p in spec.split(",") if p.strip()]
    for point in points:
        arm(point)
    return points
