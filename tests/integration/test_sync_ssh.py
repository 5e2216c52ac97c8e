"""The SSH + rsync file_roots target against a real sshd on 127.0.0.1 (issue 5, points 2, 5 and 7).

Each syndic directory is on this machine, so the tests can look at it directly, but saltpipe reaches it only
through ssh and rsync, as it would a remote syndic master. Needs Debian's openssh-server, openssh-client and
rsync: under ``CI=true`` without them every test here fails with what to install; elsewhere they skip, and the
reason (with the packages) is in pytest's summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "sync"))
from local_sshd import LocalSshd, require_tools, start_sshd  # noqa: E402
from sync_helpers import make_release, sample_files, served, tiny_tmpfs  # noqa: E402

from pipeline.release import ReleaseStore  # noqa: E402
from pipeline.sync import (  # noqa: E402
    FileRootsAttestor,
    LocalTarget,
    SshTarget,
    SyncContext,
    environment_status,
    previous_release,
    saltenv_for,
    sync_release,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, scope="module")
def _ssh_tools() -> None:
    """Every test here needs sshd and rsync: under CI=true a missing one fails them all, elsewhere they skip with
    the packages to install (local_sshd.require_tools)."""
    require_tools()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> LocalSshd:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "state" / "releases")


@pytest.fixture
def make_target(sshd, tmp_path):
    made: list[SshTarget] = []

    def make(name: str, root: Path | None = None, **kwargs) -> SshTarget:
        root = root or tmp_path / "syndics" / name
        root.mkdir(parents=True, exist_ok=True)
        target = SshTarget(name, "127.0.0.1", root, port=kwargs.pop("port", sshd.port), ssh_options=sshd.ssh_options,
                           connect_timeout=5, **kwargs)
        made.append(target)
        return target

    yield make
    for target in made:
        target.close()


def sync(store, targets, release, **kwargs):
    return sync_release(SyncContext("production", release, tuple(targets), store, **kwargs))


ODD_NAMES = {
    "web/with space.sls": "a: 1\n",
    "web/quote'and\"dq.sls": "b: 2\n",
    "web/back\\slash.sls": "c: 3\n",
    "web/ünïcode.sls": "d: 4\n",
    "web/-leading-dash.sls": "e: 5\n",
}


def test_sync_over_ssh_beside_a_local_syndic(store, make_target, tmp_path):
    remote_a, remote_b = make_target("syndic-prod-a"), make_target("syndic-prod-b")
    local_root = tmp_path / "syndics" / "syndic-local"
    local_root.mkdir(parents=True)
    targets = (remote_a, remote_b, LocalTarget("syndic-local", local_root))
    rel = make_release(store, {**sample_files(), **ODD_NAMES})
    result = sync(store, targets, rel, attestor=FileRootsAttestor(targets))
    assert result.ok, result.failures()
    assert result.attestation.ok and result.attestation.method == "file_roots"
    for target in (remote_a, remote_b):
        assert served(target.root) == rel.id
        for name, content in ODD_NAMES.items():
            assert (target.root / "current" / name).read_text() == content
        assert (target.root / "current/web/files/run.sh").stat().st_mode & 0o777 == 0o755
    status = {s.syndic: s for s in environment_status(targets)}
    assert status["syndic-prod-a"].served == rel.id and status["syndic-prod-a"].where.startswith("ssh://")


def test_one_file_change_moves_about_one_file(store, make_target):
    files = sample_files()
    target = make_target("syndic-prod-a")
    assert sync(store, [target], make_release(store, files)).ok
    big = "# changed\n" + "".join(f"line {i} of a larger state file\n" for i in range(1500))
    second = make_release(store, {**files, "web/part010.sls": big})
    result = sync(store, [target], second)
    assert result.ok, result.failures()
    (staged,) = result.staged
    assert staged.copied == 2 and staged.linked == len(files) - 1
    assert staged.wire_bytes is not None and staged.wire_bytes <= 2 * len(big), staged
    old = target.root / "releases" / result.staged[0].served_before
    new = target.root / "releases" / second.id
    assert os.stat(old / "top.sls").st_ino == os.stat(new / "top.sls").st_ino


def test_canary_saltenv_and_rollback_over_ssh(store, make_target):
    target = make_target("syndic-prod-a")
    a = make_release(store, sample_files())
    b = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
    assert sync(store, [target], a).ok
    assert sync(store, [target], b, saltenv=saltenv_for(b.id)).ok
    assert served(target.root) == a.id
    assert os.readlink(target.root / "envs" / b.id) == f"../releases/{b.id}"
    assert sync(store, [target], b).ok
    assert previous_release([target]) == a.id
    back = sync(store, [target], a)
    assert back.ok and back.staged[0].action == "verified" and served(target.root) == a.id


def test_switch_clears_the_remote_masters_file_list_cache(store, make_target, tmp_path):
    """A remote syndic master's file list cache (``salt_cachedir``) loses the switched saltenv's lists - what
    ``salt-run fileserver.clear_file_list_cache saltenv=...`` does there - through the same SSH session."""
    cachedir = tmp_path / "remote-cache"
    for backend in ("roots", "git fs"):  # a name with a space: the remote glob must not split it
        (cachedir / "file_lists" / backend).mkdir(parents=True)
        for env in ("base", "rel-000000000000"):
            (cachedir / "file_lists" / backend / f"{env}.p").write_bytes(b"stale")
    target = make_target("syndic-prod-a", salt_cachedir=cachedir)
    rel = make_release(store, sample_files())
    result = sync(store, [target], rel)
    assert result.ok and result.warnings == (), result.warnings
    left = sorted(f"{p.parent.name}/{p.name}" for p in (cachedir / "file_lists").glob("*/*"))
    assert left == ["git fs/rel-000000000000.p", "roots/rel-000000000000.p"]
    canary = make_release(store, {**sample_files(), "z.sls": "z: {}\n"})
    assert sync(store, [target], canary, saltenv=saltenv_for(canary.id)).ok
    assert not (cachedir / "file_lists" / "roots" / f"{canary.id}.p").exists()
    assert (cachedir / "file_lists" / "roots" / "rel-000000000000.p").exists()


def test_unreachable_syndic_switches_none(store, make_target):
    good = make_target("syndic-prod-a")
    down = make_target("syndic-prod-b", port=1)  # nothing listens on port 1
    old = make_release(store, sample_files())
    assert sync(store, [good], old).ok
    result = sync(store, [good, down], make_release(store, {**sample_files(), "top.sls": "x: {}\n"}))
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-prod-b: read file_roots directory: cannot reach ssh://127.0.0.1:1")
    assert "Connection refused" in failure
    assert served(good.root) == old.id


def test_missing_directory_on_the_remote_host(store, make_target, tmp_path):
    target = make_target("syndic-prod-a")
    target.root.rmdir()
    result = sync(store, [target], make_release(store, sample_files()))
    (failure,) = result.failures()
    assert failure == f"syndic syndic-prod-a: read file_roots directory: no such directory: {target.root}"


@pytest.fixture
def tiny_fs(tmp_path: Path):
    with tiny_tmpfs(tmp_path / "tiny", "8m", 30) as mnt:
        yield mnt


def test_full_disk_on_the_remote_syndic_then_rerun(store, make_target, tiny_fs):
    good = make_target("syndic-prod-a")
    full = make_target("syndic-prod-b", root=tiny_fs / "syndic-prod-b")
    old = make_release(store, sample_files(3))
    assert sync(store, [good, full], old).ok
    new = make_release(store, sample_files(40))
    result = sync(store, [good, full], new)
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-prod-b: copy changed files:") and "No space left on device" in failure
    assert "free space" in result.staged[1].error.hint
    assert {served(good.root), served(full.root)} == {old.id}
    subprocess.run(["mount", "-o", "remount,nr_inodes=1000", str(tiny_fs)], check=True)
    again = sync(store, [good, full], new)
    assert again.ok, again.failures()
    assert {served(good.root), served(full.root)} == {new.id}


class TamperingSsh(SshTarget):
    """Changes a staged file on the syndic after rsync wrote it (the directory is local, so we can)."""

    def copy_files(self, release_id, source_tree, paths):
        stats = super().copy_files(release_id, source_tree, paths)
        (self.root / "releases" / f".staging-{release_id}" / "top.sls").write_text("tampered\n")
        return stats


def test_manifest_mismatch_over_ssh_then_rerun(store, make_target, sshd, tmp_path):
    good = make_target("syndic-prod-a")
    root = tmp_path / "syndics" / "syndic-prod-b"
    root.mkdir(parents=True)
    bad = TamperingSsh("syndic-prod-b", "127.0.0.1", root, port=sshd.port, ssh_options=sshd.ssh_options)
    try:
        old = make_release(store, sample_files())
        assert sync(store, [good, make_target("syndic-prod-b", root=root)], old).ok
        new = make_release(store, {**sample_files(), "top.sls": "base: {}\n"})
        result = sync(store, [good, bad], new)
        (failure,) = result.failures()
        assert failure.startswith(f"syndic syndic-prod-b: verify staged {new.id}: does not match the manifest: top.sls")
        assert {served(good.root), served(root)} == {old.id}
        assert sync(store, [good, make_target("syndic-prod-b", root=root)], new).ok
        assert served(root) == new.id
    finally:
        bad.close()


KILLER = r"""#!/bin/sh
# Stand-in for the remote rsync: run the real one, and kill -9 it as soon as the first file has landed.
dest=""
for a in "$@"; do dest=$a; done
rsync "$@" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  if [ -n "$(find "$dest" -type f -name '*.sls' 2>/dev/null | head -n 1)" ]; then
    kill -9 "$pid"
    exit 137
  fi
  sleep 0.01
