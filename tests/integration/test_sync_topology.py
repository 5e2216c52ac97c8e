"""The sync stage on the real topology (issue 5, point 7): releases synced to both syndic masters of
``production``, attested through each syndic master's Salt fileserver (its caches refreshed), and checked from
the minions themselves (``cp.get_file_str`` published from the MoM through each syndic).

Order matters inside this module (one story on the same syndics): first sync -> one-file change -> rollback ->
canary saltenv -> each failure of point 5 (unreachable, full disk, manifest mismatch, copy killed) followed by
the re-run that completes it. Every failure is judged the same way: no syndic switched, and every minion still
gets the previous release from its syndic.

The module restores what it changed: each syndic's ``current`` link (and its canary link) as they were before,
so the other modules keep serving what the session fixture served.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "sync"))
from it_helpers import served_tree_restored  # noqa: E402
from sync_helpers import enospc_after, make_release, sample_files, served, sync_killed_mid_copy  # noqa: E402

from pipeline.release import MARKER_NAME, Release, ReleaseStore, parse_marker  # noqa: E402
from pipeline.sync import (  # noqa: E402
    LocalTarget,
    SaltMasterAttestor,
    SshTarget,
    SyncContext,
    SyncResult,
    attest,
    previous_release,
    saltenv_for,
    sync_release,
)
from pipeline.topology import Topology  # noqa: E402

ENV = "production"
SYNDICS = ("syndic-prod-a", "syndic-prod-b")
#: The file the one-file change edits (and that minions fetch to see the change).
CHANGED = "web/part003.sls"


# ----------------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def restore_links(topology: Topology) -> Iterator[None]:
    """Put every production syndic's ``current`` back as it was (and drop the canary links this module made)."""
    with served_tree_restored(topology, SYNDICS):
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ReleaseStore:
    return ReleaseStore(tmp_path_factory.mktemp("sync-state") / "releases")


@pytest.fixture(scope="module")
def roots(topology: Topology, restore_links: None) -> dict[str, Path]:
    """Each production syndic's file_roots directory - the sync target of the derived pipeline.yaml."""
    cfg = topology.load_pipeline_config()
    paths = {s.name: Path(s.file_roots.path) for s in cfg.environment(ENV).syndics}
    assert tuple(paths) == SYNDICS
    for name, path in paths.items():
        assert path == topology.syndic(name).file_roots
    return paths


@pytest.fixture(scope="module")
def attestor(topology: Topology) -> SaltMasterAttestor:
    """Attestation through each syndic master's own fileserver (file list cache cleared, as a minion is served)."""
    return SaltMasterAttestor({name: topology.syndic(name).master.config_file for name in SYNDICS})


@pytest.fixture(scope="module")
def releases(store: ReleaseStore) -> dict[str, Release]:
    files = sample_files(12)
    one_file = {**files, CHANGED: files[CHANGED].replace("# state 3", "# state 3, changed")}
    return {
        "A": make_release(store, files),
        "B": make_release(store, one_file),  # A with one file changed
        "C": make_release(store, {k: v + "# v3\n" for k, v in files.items()}),  # every file changed
    }


def local_targets(roots: dict[str, Path], **special: LocalTarget | SshTarget) -> tuple:
    return tuple(special.get(name) or LocalTarget(name, root) for name, root in roots.items())


def do_sync(store: ReleaseStore, targets: tuple, release: Release, attestor: SaltMasterAttestor | None,
            saltenv: str = "base") -> SyncResult:
    return sync_release(SyncContext(ENV, release, targets, store, keep=5, saltenv=saltenv, attestor=attestor))


def minions_see(topology: Topology, saltenv: str = "base", path: str = MARKER_NAME) -> dict[str, object]:
    """What every production minion gets for ``salt://<path>`` in ``saltenv``, from its own syndic master.

    For the marker: the release id (``None`` when not served). Missing minions are simply absent."""
    minions = list(topology.env_minions(ENV))
    result = topology.mom.salt(minions, "cp.get_file_str", f"salt://{path}", saltenv=saltenv, timeout=30)
    out: dict[str, object] = {}
    for minion, ret in result.returns.items():
        if path == MARKER_NAME:
            marker = parse_marker(ret) if isinstance(ret, str) else None
            out[minion] = marker["release"] if marker else None
        else:
            out[minion] = ret
    return out


