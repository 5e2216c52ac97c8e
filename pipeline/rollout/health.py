"""A batch's health check: a Salt function on its minions, or an HTTP GET per minion, journaled as step ``health``.

Contract: only minions whose forward steps succeeded are checked. A function check is a step like any other
(:meth:`pipeline.rollout.steps.StepRunner.run_step`, judged with ``health=True``: a falsy return fails). An HTTP
check GETs ``url`` (``{minion}``/``{host}`` filled in; ``{host}`` is the minion's ``fqdn`` grain, read in one
``grains.item`` job) with up to 16 requests at a time; it passes on ``expect_status``, anything else - another
status, an error, no fqdn - fails that minion. A finished health step is never run again on resume.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from pipeline.config import HealthCheck
from pipeline.rollout.model import Step, StepResult, StepStatus
from pipeline.rollout.steps import StepRunner, count_results
from pipeline.salt_client.polling import collect_returns

#: GET a URL with a timeout, return the HTTP status (injected: unit tests open no socket).
HttpGet = Callable[[str, float], int]


def http_status(url: str, timeout: float) -> int:
    """GET ``url`` and return the HTTP status (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "saltpipe-health-check"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - URL from reviewed config
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def check_health(steps: StepRunner, hc: HealthCheck, http_get: HttpGet, batch: int, minions: Sequence[str]) -> None:
    """Run the health check ``hc`` on ``minions`` of ``batch`` and journal one ``health`` result per minion."""
    if hc.function:
        steps.run_step(batch, Step.HEALTH, minions, hc.function, arg=hc.args, health=True)
    else:
        _http_health(steps, hc, http_get, batch, minions)


def _http_health(steps: StepRunner, hc: HealthCheck, http_get: HttpGet, batch: int, minions: Sequence[str]) -> None:
    assert hc.url is not None
    url_template = hc.url
    sp = steps.progress.batches[batch].step(Step.HEALTH)
    if sp.finished:
        return
    todo = [m for m in minions if m not in sp.results]
    hosts: dict[str, str] = {}
    if todo and "{host}" in url_template:
        hosts = _fqdns(steps, todo)
    steps.write("step_published", batch=batch, step=Step.HEALTH.value, jid="", fun="http", targets=list(todo),
                arg=[url_template], kwarg={})

    def probe(minion: str) -> StepResult:
        if "{host}" in url_template and minion not in hosts:
            return StepResult(minion, Step.HEALTH, StepStatus.FAILED, None, reasons=("no fqdn grain: cannot build the URL",))
        url = url_template.format(minion=minion, host=hosts.get(minion, minion))
        started = time.monotonic()
        try:
            status = http_get(url, hc.timeout_seconds)
        except (OSError, ValueError) as exc:
            return StepResult(minion, Step.HEALTH, StepStatus.FAILED, None, reasons=(f"GET {url}: {exc}",),
                              elapsed_s=time.monotonic() - started)
        ok = status == hc.expect_status
        return StepResult(
            minion, Step.HEALTH, StepStatus.OK if ok else StepStatus.FAILED, None,
            reasons=() if ok else (f"GET {url}: HTTP {status}, expected {hc.expect_status}",),
            elapsed_s=time.monotonic() - started,
        )

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(todo)))) as pool:
        results = list(pool.map(probe, todo))
    for result in results:
        steps.write("minion_result", batch=batch, **result.to_json())
    steps.write("step_finished", batch=batch, step=Step.HEALTH.value, **count_results(sp))


def _fqdns(steps: StepRunner, minions: Sequence[str]) -> dict[str, str]:
    """The ``fqdn`` grain of each of ``minions`` that answered within the job timeout."""
    pub = steps.client.publish(minions, "grains.item", ["fqdn"])
    got = collect_returns(steps.client, pub.jid, minions, timeout=steps.recovery.job_timeout,
                          poll_interval=steps.recovery.poll_interval, clock=steps.clock, look_in_cache=False)
    out = {}
    for minion, ret in got.items():
        if isinstance(ret.ret, Mapping) and isinstance(ret.ret.get("fqdn"), str) and ret.ret["fqdn"]:
            out[minion] = ret.ret["fqdn"]
    return out
