"""The shape of a rollout in ``salt/pipeline.yaml``: sizes (a count or a percentage), the canary, the gates a
batch must pass, and the check that a batch schedule grows."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from pipeline.config.base import MINION_ID_RE, Model

_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class Size(Model):
    """A number of minions: an absolute ``count`` or a ``percent`` of a population (rounded up, at least 1)."""

    count: int | None = None
    percent: float | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Size":
        if (self.count is None) == (self.percent is None):
            raise ValueError("give either a count or a percentage")
        if self.count is not None and self.count < 1:
            raise ValueError("a count must be at least 1")
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ValueError("a percentage must be in (0%, 100%]")
        return self

    @classmethod
    def parse(cls, value: Any) -> "Size":
        """Accept ``3``, ``"3"``, ``"5%"`` or ``{"count": 3}`` / ``{"percent": 5}``."""
        if isinstance(value, Size):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a count like 3 or a percentage like '5%', got {value!r}")
        if isinstance(value, int):
            return cls(count=value)
        if isinstance(value, str):
            match = _PERCENT_RE.match(value)
            if match:
                return cls(percent=float(match.group(1)))
            if value.strip().isdigit():
                return cls(count=int(value))
        if isinstance(value, dict):
            return cls(**value)
        raise ValueError(f"expected a count like 3 or a percentage like '5%', got {value!r}")

    def of(self, population: int) -> int:
        """How many of ``population`` minions this size means: at least 1 (if any), at most all of them."""
        if population <= 0:
            return 0
        if self.count is not None:
            return min(self.count, population)
        assert self.percent is not None
        # Ceiling without float drift: 1% of 10,000 is 100, not 101.
        n = -(-round(self.percent * 1000) * population // 100_000)
        return max(1, min(n, population))

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        pct = f"{self.percent:g}"
        return f"{pct}%"


class Canary(Model):
    """The first batch: explicit minion ``ids``, or a ``size`` (count or percentage) of the target."""

    ids: tuple[str, ...] = ()
    size: Size | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {"ids": tuple(value)}
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return {"size": Size.parse(value)}
        if isinstance(value, dict) and "size" in value:
            return {**value, "size": Size.parse(value["size"])}
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "Canary":
        if bool(self.ids) == (self.size is not None):
            raise ValueError("give the canary as a list of minion ids, a count (1) or a percentage ('1%')")
        for minion in self.ids:
            if not MINION_ID_RE.match(minion):
                raise ValueError(f"{minion!r} is not a valid minion id")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("canary ids must be unique")
        return self

    def describe(self) -> str:
        return ", ".join(self.ids) if self.ids else str(self.size)


class HealthCheck(Model):
    """Checked on every minion of a batch after it passes its gate: a Salt function, or an HTTP URL.

    ``url`` may contain ``{minion}`` and ``{host}`` (the minion's ``fqdn`` grain).
    """

    function: str | None = None
    args: tuple[Any, ...] = ()
    url: str | None = None
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "HealthCheck":
        if (self.function is None) == (self.url is None):
            raise ValueError("give either 'function' (a Salt function) or 'url' (an HTTP URL)")
        if self.function is not None and not re.match(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", self.function):
            raise ValueError(f"{self.function!r} is not a Salt function name like 'ops_app.health'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{self.url!r} must start with http:// or https://")
        return self


class Gates(Model):
    """When a batch counts as passed."""

    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    max_missing_ratio: float = Field(default=0.0, ge=0, le=1)
    bake_seconds: float = Field(default=0, ge=0)
    health_check: HealthCheck | None = None


def schedule_problems(name: str, batches: tuple[Size, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """A percentage is a cumulative share of the fleet (docs/rollout.md), so each must be above every earlier
    one: ``50%, 25%`` would make the 25% batch add nobody - the schedule was surely meant otherwise."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    highest: Size | None = None
    for i, size in enumerate(batches):
        if size.percent is None:
            continue
        if highest is not None and highest.percent is not None and size.percent <= highest.percent:
            problems.append((
                ("environments", name, "batches", i),
                f"batch {size} does not grow the rollout: percentages are cumulative shares of the fleet and "
                f"{highest} came earlier; give increasing percentages (e.g. '5%', '25%', '100%') or a count",
            ))
        else:
            highest = size
    return problems
