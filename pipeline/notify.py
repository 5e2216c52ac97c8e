"""Rollout notifications: started / halted / rolled back / finished, to a webhook and as GitLab notes.

Channels:

* a **webhook** (Slack- and Mattermost-compatible incoming webhook: ``POST {"text": "..."}``), its URL from the
  environment variable named by ``notifications.webhook_env`` (default ``SALTPIPE_NOTIFY_WEBHOOK``; a webhook
  URL is a secret, so it is never in the config file);
* **GitLab notes** where a token is set (``SALTPIPE_GITLAB_TOKEN`` with ``CI_SERVER_URL`` and ``CI_PROJECT_ID``):
  a note on each merge request GitLab relates to the release's commit, or a comment on the commit itself when
  there is none.

Contract: notifying never blocks or breaks a rollout. Each delivery is one attempt with a short timeout
(``notifications.timeout_seconds``); every failure - unreachable, an HTTP error, GitLab refusing the token, a
bug in a channel - is caught, logged as a warning and handed back to the executor, which journals it as a
``notify_failed`` event. Nothing is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.config.notify import ALL_EVENTS, NotifyEvent, NotifySettings

log = logging.getLogger(__name__)


class Channel(Protocol):
    """Where a message goes. ``send`` may raise anything; the notifier catches it."""

    name: str

    def send(self, text: str, event: str, plan: Any) -> None: ...


# -- messages -----------------------------------------------------------------------------------------------------


def event_of(record: Mapping[str, Any]) -> NotifyEvent | None:
    """The notification a journal record stands for (None: the record notifies nothing)."""
    event = record.get("event")
    if event == "rollout_started":
        return "started"
    if event == "halted":
        return "halted"
    if event == "rollback_finished" and not record.get("failed") and not record.get("missing"):
        return "rolled_back"
    if event == "rollout_finished":
        return "finished"
    return None


def message(event: NotifyEvent, record: Mapping[str, Any], plan: Any, status_url: str | None = None) -> str:
    """The one-paragraph text of a notification (plain text; Slack and Mattermost render it as is)."""
    kind = "rollback run" if getattr(plan, "kind", "rollout") == "rollback" else "rollout"
    commit = (plan.commit or "")[:12]
    head = f"saltpipe: {kind} {plan.rollout_id} of {plan.release} to {plan.environment}"
    if event == "started":
        sizes = "/".join(str(len(b.minions)) for b in plan.batches)
        text = f"{head} started by {record.get('user')}@{record.get('host')}: {plan.population} minion(s) in " \
               f"{len(plan.batches)} batch(es) ({sizes})" + (f", commit {commit}" if commit else "")
    elif event == "halted":
        batch = record.get("batch")
        name = plan.batches[batch].name if isinstance(batch, int) and batch < len(plan.batches) else None
        text = f"{head} HALTED" + (f" at batch {name}" if name else "") + f": {record.get('reason')}"
    elif event == "rolled_back":
        text = f"{head}: rolled back {record.get('rolled_back')} minion(s) to {plan.previous_release}"
    else:
        outcome = str(record.get("outcome", "?"))
        text = f"{head} finished: {outcome.upper()} ({record.get('batches_run')}/{record.get('batches_planned')} " \
               "batches run)"
    if status_url:
        text += f"\n{status_url.rstrip('/')}/rollouts/{plan.environment}/{plan.rollout_id}"
    return text


# -- channels -----------------------------------------------------------------------------------------------------


class WebhookChannel:
    """POST ``{"text": ...}`` to an incoming webhook (Slack, Mattermost, anything that takes that shape)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, text: str, event: str, plan: Any) -> None:
        import requests  # pylint: disable=import-outside-toplevel

        resp = requests.post(self.url, json={"text": text}, timeout=self.timeout,
                             headers={"User-Agent": "saltpipe-notify"})
        if resp.status_code >= 300:
            raise RuntimeError(f"webhook answered HTTP {resp.status_code}")


class GitLabNotesChannel:
    """A note on each merge request of the release's commit, else a comment on the commit (python-gitlab)."""

    name = "gitlab"

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, text: str, event: str, plan: Any) -> None:
        sha = plan.commit
        if not sha:
            return  # a rollback run or a release built without a commit: nothing in GitLab to attach it to
        mrs = [mr for mr in self.client.commit_merge_requests(sha)
               if sha in (mr.sha, mr.merge_commit_sha, mr.squash_commit_sha)]
        if not mrs:
            self.client.create_commit_comment(sha, text)
            return
        for mr in mrs:
            self.client.create_note(mr.iid, text)


# -- the notifier ---------------------------------------------------------------------------------------------------


@dataclass
class Notifier:
    """Sends the configured events of a rollout to its channels. :meth:`notify` never raises."""

    channels: Sequence[Channel]
    events: tuple[NotifyEvent, ...] = ALL_EVENTS
    status_url: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def notify(self, record: Mapping[str, Any], plan: Any) -> list[dict[str, Any]]:
        """Deliver the notification ``record`` stands for, if any; the failures, one dict per channel."""
        event = event_of(record)
        if event is None or event not in self.events:
            return []
        failures = []
        try:
            text = message(event, record, plan, self.status_url)
        except Exception as exc:  # pylint: disable=broad-except  # a notification must never break a rollout
            return [{"channel": "all", "notification": event, "error": f"{type(exc).__name__}: {exc}"}]
        for channel in self.channels:
            try:
                channel.send(text, event, plan)
            except Exception as exc:  # pylint: disable=broad-except  # idem
                error = f"{type(exc).__name__}: {exc}"
                log.warning("could not send the %s notification of %s to %s: %s", event, plan.rollout_id,
                            channel.name, error)
                failures.append({"channel": channel.name, "notification": event, "error": error[:500]})
            else:
                self.sent.append({"channel": channel.name, "notification": event})
        return failures


def notifier_from_environ(settings: NotifySettings, environ: Mapping[str, str]) -> Notifier | None:
    """The notifier the settings and the environment allow (None: no channel configured)."""
    channels: list[Channel] = []
    url = environ.get(settings.webhook_env, "").strip()
    if url:
        channels.append(WebhookChannel(url, settings.timeout_seconds))
    if settings.gitlab:
        from pipeline.gitlab.ci import CiEnvironment  # pylint: disable=import-outside-toplevel

        try:
            ci = CiEnvironment.from_environ(environ)
        except Exception as exc:  # pylint: disable=broad-except  # a malformed CI variable: notes off, not a crash
            log.warning("GitLab notes are off: %s", exc)
            ci = None
        if ci is not None and ci.can_reach_gitlab:
            from pipeline.gitlab.client import PythonGitLabClient  # pylint: disable=import-outside-toplevel

            assert ci.server_url and ci.token and ci.project_id
            channels.append(GitLabNotesChannel(
                PythonGitLabClient(ci.server_url, ci.token, ci.project_id, timeout=settings.timeout_seconds)))
    if not channels:
        return None
    return Notifier(channels, settings.events, settings.status_url)
