"""The sync stage on local targets: staging with hard links, verification, two-phase switch, prune, canary
saltenvs, rollback, status, and every failure of issue 5 point 5 (each syndic keeps serving its previous
release, the error names the syndic and the cause, a re-run completes it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from sync_helpers import enospc_after, make_release, sample_files, served, sync_killed_mid_copy, tiny_tmpfs

from pipeline.release import MARKER_NAME, ReleaseStore, parse_marker
from pipeline.sync import (
    FileRootsAttestor,
    LocalTarget,
    SyncContext,
    TargetError,
    environment_status,
    previous_release,
    saltenv_for,
    sync_release,
    unexpose_release,
)

NAMES = ("syndic-a", "syndic-b", "syndic-c")


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "state" / "releases")


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in NAMES:
        out[name] = tmp_path / "syndics" / name
        out[name].mkdir(parents=True)
    return out


def targets(roots: dict[str, Path], **special: LocalTarget) -> tuple[LocalTarget, ...]:
    return tuple(special.get(name.replace("-", "_")) or LocalTarget(name, root) for name, root in roots.items())


def sync(store, tgts, release, keep=5, saltenv="base", attestor=None):
    return sync_release(SyncContext("test", release, tuple(tgts), store, keep=keep, saltenv=saltenv, attestor=attestor))


def served_all(roots) -> set[str | None]:
    return {served(root) for root in roots.values()}


# ----------------------------------------------------------------------------------------------------------------
# The normal path


def test_first_sync_stages_verifies_and_switches_every_syndic(store, roots):
    rel = make_release(store, sample_files())
    tgts = targets(roots)
    result = sync(store, tgts, rel, attestor=FileRootsAttestor(tgts))
    assert result.ok, result.failures()
    assert [s.action for s in result.staged] == ["staged"] * 3
    assert all(s.copied == len(rel.manifest.entries) + 1 for s in result.staged)  # + the marker
    assert served_all(roots) == {rel.id}
    for root in roots.values():
        assert os.readlink(root / "current") == f"releases/{rel.id}"  # relative link
        marker = parse_marker((root / "current" / MARKER_NAME).read_bytes())
        assert marker["release"] == rel.id and marker["manifest_sha256"] == rel.manifest.digest
        assert (root / "current" / "top.sls").read_text() == sample_files()["top.sls"]
        state = json.loads((root / "saltpipe-state.json").read_text())
        assert state["base"]["release"] == rel.id and state["syndic"] == root.name
    assert result.attestation.ok and {s.release for s in result.attestation.served} == {rel.id}


def test_one_file_change_copies_one_file_and_links_the_rest(store, roots):
    files = sample_files()
    first = make_release(store, files)
    tgts = targets(roots)
    assert sync(store, tgts, first).ok
    changed = {**files, "web/part007.sls": "# changed\n" + "y" * 5000 + "\n"}
    second = make_release(store, changed)
    result = sync(store, tgts, second)
    assert result.ok, result.failures()
    marker_size = second.manifest.marker_entry().size
    for outcome in result.staged:
        assert outcome.copied == 2  # the changed file and the marker
        assert outcome.bytes_copied == len(changed["web/part007.sls"]) + marker_size
        assert outcome.linked == len(files) - 1
    for root in roots.values():
        old, new = root / "releases" / first.id, root / "releases" / second.id
        assert os.stat(old / "top.sls").st_ino == os.stat(new / "top.sls").st_ino, "unchanged files are hard links"
        assert os.stat(old / "web/part007.sls").st_ino != os.stat(new / "web/part007.sls").st_ino
        assert (root / "current" / "web/part007.sls").read_text() == changed["web/part007.sls"]
        assert os.stat(new / "web/files/run.sh").st_mode & 0o777 == 0o755
    assert served_all(roots) == {second.id}


def test_deleted_and_added_files(store, roots):
    files = sample_files()
    tgts = targets(roots)
    assert sync(store, tgts, make_release(store, files)).ok
    smaller = {k: v for k, v in files.items() if k != "web/part001.sls"} | {"new/init.sls": "new: {}\n"}
    rel = make_release(store, smaller)
    assert sync(store, tgts, rel).ok
    for root in roots.values():
        assert not (root / "current/web/part001.sls").exists()
        assert (root / "current/new/init.sls").read_text() == "new: {}\n"


def test_same_release_again_only_verifies(store, roots):
    rel = make_release(store, sample_files())
    tgts = targets(roots)
    assert sync(store, tgts, rel).ok
    again = sync(store, tgts, rel)
    assert again.ok and [s.action for s in again.staged] == ["verified"] * 3
    assert all(s.copied == 0 for s in again.staged)


def test_keep_k_releases_and_prune_leftovers(store, roots):
    tgts = targets(roots)
    rels = [make_release(store, {**sample_files(3), "n.sls": f"n: {i}\n"}) for i in range(5)]
    for rel in rels:
        assert sync(store, tgts, rel, keep=3).ok
    for root in roots.values():
        present = sorted(p.name for p in (root / "releases").iterdir())
        assert present == sorted(r.id for r in rels[-3:]), "the served one and the two before it"
    # Rolling back to the previous one is still possible after pruning.
    assert previous_release(tgts) == rels[-2].id


def test_canary_saltenv_leaves_base_alone_then_promotion(store, roots):
    tgts = targets(roots)
    old = make_release(store, sample_files())
    assert sync(store, tgts, old, keep=2).ok
    new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    saltenv = saltenv_for(new.id)
    exposed = sync(store, tgts, new, keep=2, saltenv=saltenv, attestor=FileRootsAttestor(tgts))
    assert exposed.ok, exposed.failures()
    for root in roots.values():
        assert served(root) == old.id, "base is untouched by a canary"
        assert os.readlink(root / "envs" / saltenv) == f"../releases/{new.id}"
        assert (root / "envs" / saltenv / "top.sls").read_text() == "base: {}\n"
    assert exposed.attestation.saltenv == saltenv and exposed.attestation.ok

    # Unrelated syncs with keep=2 must not prune the canary release while it is exposed.
    third = make_release(store, {**sample_files(), "z.sls": "z: {}\n"})
    assert sync(store, tgts, third, keep=2).ok
    for root in roots.values():
        assert (root / "releases" / new.id).is_dir()

    promoted = sync(store, tgts, new, keep=2)
    assert promoted.ok and [s.action for s in promoted.staged] == ["verified"] * 3
    assert served_all(roots) == {new.id}
    assert unexpose_release(tgts, saltenv) == []
    status = environment_status(tgts)
    assert all(s.exposed == {} and s.served == new.id for s in status)


def test_rollback_to_previous_release(store, roots):
    tgts = targets(roots)
    a = make_release(store, sample_files())
    b = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    assert sync(store, tgts, a).ok
    assert sync(store, tgts, b).ok
    prev = previous_release(tgts)
    assert prev == a.id
    back = sync(store, tgts, store.get(prev))
    assert back.ok and [s.action for s in back.staged] == ["verified"] * 3
    assert served_all(roots) == {a.id}
    status = environment_status(tgts)
    assert {(s.served, s.previous) for s in status} == {(a.id, b.id)}
    assert all(s.since for s in status)


def test_status_reports_each_syndic(store, roots):
    tgts = targets(roots)
    rel = make_release(store, sample_files())
    assert sync(store, tgts, rel).ok
    shutil.rmtree(roots["syndic-c"])
    status = {s.syndic: s for s in environment_status(tgts)}
    assert status["syndic-a"].served == rel.id and status["syndic-a"].previous is None
    assert status["syndic-c"].served is None and "does not exist" in status["syndic-c"].error


# ----------------------------------------------------------------------------------------------------------------
# Failures: nothing switches, the error names the syndic and the cause, a re-run completes


def _assert_untouched(roots, before: str | None):
    assert served_all(roots) == {before}


def test_unreachable_syndic_switches_none(store, roots):
    tgts = targets(roots)
    old = make_release(store, sample_files())
    assert sync(store, tgts, old).ok
    new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    moved = roots["syndic-b"].with_name("moved-away")
    roots["syndic-b"].rename(moved)
    result = sync(store, tgts, new)
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-b: read file_roots directory:") and "does not exist" in failure
    assert served(roots["syndic-a"]) == old.id and served(roots["syndic-c"]) == old.id
    moved.rename(roots["syndic-b"])
    again = sync(store, tgts, new)
    assert again.ok
    assert {s.syndic: s.action for s in again.staged} == {"syndic-a": "verified", "syndic-b": "staged",
                                                          "syndic-c": "verified"}
    assert served_all(roots) == {new.id}


def test_unwritable_syndic_directory(store, roots, tmp_path):
    # As root, permissions do not stop writes, so make releases/ impossible to create: a file in its place.
    tgts = targets(roots)
    rel = make_release(store, sample_files())
    (roots["syndic-c"] / "releases").write_text("not a directory\n")
    result = sync(store, tgts, rel)
    assert not result.ok and served_all(roots) == {None}
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-c: ")
    (roots["syndic-c"] / "releases").unlink()
    assert sync(store, tgts, rel).ok


def test_full_disk_mid_copy_switches_none(store, roots):
    old = make_release(store, sample_files())
    assert sync(store, targets(roots), old).ok
    new = make_release(store, {k: v + "# v2\n" for k, v in sample_files().items()})
    full = LocalTarget("syndic-b", roots["syndic-b"], copy_file=enospc_after(5))
    result = sync(store, targets(roots, syndic_b=full), new)
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-b: copy changed files:") and "No space left on device" in failure
    assert "free space" in (result.staged[1].error.hint or "")
    _assert_untouched(roots, old.id)
    assert (roots["syndic-b"] / "releases" / f".staging-{new.id}").is_dir(), "a partial staging dir is left"
    again = sync(store, targets(roots), new)
    assert again.ok and served_all(roots) == {new.id}
    assert not any(p.name.startswith(".staging-") for p in (roots["syndic-b"] / "releases").iterdir())


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A real tmpfs with room for few inodes (needs mount privileges; skipped without them)."""
    with tiny_tmpfs(tmp_path / "tiny", "4m", 24) as mnt:
        yield mnt


