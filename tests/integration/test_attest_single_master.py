"""Attestation through Salt, on one real salt-master and one minion (pytest-salt-factories).

The master's file_roots is configured as a syndic master's is (docs/sync.md): saltenv ``base`` is
``<dir>/current`` and every other saltenv is ``<dir>/envs/<saltenv>`` through Salt's ``__env__``. saltpipe
syncs releases into ``<dir>`` with the local target; the tests then ask Salt - the master's own fileserver, and
the minion with ``cp.get_file_str`` - what it serves, and show the file list cache that must be refreshed
explicitly after a switch. The MoM -> syndics topology is tested by the topology suite; this module needs only
a plain master, so it starts its own (module-scoped) and does not use tests/integration/conftest.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "sync"))
from sync_helpers import make_release, sample_files  # noqa: E402

from pipeline.errors import SaltError  # noqa: E402
from pipeline.release import ReleaseStore  # noqa: E402
from pipeline.sync import (  # noqa: E402
    LocalTarget,
    SaltCallAttestor,
    SaltMasterAttestor,
    SyncContext,
    attest,
    saltenv_for,
    sync_release,
)

pytestmark = [pytest.mark.integration]

SYNDIC = "attest-syndic"


@pytest.fixture(scope="module")
def syndic_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("syndic-files")


@pytest.fixture(scope="module")
def master(salt_factories, syndic_dir):
    overrides = {
        "file_roots": {"base": [str(syndic_dir / "current")], "__env__": [str(syndic_dir / "envs" / "__env__")]},
        # Long enough that a stale file list cannot expire by itself during the module: refreshing it is
        # saltpipe's job, and the test shows it.
        "fileserver_list_cache_time": 3600,
    }
    factory = salt_factories.salt_master_daemon("attest-master", overrides=overrides)
    with factory.started(start_timeout=120):
        yield factory


@pytest.fixture(scope="module")
def minion(master):
    factory = master.salt_minion_daemon("attest-minion")
    with factory.started(start_timeout=120):
        yield factory


@pytest.fixture(scope="module")
def call(master):
    cli = master.salt_cli(timeout=60)

    def run(minion_id: str, fun: str, *args: Any, **kwargs: Any) -> Any:
        ret = cli.run(fun, *args, minion_tgt=minion_id, **kwargs)
        if ret.returncode != 0 and ret.data is None:
            raise SaltError(f"{fun} on {minion_id} failed: {ret.stderr.strip() or ret.stdout.strip()}")
        return ret.data

    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ReleaseStore:
    return ReleaseStore(tmp_path_factory.mktemp("state") / "releases")


def _sync(store, target, release, saltenv="base", attestor=None):
    result = sync_release(SyncContext("test", release, (target,), store, saltenv=saltenv, attestor=attestor))
    assert result.switched_everywhere, result.failures()
    return result


def test_master_and_minion_attest_each_switch(master, minion, call, syndic_dir, store):
    target = LocalTarget(SYNDIC, syndic_dir)
    via_master = SaltMasterAttestor({SYNDIC: Path(master.config_file)})
    via_minion = SaltCallAttestor(call, {SYNDIC: minion.id})

    first = make_release(store, sample_files(5))
    result = _sync(store, target, first, attestor=via_master)
    assert result.attestation.ok, result.attestation.problems()
    assert result.attestation.served[0].digest == first.manifest.digest
    assert attest(via_minion, [SYNDIC], first.id).ok

    # Prime the master's file list cache, as any minion's saltutil.sync_* or cp.list_master would.
    assert "web/part000.sls" in call(minion.id, "cp.list_master")

    second = make_release(store, {**sample_files(5), "new/added.sls": "added: {}\n"})
    _sync(store, target, second)
    # A changed path is served at once after the switch: the marker exists in every release.
    verdict = attest(via_minion, [SYNDIC], second.id)
    assert verdict.ok, verdict.problems()
    # A new path is not listed yet: the master still answers from its cached file list ...
    assert "new/added.sls" not in call(minion.id, "cp.list_master")
    # ... until saltpipe refreshes it (the master attestor runs fileserver.update + clear_file_list_cache).
    assert attest(via_master, [SYNDIC], second.id).ok
    assert "new/added.sls" in call(minion.id, "cp.list_master")


def test_canary_saltenv_is_served_beside_an_unchanged_base(master, minion, call, syndic_dir, store):
    target = LocalTarget(SYNDIC, syndic_dir)
    base_release = make_release(store, {**sample_files(3), "top.sls": "base:\n  '*': []\n"})
    _sync(store, target, base_release)
    canary = make_release(store, {**sample_files(3), "top.sls": "base:\n  '*': []\n", "canary.sls": "c: {}\n"})
    saltenv = saltenv_for(canary.id)
    via_minion = SaltCallAttestor(call, {SYNDIC: minion.id})
    _sync(store, target, canary, saltenv=saltenv, attestor=via_minion)

    assert attest(via_minion, [SYNDIC], canary.id, saltenv=saltenv).ok
    assert attest(via_minion, [SYNDIC], base_release.id).ok, "base still serves the old release"
    assert call(minion.id, "cp.get_file_str", "salt://canary.sls", saltenv=saltenv) == "c: {}\n"
    assert not call(minion.id, "cp.get_file_str", "salt://canary.sls"), "not in base"
    assert SaltMasterAttestor({SYNDIC: Path(master.config_file)}).attest([SYNDIC], saltenv)[0].release == canary.id


def test_attestation_reports_a_syndic_that_serves_nothing(master, minion, call, syndic_dir, store):
    via_minion = SaltCallAttestor(call, {SYNDIC: minion.id})
    (answer,) = via_minion.attest([SYNDIC], "rel-000000000000")  # a saltenv no release is exposed as
    assert answer.release is None and "not served" in answer.error
    missing = SaltCallAttestor(call, {})
    assert "no minion known" in missing.attest([SYNDIC])[0].error