def assert_everyone_serves(topology: Topology, roots: dict[str, Path], attestor: SaltMasterAttestor,
                           release: Release) -> None:
    """Both syndic links, both syndic masters' fileservers and all six minions agree on ``release`` as base."""
    assert {name: served(root) for name, root in roots.items()} == {name: release.id for name in roots}
    attestation = attest(attestor, SYNDICS, release.id, "base")
    assert attestation.ok, attestation.problems()
    expected = {m: release.id for m in topology.env_minions(ENV)}
    assert minions_see(topology) == expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------------------------------------------
# The normal path


def test_sync_attests_through_every_syndic_master(topology, roots, store, attestor, releases) -> None:
    a = releases["A"]
    result = do_sync(store, local_targets(roots), a, attestor)
    assert result.ok, result.failures()
    assert {s.syndic for s in result.switched if s.ok} == set(SYNDICS)
    assert result.attestation is not None and result.attestation.method == "salt-master"
    assert {s.syndic: s.release for s in result.attestation.served} == {n: a.id for n in SYNDICS}
    # The minions behind both syndics get the release, including files new to the masters' file lists.
    assert_everyone_serves(topology, roots, attestor, a)
    fetched = minions_see(topology, path=CHANGED)
    assert set(fetched) == set(topology.env_minions(ENV))
    assert all(v == (a.tree / CHANGED).read_text() for v in fetched.values()), fetched


def test_one_file_change_moves_only_that_file(topology, roots, store, attestor, releases) -> None:
    a, b = releases["A"], releases["B"]
    result = do_sync(store, local_targets(roots), b, attestor)
    assert result.ok, result.failures()
    for stage in result.staged:
        # The changed file and the release marker are copied; everything else is a hard link to A's file.
        assert (stage.copied, stage.linked) == (2, len(a.manifest.entries) - 1), stage
    for name, root in roots.items():
        old, new = root / "releases" / a.id, root / "releases" / b.id
        for entry in b.manifest.entries:
            same_inode = os.stat(old / entry.path).st_ino == os.stat(new / entry.path).st_ino
            assert same_inode == (entry.path != CHANGED), f"{name}: {entry.path}"
    assert_everyone_serves(topology, roots, attestor, b)
    fetched = minions_see(topology, path=CHANGED)
    assert set(fetched) == set(topology.env_minions(ENV))
    assert all("changed" in str(v) for v in fetched.values()), fetched


def test_roll_back_to_the_previous_release(topology, roots, store, attestor, releases) -> None:
    a = releases["A"]
    targets = local_targets(roots)
    assert previous_release(targets) == a.id
    result = do_sync(store, targets, store.get(previous_release(targets)), attestor)
    assert result.ok, result.failures()
    assert {s.action for s in result.staged} == {"verified"}, "A is still on every syndic: nothing copied"
    assert_everyone_serves(topology, roots, attestor, a)
    fetched = minions_see(topology, path=CHANGED)
    assert all("changed" not in str(v) for v in fetched.values()), fetched


def test_canary_saltenv_is_exposed_while_base_stays(topology, roots, store, attestor, releases) -> None:
    a, b = releases["A"], releases["B"]
    saltenv = saltenv_for(b.id)
    result = do_sync(store, local_targets(roots), b, attestor, saltenv=saltenv)
    assert result.ok, result.failures()
    assert result.attestation is not None and result.attestation.saltenv == saltenv
    everyone = set(topology.env_minions(ENV))
    assert minions_see(topology, saltenv=saltenv) == dict.fromkeys(everyone, b.id)
    assert_everyone_serves(topology, roots, attestor, a)  # base unchanged


# ----------------------------------------------------------------------------------------------------------------
# Failures (point 5): no syndic switches, every minion keeps the previous release, a re-run completes.


def assert_failed_cleanly(result: SyncResult, syndic: str, cause: str) -> None:
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith(f"syndic {syndic}: ") and cause in failure, failure