def test_real_enospc_from_a_tiny_file_system(store, roots, tiny_fs):
    # The free-bytes check passes (4 MiB), but the file system runs out of inodes mid-copy: a real ENOSPC.
    syndic = tiny_fs / "syndic-b"
    syndic.mkdir()
    roots = {**roots, "syndic-b": syndic}
    rel = make_release(store, sample_files(40))
    result = sync(store, targets(roots), rel)
    assert not result.ok and served_all(roots) == {None}
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-b: ") and "No space left on device" in failure


def test_free_space_is_checked_before_copying(store, roots, tiny_fs):
    syndic = tiny_fs / "syndic-a"
    syndic.mkdir()
    roots = {**roots, "syndic-a": syndic}
    rel = make_release(store, {"top.sls": "x" * (6 << 20)})
    result = sync(store, targets(roots), rel)
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-a: check free space:") and "bytes free" in failure
    assert not (syndic / "releases" / f".staging-{rel.id}").exists(), "nothing copied when it cannot fit"


class TamperingTarget(LocalTarget):
    """Flips the content of one file after copying it, like a bad disk or a meddling process would."""

    def __init__(self, *args, path: str, times: int = 1000, **kwargs):
        super().__init__(*args, **kwargs)
        self.path, self.times = path, times

    def copy_files(self, release_id, source_tree, paths):
        stats = super().copy_files(release_id, source_tree, paths)
        if self.path in paths and self.times > 0:
            self.times -= 1
            staged = self.root / "releases" / f".staging-{release_id}" / self.path
            staged.write_text("tampered\n")
        return stats


