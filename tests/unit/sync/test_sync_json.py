"""The JSON of ``saltpipe sync`` / ``release sync --format json``: its keys are a contract for scripts and CI."""

from __future__ import annotations

import json

from pipeline.sync.attest import Attestation, ServedRelease
from pipeline.sync.engine import SwitchOutcome, SyncResult
from pipeline.sync.report import sync_json
from pipeline.sync.stage import StageOutcome
from pipeline.sync.target import TargetError


def _result() -> SyncResult:
    down = TargetError("syndic-b", "stage", "no space left on device")
    return SyncResult(
        environment="production",
        release="r-2",
        saltenv="base",
        staged=(StageOutcome("syndic-a", True, "staged", "r-1", linked=3, copied=1, seconds=0.12345),
                StageOutcome("syndic-b", False, "failed", error=down, notes=("retried once",))),
        switched=(SwitchOutcome("syndic-a", True, "base", "r-2", "r-1"),),
        pruned={"syndic-a": ("r-0",)},
        attestation=Attestation("base", "r-2", (ServedRelease("syndic-a", "r-2", "ab12", method="fileserver"),
                                                ServedRelease("syndic-b", None, error="timeout")), "fileserver"),
        seconds=1.23456,
    )


def test_sync_json_keys_values_and_verdicts():
    data = json.loads(json.dumps(sync_json(_result())))
    assert set(data) == {"environment", "release", "saltenv", "ok", "seconds", "staged", "switched", "pruned",
                         "warnings", "attestation", "failures"}
    assert data["ok"] is False and data["seconds"] == 1.235
    assert data["failures"][0] == "syndic syndic-b: stage: no space left on device"
    good, bad = data["staged"]
    assert set(good) == {"syndic", "ok", "action", "served_before", "linked", "copied", "bytes_copied", "wire_bytes",
                         "seconds", "error", "notes"}
    assert (good["seconds"], good["error"], bad["error"], bad["notes"]) == (0.123, None, data["failures"][0], ["retried once"])
    assert data["switched"] == [{"syndic": "syndic-a", "ok": True, "link": "base", "release": "r-2", "before": "r-1",
                                 "error": None, "reverted": False}]
    assert data["pruned"] == {"syndic-a": ["r-0"]}


def test_attestation_json_names_the_digest_as_the_marker_does():
    att = sync_json(_result())["attestation"]
    assert (att["ok"], att["method"], att["saltenv"], att["expected"], att["weaker"]) == (False, "fileserver", "base", "r-2", [])
    assert att["served"] == [
        {"syndic": "syndic-a", "release": "r-2", "manifest_sha256": "ab12", "error": None, "method": "fileserver"},
        {"syndic": "syndic-b", "release": None, "manifest_sha256": None, "error": "timeout", "method": ""},
    ]
