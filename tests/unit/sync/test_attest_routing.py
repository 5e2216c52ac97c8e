"""Which evidence each syndic gets (pipeline/sync/attest_select.py choose_attestor, pipeline/sync/salt_remote.py).

An SSH syndic is attested through its own Salt fileserver on its host; only where Salt cannot run there does
``--attest auto`` fall back to the marker file, and then says it is weaker. The SSH target is faked here (what
its ``read_through_salt`` answers); tests/integration/test_sync_ssh.py asks a real Salt fileserver over ssh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_helpers import make_release, sample_files

from pipeline.errors import UsageError
from pipeline.release import ReleaseStore
from pipeline.release.manifest import MARKER_NAME
from pipeline.sync import LocalTarget, attest
from pipeline.sync.attest_select import choose_attestor
from pipeline.sync.salt_remote import SaltUnavailable


class FakeSshTarget(LocalTarget):
    """A local directory standing for an SSH syndic; ``answer`` is what its host's Salt fileserver says."""

    def __init__(self, name: str, root: Path, answer) -> None:
        super().__init__(name, root)
        self.answer = answer
        self.asked: list[str] = []

    def read_through_salt(self, saltenv: str):
        self.asked.append(saltenv)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def world(tmp_path: Path):
    store = ReleaseStore(tmp_path / "releases")
    rel = make_release(store, sample_files(3))
    root = tmp_path / "syndic"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / rel.id).symlink_to(rel.tree, target_is_directory=True)
    (root / "current").symlink_to(f"releases/{rel.id}")
    files = sorted(rel.manifest.expected_files())
    marker = (rel.tree / MARKER_NAME).read_text()
    return store, rel, root, {"files": files, "marker": marker, "file_roots": [str(root / "current")]}


def _attest(store, targets, mode="auto", expected=None):
    attestor = choose_attestor(targets, {}, mode, store)
    return attest(attestor, [t.name for t in targets], expected)


def test_an_ssh_syndic_is_attested_through_its_salt_fileserver(world) -> None:
    store, rel, root, answer = world
    target = FakeSshTarget("syndic-prod-a", root, answer)
    result = _attest(store, [target], expected=rel.id)
    assert result.ok and result.method == "salt-master (ssh)" and result.weaker == []
    assert target.asked == ["base"]


def test_salt_listing_other_files_than_the_release_fails_even_if_the_marker_agrees(world) -> None:
    store, rel, root, answer = world
    # file_roots of that master points at another tree that happens to hold the same marker
    target = FakeSshTarget("syndic-prod-a", root, {**answer, "files": [*answer["files"], "old/leftover.sls"]})
    result = _attest(store, [target], expected=rel.id)
    assert not result.ok
    (problem,) = result.problems()
    assert "lists other files for base than release" in problem and "old/leftover.sls" in problem


def test_salt_not_serving_the_marker_fails(world) -> None:
    store, rel, root, answer = world
    result = _attest(store, [FakeSshTarget("s", root, {**answer, "marker": ""})], expected=rel.id)
    assert not result.ok and "is not served" in result.problems()[0]


def test_without_salt_on_the_host_auto_falls_back_to_the_marker_and_says_it_is_weaker(world) -> None:
    store, rel, root, _ = world
    target = FakeSshTarget("syndic-prod-a", root, SaltUnavailable("syndic-prod-a", "ask", "no salt-run on this host"))
    result = _attest(store, [target], expected=rel.id)
    assert result.ok and result.served[0].method == "file_roots (weaker: no salt-run on this host)"
    assert result.weaker == ["syndic syndic-prod-a: attested by its marker file only (no salt-run on this host); "
                             "that proves the files, not what its Salt fileserver serves"]


def test_attest_salt_never_falls_back(world) -> None:
    store, rel, root, _ = world
    target = FakeSshTarget("syndic-prod-a", root, SaltUnavailable("syndic-prod-a", "ask", "no salt-run on this host"))
    result = _attest(store, [target], mode="salt", expected=rel.id)
    assert not result.ok and "cannot ask its Salt fileserver: no salt-run on this host" in result.problems()[0]


def test_a_local_syndic_without_master_config_is_weaker_under_auto_and_refused_under_salt(world) -> None:
    store, rel, root, _ = world
    local = LocalTarget("syndic-test", root)
    result = _attest(store, [local], expected=rel.id)
    assert result.ok and len(result.weaker) == 1
    with pytest.raises(UsageError, match="--attest salt needs the master config of every local syndic"):
        choose_attestor([local], {}, "salt", store)


def test_file_roots_mode_reads_markers_only(world) -> None:
    store, rel, root, answer = world
    target = FakeSshTarget("s", root, answer)
    result = _attest(store, [target], mode="file_roots", expected=rel.id)
    assert result.ok and result.method == "file_roots" and target.asked == []
