"""The switch journal (issue 17): a sync killed -9 between the first and the last syndic's switch leaves the
syndics split; the journal lets the next run finish the switch (or undo it when a syndic lost the release)."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from sync_helpers import make_release, sample_files, served, sync_killed_at_switch

from pipeline.errors import SyncError
from pipeline.release import ReleaseStore
from pipeline.sync import LocalTarget, SwitchJournal, SyncContext, recover_switch, switch_journal_path, sync_release

NAMES = ("syndic-a", "syndic-b", "syndic-c")

SYNCER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.release import ReleaseStore
    from pipeline.sync import LocalTarget, SyncContext, sync_release
    store = ReleaseStore(Path(sys.argv[1]))
    targets = tuple(LocalTarget(n, Path(r)) for n, r in zip(sys.argv[4::2], sys.argv[5::2]))
    sync_release(SyncContext("test", store.get(sys.argv[2]), targets, store, switch_journal=Path(sys.argv[3])))
    print("not paused")
    """
)


@pytest.fixture
def world(tmp_path: Path):
    store = ReleaseStore(tmp_path / "state" / "releases")
    roots = {}
    for name in NAMES:
        roots[name] = tmp_path / "syndics" / name
        roots[name].mkdir(parents=True)
    journal = switch_journal_path(tmp_path / "state", "test")
    targets = tuple(LocalTarget(n, r) for n, r in roots.items())
    old = make_release(store, sample_files())
    assert sync_release(SyncContext("test", old, targets, store, switch_journal=journal)).ok
    assert not journal.exists(), "a finished switch leaves no journal"
    new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    return store, roots, targets, journal, old, new


def _kill_at_switch(tmp_path: Path, store, roots, journal, release_id: str) -> None:
    args = [x for name, root in roots.items() for x in (name, str(root))]
    # A loaded 2-core machine imports Salt slowly; the wait ends as soon as the marker appears.
    sync_killed_at_switch([sys.executable, "-c", SYNCER, str(store.root), release_id, str(journal), *args],
                          tmp_path / "paused", timeout=180)


def test_a_sync_killed_at_the_switch_is_finished_by_the_next_run(tmp_path: Path, world) -> None:
    store, roots, targets, journal, old, new = world
    _kill_at_switch(tmp_path, store, roots, journal, new.id)
    assert served(roots["syndic-a"]) == new.id and served(roots["syndic-b"]) == old.id  # split, as in the issue
    pending = SwitchJournal(journal).load()
    assert pending is not None and pending.release == new.id and pending.switched == ("syndic-a",)
    # A new switch is refused while one is unfinished (the rollout sees this as an infrastructure error).
    with pytest.raises(SyncError, match="is unfinished"):
        SwitchJournal(journal).begin("test", old.id, "current", "base", {})
    recovery = recover_switch(targets, SwitchJournal(journal))
    assert recovery is not None and recovery.action == "finished"
    assert set(recovery.changed) == {"syndic-b", "syndic-c"}
    assert {served(r) for r in roots.values()} == {new.id}
    assert not journal.exists()
    assert recover_switch(targets, SwitchJournal(journal)) is None  # nothing left to do
    import json

    state = json.loads((roots["syndic-b"] / "saltpipe-state.json").read_text())
    assert state["base"]["release"] == new.id and state["previous"]["release"] == old.id


def test_an_unfinishable_switch_is_reverted(tmp_path: Path, world) -> None:
    store, roots, targets, journal, old, new = world
    _kill_at_switch(tmp_path, store, roots, journal, new.id)
    shutil.rmtree(roots["syndic-c"] / "releases" / new.id)  # the release is gone from a syndic not switched yet
    recovery = recover_switch(targets, SwitchJournal(journal))
    assert recovery is not None and recovery.action == "reverted" and recovery.changed == ("syndic-a",)
    assert {served(r) for r in roots.values()} == {old.id}
    assert not journal.exists()