done
wait "$pid"
"""


def test_copy_killed_mid_way_over_ssh_then_rerun(store, make_target, tmp_path):
    killer = tmp_path / "killer.sh"
    killer.write_text(KILLER)
    killer.chmod(0o755)
    good = make_target("syndic-prod-a")
    victim = make_target("syndic-prod-b")
    old = make_release(store, sample_files(2))
    assert sync(store, [good, victim], old).ok
    new = make_release(store, sample_files(30, size=20000))
    # Slow the transfer down so the first file lands well before the last one.
    slow = make_target("syndic-prod-b", root=victim.root, rsync_path=str(killer), rsync_options=("--bwlimit=2000",))
    result = sync(store, [good, slow], new)
    assert not result.ok and result.switched == ()
    (failure,) = result.failures()
    assert failure.startswith("syndic syndic-prod-b: copy changed files:")
    staging = victim.root / "releases" / f".staging-{new.id}"
    landed = [p for p in staging.rglob("*.sls")]
    assert landed and len(landed) < len(new.manifest.entries), "killed mid-way, not before or after"
    assert {served(good.root), served(victim.root)} == {old.id}
    again = sync(store, [good, victim], new)
    assert again.ok and {served(good.root), served(victim.root)} == {new.id}
    assert not staging.exists()


def test_copies_never_write_through_a_hard_link(store, make_target):
    """The first copy after prepare_staging writes in place (--inplace --ignore-existing); a path that is
    already there - a hard link into another release - is left alone by it and replaced (new inode) by the
    next, normal copy. Either way the other release's file keeps its content."""
    target = make_target("syndic-prod-a")
    old = make_release(store, sample_files(3))
    assert sync(store, [target], old).ok
    new = make_release(store, {**sample_files(3), "top.sls": "base: {}\n"})
    donor_top = target.root / "releases" / old.id / "top.sls"
    before = donor_top.read_bytes()
    staged_top = target.root / "releases" / f".staging-{new.id}" / "top.sls"
    # Wrongly keep top.sls (link it from the old release), then copy it anyway: the in-place copy skips it.
    target.prepare_staging(new.id, old.id, sorted(old.manifest.expected_files()), [])
    assert os.path.samefile(staged_top, donor_top)
    target.copy_files(new.id, new.tree, ["top.sls", "web/part000.sls"])
    assert donor_top.read_bytes() == before and os.path.samefile(staged_top, donor_top)
    # The repair copy (not right after prepare_staging) replaces the link with a file of its own.
    target.copy_files(new.id, new.tree, ["top.sls"])
    assert donor_top.read_bytes() == before
    assert not os.path.samefile(staged_top, donor_top) and staged_top.read_text() == "base: {}\n"