def test_manifest_mismatch_switches_none(store, roots):
    old = make_release(store, sample_files())
    assert sync(store, targets(roots), old).ok
    new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    bad = TamperingTarget("syndic-c", roots["syndic-c"], path="top.sls")
    result = sync(store, targets(roots, syndic_c=bad), new)
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith(f"syndic syndic-c: verify staged {new.id}: does not match the manifest: top.sls:")
    _assert_untouched(roots, old.id)
    assert sync(store, targets(roots), new).ok
    assert served_all(roots) == {new.id}


def test_one_transient_mismatch_is_repaired_by_copying_again(store, roots):
    rel = make_release(store, sample_files())
    flaky = TamperingTarget("syndic-a", roots["syndic-a"], path="top.sls", times=1)
    result = sync(store, targets(roots, syndic_a=flaky), rel)
    assert result.ok
    assert any("copied again" in n for n in result.staged[0].notes)


def test_edited_old_release_on_the_syndic_is_not_linked_into_the_new_one(store, roots):
    files = sample_files()
    tgts = targets(roots)
    old = make_release(store, files)
    assert sync(store, tgts, old).ok
    # Someone edits the live tree in place: hard links would carry the edit into the next release.
    (roots["syndic-a"] / "releases" / old.id / "web/part003.sls").write_text("hand edit\n")
    new = make_release(store, {**files, "top.sls": "base: {}\n"})
    result = sync(store, tgts, new)
    assert result.ok, result.failures()
    assert (roots["syndic-a"] / "current/web/part003.sls").read_text() == files["web/part003.sls"]


