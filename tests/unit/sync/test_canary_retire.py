"""Retiring a canary saltenv when a rollout is over: the link goes, and so does every release only it kept
beyond ``release.keep`` - through :func:`unexpose_release` and the rollout's :class:`SyncServing`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sync_helpers import make_release, sample_files, served

from pipeline.config import Environment
from pipeline.errors import SyncError
from pipeline.release import ReleaseStore
from pipeline.rollout import SyncServing
from pipeline.sync import LocalTarget, SyncContext, saltenv_for, sync_release, unexpose_release

KEEP = 2


def releases_on(root: Path) -> set[str]:
    return {p.name for p in (root / "releases").iterdir() if not p.name.startswith(".")}


@pytest.fixture
def setup(tmp_path: Path):
    state_dir = tmp_path / "state"
    store = ReleaseStore.for_state_dir(state_dir)
    roots = [tmp_path / "syndics" / n for n in ("syndic-a", "syndic-b")]
    for root in roots:
        root.mkdir(parents=True)
    env = Environment.model_validate(
        {
            "name": "test",
            "target": "G@saltpipe_env:test",
            "syndics": [{"name": r.name, "file_roots": {"type": "local", "path": str(r)}} for r in roots],
            "canary": 1,
            "batches": ["100%"],
        }
    )
    return state_dir, store, roots, env


def _sync(store, roots, release, saltenv="base"):
    targets = tuple(LocalTarget(r.name, r) for r in roots)
    result = sync_release(SyncContext("test", release, targets, store, keep=KEEP, saltenv=saltenv))
    assert result.ok, result.failures()
    return targets


def test_every_rollout_leaves_at_most_keep_releases_once_its_canary_is_retired(setup) -> None:
    state_dir, store, roots, env = setup
    serving = SyncServing(state_dir, KEEP)
    for i in range(4):
        rel = make_release(store, {**sample_files(2), "n.sls": f"n: {i}\n"})
        attested = serving.expose(env, rel.id)  # canary saltenv, attested by the sync itself
        assert attested == {r.name: rel.id for r in roots}
        if i % 2 == 0:
            serving.promote(env, rel.id)  # a rollout that succeeded
        # (odd rounds: a rollout that was halted and rolled back - base unchanged)
        serving.retire(env, rel.id)
        for root in roots:
            assert not (root / "envs" / saltenv_for(rel.id)).exists()
            assert len(releases_on(root)) <= KEEP, releases_on(root)
            assert (root / "releases" / served(root)).is_dir(), "base is never pruned"
    serving.retire(env, rel.id)  # idempotent


def test_unexpose_without_keep_leaves_the_release_for_the_next_sync(setup) -> None:
    _, store, roots, _ = setup
    base = make_release(store, sample_files(2))
    _sync(store, roots, base)
    canary = make_release(store, {**sample_files(2), "c.sls": "c: {}\n"})
    targets = _sync(store, roots, canary, saltenv_for(canary.id))
    assert unexpose_release(targets, saltenv_for(canary.id)) == []
    assert all(canary.id in releases_on(r) and not os.path.lexists(r / "envs" / saltenv_for(canary.id)) for r in roots)


def test_retire_reports_the_syndic_it_could_not_clean(setup) -> None:
    state_dir, store, roots, env = setup
    serving = SyncServing(state_dir, KEEP)
    rel = make_release(store, sample_files(2))
    serving.expose(env, rel.id)
    roots[1].rename(roots[1].with_name("gone"))  # syndic-b's directory is not there (an unmounted volume)
    with pytest.raises(SyncError, match="syndic-b") as err:
        serving.retire(env, rel.id)
    assert "--remove-canary" in (err.value.hint or "")
    assert not (roots[0] / "envs" / saltenv_for(rel.id)).exists(), "the reachable syndic was cleaned"


# -- the syndic master's file list cache --------------------------------------------------------------------------


def _list_caches(cachedir: Path) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p in (cachedir / "file_lists").glob("*/*")}


def test_a_switch_clears_the_switched_saltenvs_file_list_cache_on_each_syndic(setup, tmp_path: Path) -> None:
    """What `salt-run fileserver.clear_file_list_cache saltenv=X` does on the syndic master, done through the
    target after the switch: only the switched saltenv's lists go, of every backend."""
    _, store, roots, _ = setup
    caches = {}
    for root in roots:
        cachedir = tmp_path / "cache" / root.name
        for backend in ("roots", "gitfs"):
            (cachedir / "file_lists" / backend).mkdir(parents=True)
            for env in ("base", "dev"):
                (cachedir / "file_lists" / backend / f"{env}.p").write_bytes(b"stale")
        (cachedir / "file_lists" / "roots" / ".base.w").write_bytes(b"")  # Salt's lock file: not a list
        caches[root.name] = cachedir
    targets = tuple(LocalTarget(r.name, r, salt_cachedir=caches[r.name]) for r in roots)
    rel = make_release(store, sample_files(2))
    result = sync_release(SyncContext("test", rel, targets, store, keep=KEEP))
    assert result.ok and result.warnings == ()
    for cachedir in caches.values():
        assert _list_caches(cachedir) == {"roots/dev.p", "gitfs/dev.p", "roots/.base.w"}
    # Without a cachedir nothing is touched; an unusable one is a warning (the switch happened).
    assert LocalTarget("x", roots[0]).clear_file_list_cache("base") is False
    (caches["syndic-b"] / "file_lists" / "roots").chmod(0o500)
    blocker = caches["syndic-b"] / "file_lists" / "roots" / "base.p"
    blocker.mkdir()  # a directory where the list file should be: unlink fails even as root
    try:
        again = sync_release(SyncContext("test", make_release(store, sample_files(3)), targets, store, keep=KEEP))
    finally:
        (caches["syndic-b"] / "file_lists" / "roots").chmod(0o755)
    assert again.ok and len(again.warnings) == 1
    assert "syndic-b" in again.warnings[0] and "fileserver_list_cache_time" in again.warnings[0]