def _master_config(path: Path, roots: Path, base: Path) -> Path:
    """A syndic master's config on the "remote" host: its file_roots, and private cache/pki/sock dirs."""
    state = path.parent / f"{path.name}.d-state"
    path.write_text(
        f"root_dir: {state}\ncachedir: {state}/cache\npki_dir: {state}/pki\nsock_dir: {state}/sock\n"
        f"log_file: {state}/log\nuser: {os.environ.get('USER') or 'root'}\n"
        f"file_roots:\n  base:\n    - {base}\n  __env__:\n    - {roots}/envs/__env__\n"
    )
    return path


def test_attestation_asks_the_ssh_syndics_salt_fileserver_on_its_host(store, make_target, tmp_path):
    """Issue 11, attestation: over the SSH session, the syndic master's own Salt (its config, its fileserver:
    update, file list, serve_file of the marker) says what it serves - not the marker read as a file. A master
    whose file_roots points elsewhere is caught although the switched link and its marker are right; a host
    that cannot run Salt falls back to the marker under auto, stated as weaker."""
    from pipeline.sync.attest import attest
    from pipeline.sync.attest_select import choose_attestor

    rel = make_release(store, {**sample_files(5), **ODD_NAMES})
    roots = tmp_path / "syndics" / "syndic-prod-a"
    good = _master_config(tmp_path / "master-good", roots, roots / "current")
    target = make_target("syndic-prod-a", roots, salt_master_config=good, salt_python=sys.executable)
    attestor = choose_attestor([target], {}, "auto", store)
    result = sync(store, [target], rel, attestor=attestor)
    assert result.ok, result.failures()
    assert result.attestation.method == "salt-master (ssh)" and result.attestation.weaker == []
    assert [s.method for s in result.attestation.served] == ["salt-master (ssh)"]
    # The canary saltenv, through the master's __env__ root.
    canary = sync(store, [target], rel, saltenv=saltenv_for(rel.id), attestor=attestor)
    assert canary.ok and canary.attestation.method == "salt-master (ssh)", canary.failures()

    # file_roots of the master points at an old copy holding the same marker and a leftover file.
    stale = tmp_path / "stale-copy"
    subprocess.run(["cp", "-a", str(roots / "current") + "/.", str(stale)], check=True)
    (stale / "old-leftover.sls").write_text("x: 1\n")
    wrong = _master_config(tmp_path / "master-wrong", roots, stale)
    misconfigured = make_target("syndic-prod-a", roots, salt_master_config=wrong, salt_python=sys.executable)
    result = attest(choose_attestor([misconfigured], {}, "auto", store), ["syndic-prod-a"], rel.id)
    assert not result.ok
    assert "lists other files for base than release" in result.problems()[0] and "old-leftover.sls" in result.problems()[0]
    # The marker alone would have said yes: that is why it is only the fallback.
    assert attest(FileRootsAttestor([misconfigured]), ["syndic-prod-a"], rel.id).ok

    # No Salt on the host: auto falls back to the marker and says it is weaker; salt refuses.
    no_salt = make_target("syndic-prod-a", roots, salt_master_config=good, salt_python="/nonexistent/python3")
    result = attest(choose_attestor([no_salt], {}, "auto", store), ["syndic-prod-a"], rel.id)
    assert result.ok and result.weaker and result.served[0].method.startswith("file_roots (weaker:")
    result = attest(choose_attestor([no_salt], {}, "salt", store), ["syndic-prod-a"], rel.id)
    assert not result.ok and "cannot ask its Salt fileserver" in result.problems()[0]
