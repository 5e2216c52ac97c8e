"""The model of ``notifications:`` in salt/pipeline.yaml; :mod:`pipeline.notify` sends what it configures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NotifyEvent = Literal["started", "halted", "rolled_back", "finished"]
ALL_EVENTS: tuple[NotifyEvent, ...] = ("started", "halted", "rolled_back", "finished")
WEBHOOK_ENV = "SALTPIPE_NOTIFY_WEBHOOK"


class NotifySettings(BaseModel):
    """``notifications:`` of salt/pipeline.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_env: str = Field(default=WEBHOOK_ENV, pattern=r"^[A-Z_][A-Z0-9_]*$")
    gitlab: bool = True
    events: tuple[NotifyEvent, ...] = ALL_EVENTS
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: Base URL of `saltpipe serve`, for a link to the rollout's page in every message.
    status_url: str | None = Field(default=None, pattern=r"^https?://")