def test_unreachable_syndic_then_rerun(topology, roots, store, attestor, releases) -> None:
    a, c = releases["A"], releases["C"]
    # syndic-prod-b reached over SSH on a loopback port nothing listens on: the host is unreachable.
    down = SshTarget("syndic-prod-b", "127.0.0.1", roots["syndic-prod-b"], port=free_port(), connect_timeout=5)
    try:
        result = do_sync(store, local_targets(roots, **{"syndic-prod-b": down}), c, attestor)
    finally:
        down.close()
    assert_failed_cleanly(result, "syndic-prod-b", "Connection refused")
    assert_everyone_serves(topology, roots, attestor, a)
    again = do_sync(store, local_targets(roots), c, attestor)
    assert again.ok, again.failures()
    assert_everyone_serves(topology, roots, attestor, c)
    # Back to A for the next case (A is kept on every syndic: verified, switched).
    assert do_sync(store, local_targets(roots), a, attestor).ok


def test_full_disk_then_rerun(topology, roots, store, attestor, releases) -> None:
    a = releases["A"]
    d = make_release(store, {k: v + "# v4\n" for k, v in sample_files(12).items()})
    full = LocalTarget("syndic-prod-a", roots["syndic-prod-a"], copy_file=enospc_after(3))
    result = do_sync(store, local_targets(roots, **{"syndic-prod-a": full}), d, attestor)
    assert_failed_cleanly(result, "syndic-prod-a", "No space left on device")
    assert (roots["syndic-prod-a"] / "releases" / f".staging-{d.id}").is_dir(), "failed mid-copy"
    assert_everyone_serves(topology, roots, attestor, a)
    again = do_sync(store, local_targets(roots), d, attestor)
    assert again.ok, again.failures()
    assert_everyone_serves(topology, roots, attestor, d)
    assert not (roots["syndic-prod-a"] / "releases" / f".staging-{d.id}").exists()
    assert do_sync(store, local_targets(roots), a, attestor).ok


class TamperingTarget(LocalTarget):
    """Changes one staged file after it was copied (a bad disk, a meddling process)."""

    def copy_files(self, release_id, source_tree, paths):  # type: ignore[no-untyped-def]
        stats = super().copy_files(release_id, source_tree, paths)
        (self.root / "releases" / f".staging-{release_id}" / "top.sls").write_text("tampered\n")
        return stats


def test_manifest_mismatch_then_rerun(topology, roots, store, attestor, releases) -> None:
    a = releases["A"]
    e = make_release(store, {**sample_files(12), "top.sls": "base:\n  '*':\n    - web.part001\n"})
    bad = TamperingTarget("syndic-prod-b", roots["syndic-prod-b"])
    result = do_sync(store, local_targets(roots, **{"syndic-prod-b": bad}), e, attestor)
    assert_failed_cleanly(result, "syndic-prod-b", f"verify staged {e.id}: does not match the manifest: top.sls")
    assert_everyone_serves(topology, roots, attestor, a)
    again = do_sync(store, local_targets(roots), e, attestor)
    assert again.ok, again.failures()
    assert_everyone_serves(topology, roots, attestor, e)
    assert do_sync(store, local_targets(roots), a, attestor).ok


def test_copy_killed_mid_way_then_rerun(topology, roots, store, attestor, releases) -> None:
    a, c = releases["A"], releases["C"]
    # C is on the syndics already (an earlier case): a copy needs a release they do not have.
    f = make_release(store, {k: v + "# v5\n" for k, v in sample_files(12).items()})
    proc = sync_killed_mid_copy(store, "production", f, roots, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    leftovers = [p for root in roots.values() for p in (root / "releases").iterdir() if p.name.startswith(".staging-")]
    assert leftovers, "the kill happened while staging"
    assert_everyone_serves(topology, roots, attestor, a)
    again = do_sync(store, local_targets(roots), f, attestor)
    assert again.ok, again.failures()
    assert_everyone_serves(topology, roots, attestor, f)
    assert not any(p.name.startswith(".staging-") for root in roots.values() for p in (root / "releases").iterdir())
    assert c.id != f.id
