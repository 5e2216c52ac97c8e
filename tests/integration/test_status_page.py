"""Issue 14 on the real topology: one rollout of ``production`` that halts at its second batch and is rolled back,
with a real webhook receiver on loopback; the status page serving that run (the grid, the halted batch's reason,
a failed cell's state output read from the MoM's job cache); and a freeze window refusing the next rollout.

With ``SALTPIPE_RECORD_STATUS_STATE=<dir>`` the run's state directory is recorded there
(tests/unit/web/recorded_state.py) - how tests/unit/web/recorded/ (the browser tests' input) was made.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from it_helpers import served_tree_restored
from rollout_helpers import ENV, applied, context, release, write_config

from pipeline.config import load_config
from pipeline.config.notify import NotifySettings
from pipeline.freeze import FreezeRefused
from pipeline.notify import notifier_from_environ
from pipeline.rollout import Outcome, RolloutRequest, start_rollout
from pipeline.rollout.planner import order_minions
from pipeline.topology import Topology
from pipeline.web.app import create_app
from pipeline.web.data import StatusData
from pipeline.web.jobcache import MasterJobCache
from pipeline.web.server import ServerThread

UNIT = Path(__file__).resolve().parents[1] / "unit"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


webhook_receiver = _module(UNIT / "rollout" / "webhook_receiver.py").webhook_receiver
recorded_state = _module(UNIT / "web" / "recorded_state.py")
SYNDICS = ("syndic-prod-a", "syndic-prod-b")


def test_rollout_with_webhook_then_status_page_then_freeze(topology: Topology, tmp_path: Path) -> None:
    minions = topology.env_minions(ENV)
    order = order_minions({m: topology.minion(m).syndic for m in minions})
    with served_tree_restored(topology, SYNDICS):
        state_dir = tmp_path / "state"
        config_path = write_config(topology, state_dir, tmp_path / "pipeline.yaml")
        v0 = release(state_dir, "web-v0")
        ctx = context(topology, config_path)
        try:
            ctx.serving.promote(ctx.environment, v0.id)
        finally:
            ctx.client.close()
        assert set(topology.mom.salt(list(minions), "state.apply", timeout=120).returns) == set(minions)
        broken = order[1]  # the canary passes; batch 1 fails on its only minion
        bad = release(state_dir, "web-bad", fail_on=[broken]).id

        with webhook_receiver() as hook:
            notifier = notifier_from_environ(NotifySettings(gitlab=False, status_url="http://127.0.0.1:8080"),
                                             {"SALTPIPE_NOTIFY_WEBHOOK": hook.url})
            ctx = replace(context(topology, config_path), notifier=notifier)
            try:
                result = start_rollout(RolloutRequest(ctx, bad, commit="0123456789abcdef0123456789abcdef01234567"))
            finally:
                ctx.client.close()
        assert result.outcome is Outcome.ROLLED_BACK
        texts = hook.texts()
        assert len(texts) == 4 and all(set(p["json"]) == {"text"} for p in hook.posts), texts
        assert " started by " in texts[0] and f"HALTED at batch {result.plan.batches[1].name}" in texts[1]
        assert "rolled back 2 minion(s)" in texts[2] and "finished: ROLLED_BACK" in texts[3]
        assert applied(topology, minions) == dict.fromkeys(minions, "web-v0")

        # The status page over this run's state directory, with the MoM's job cache for the state output.
        cfg = load_config(config_path)
        data = StatusData(cfg, state_dir, None, MasterJobCache(topology.mom.config_file))
        with ServerThread(create_app(data)) as server:
            base = f"{server.url}/rollouts/{ENV}/{result.plan.rollout_id}"
            page = requests.get(base, timeout=30)
            assert page.status_code == 200
            assert f'data-minion="{broken}" data-result="rolled_back"' in page.text
            assert f'data-minion="{order[0]}" data-result="rolled_back"' in page.text
            assert "batch-reason" in page.text and result.progress.halted["reason"] in page.text
            cell = requests.get(f"{base}/cells/1/{broken}?format=json", timeout=60).json()
            assert cell["minion"]["steps"]["apply"]["status"] == "failed"
            output = json.dumps(cell["output"]["apply"]["return"])
            assert "does-not-exist.conf" in output, "the failed state's comment comes from the job cache"
            overview = requests.get(f"{server.url}/?format=json", timeout=60).json()
            prod = next(e for e in overview["environments"] if e["name"] == ENV)
            assert {s["name"]: s["release"] for s in prod["syndics"]} == dict.fromkeys(SYNDICS, v0.id)

        # A freeze window on production: the next rollout is refused before anything is planned.
        data_cfg = yaml.safe_load(config_path.read_text())
        data_cfg["environments"][ENV]["freeze"] = [
            {"name": "it-freeze", "start": "2000-01-01T00:00", "end": "2100-01-01T00:00", "timezone": "UTC"}]
        frozen_path = tmp_path / "frozen.yaml"
        frozen_path.write_text(yaml.safe_dump(data_cfg, sort_keys=False))
        ctx = context(topology, frozen_path)
        try:
            with pytest.raises(FreezeRefused, match="it-freeze"):
                start_rollout(RolloutRequest(ctx, bad))
        finally:
            ctx.client.close()
        assert len(list((state_dir / "rollouts" / ENV).glob("*/plan.json"))) == 1

        record_to = os.environ.get("SALTPIPE_RECORD_STATUS_STATE")
        if record_to:
            roots = {s.name: topology.syndic(s.name).file_roots for e in cfg.environments.values() for s in e.syndics}
            recorded_state.record(state_dir, roots, yaml.safe_load(config_path.read_text()), Path(record_to))