def test_damaged_local_store_is_named_in_the_hint(store, roots):
    rel = make_release(store, sample_files())
    (rel.tree / "web/part002.sls").write_text("damaged\n")
    result = sync(store, targets(roots), rel)
    assert not result.ok and len(result.failures()) == 3
    assert "local release store is damaged" in (result.staged[0].error.hint or "")


def test_damaged_live_release_is_refused_not_replaced(store, roots):
    tgts = targets(roots)
    rel = make_release(store, sample_files())
    assert sync(store, tgts, rel).ok
    (roots["syndic-b"] / "current" / "top.sls").write_text("edited live\n")
    result = sync(store, tgts, rel)
    (failure,) = result.failures()
    assert failure.startswith(f"syndic syndic-b: verify {rel.id}: the release served here does not match")


def test_copy_killed_mid_way_then_rerun(store, roots):
    old = make_release(store, sample_files())
    assert sync(store, targets(roots), old).ok
    new = make_release(store, {k: v + "# v2\n" for k, v in sample_files().items()})
    proc = sync_killed_mid_copy(store, "test", new, roots)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _assert_untouched(roots, old.id)
    leftovers = [p for root in roots.values() for p in (root / "releases").iterdir() if p.name.startswith(".staging-")]
    assert leftovers, "the kill happened while staging"
    again = sync(store, targets(roots), new)
    assert again.ok and served_all(roots) == {new.id}


class SwitchFails(LocalTarget):
    def set_link(self, link, release_id):
        raise TargetError(self.name, f"switch {link}", "simulated: connection lost after staging")


def test_a_failed_switch_switches_the_others_back(store, roots):
    old = make_release(store, sample_files())
    assert sync(store, targets(roots), old).ok
    new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    result = sync(store, targets(roots, syndic_c=SwitchFails("syndic-c", roots["syndic-c"])), new)
    assert not result.ok
    assert {s.syndic: s.reverted for s in result.switched} == {"syndic-a": True, "syndic-b": True, "syndic-c": False}
    assert "syndic syndic-c: switch current: simulated" in "\n".join(result.failures())
    _assert_untouched(roots, old.id)


def test_attestation_fails_when_a_syndic_serves_something_else(store, roots):
    tgts = targets(roots)
    a = make_release(store, sample_files())
    b = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    assert sync(store, tgts, a).ok
    assert sync(store, tgts, b).ok
    # An operator points one syndic back by hand; the next attestation must notice.
    tgts[1].set_link("current", a.id)
    from pipeline.sync import attest

    verdict = attest(FileRootsAttestor(tgts), [t.name for t in tgts], b.id)
    assert not verdict.ok
    assert verdict.problems() == [f"syndic syndic-b: serves {a.id} for base, expected {b.id}"]


def test_empty_directory_left_by_salt_master_is_replaced_but_a_full_one_is_not(store, roots):
    # salt-master creates its file_roots directories at start-up, before saltpipe's first sync.
    (roots["syndic-a"] / "current").mkdir()
    (roots["syndic-b"] / "current").mkdir()
    (roots["syndic-b"] / "current" / "top.sls").write_text("hand-made\n")
    rel = make_release(store, sample_files())
    result = sync(store, targets(roots), rel)
    assert not result.ok
    assert "syndic syndic-b: switch current:" in "\n".join(result.failures())
    assert "with files in it" in "\n".join(result.failures())
    assert (roots["syndic-b"] / "current" / "top.sls").read_text() == "hand-made\n"
    assert not (roots["syndic-a"] / "current").is_symlink(), "switched back: syndic-b could not switch"
    (roots["syndic-b"] / "current" / "top.sls").unlink()
    assert sync(store, targets(roots), rel).ok
    assert served_all(roots) == {rel.id}
