"""Building releases from Git commits: content, ids, manifests, refusals, the immutable store."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from release_helpers import Link, commit, commit_raw_tree, hash_blob, mktree, write_files

from pipeline.errors import GitError
from pipeline.release import (
    MARKER_NAME,
    BuildContext,
    Manifest,
    ReleaseContentError,
    ReleaseStore,
    ReleaseStoreError,
    build_release,
    parse_marker,
)

BASIC = {
    "states/top.sls": "base:\n  '*':\n    - web\n",
    "states/web/init.sls": "nginx:\n  pkg.installed\n",
    "states/web/files/run.sh": "#!/bin/sh\necho hi\n",
    "_modules/ops_app.py": "def health():\n    return True\n",
    "_states/ops_node.py": "def present(name):\n    return {}\n",
    "_grains/roles.py": "def roles():\n    return {}\n",
    "salt/pipeline.yaml": "not released\n",
    "README.md": "not released\n",
    "docs/x.md": "not released\n",
}


def build(repo, store: ReleaseStore, rev: str = "HEAD"):
    return build_release(BuildContext(repo=Path(repo.working_tree_dir), rev=rev, store=store))


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "state" / "releases")


def test_tree_maps_states_to_root_and_keeps_underscore_dirs(make_repo, store):
    result = build(make_repo(BASIC), store)
    paths = [e.path for e in result.release.manifest.entries]
    assert paths == [
        "_grains/roles.py",
        "_modules/ops_app.py",
        "_states/ops_node.py",
        "top.sls",
        "web/files/run.sh",
        "web/init.sls",
    ]
    tree = result.release.tree
    assert (tree / "top.sls").read_text() == BASIC["states/top.sls"]
    assert stat.S_IMODE(os.stat(tree / "web/files/run.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tree / "web/init.sls").st_mode) == 0o644
    assert {e.path: e.mode for e in result.release.manifest.entries}["web/files/run.sh"] == 0o755
    assert not (tree / "salt").exists() and not (tree / "README.md").exists()
    assert result.created and result.release.commit == result.commit


def test_same_commit_same_id_and_store_entry_reused(make_repo, store):
    repo = make_repo(BASIC)
    first = build(repo, store)
    second = build(repo, store)
    assert first.release.id == second.release.id
    assert first.release.id.startswith("rel-") and len(first.release.id) == 16
    assert second.created is False
    assert [p.name for p in store.root.iterdir()] == [first.release.id]


def test_same_content_from_another_commit_gives_same_id(make_repo, store):
    repo = make_repo(BASIC)
    first = build(repo, store)
    commit(repo, {"README.md": "only outside the release changed\n"})
    second = build(repo, store)
    assert second.commit != first.commit
    assert second.release.id == first.release.id


def test_build_reads_the_commit_not_the_working_tree(make_repo, store):
    repo = make_repo(BASIC)
    clean = build(repo, store)
    write_files(Path(repo.working_tree_dir), {"states/web/init.sls": "dirty\n", "states/untracked.sls": "x\n"})
    again = build(repo, store)
    assert again.release.id == clean.release.id
    assert "untracked.sls" not in again.release.manifest.by_path()


def test_one_byte_or_mode_change_gives_new_id(make_repo, store):
    repo = make_repo(BASIC)
    base_id = build(repo, store).release.id
    commit(repo, {"states/web/init.sls": "nginx:\n  pkg.installed \n"})
    content_id = build(repo, store).release.id
    os.chmod(Path(repo.working_tree_dir) / "states/web/init.sls", 0o755)
    repo.git.add(A=True)
    repo.git.commit("-q", "-m", "mode")
    mode_id = build(repo, store).release.id
    assert len({base_id, content_id, mode_id}) == 3


def test_older_revision_can_be_built(make_repo, store):
    repo = make_repo(BASIC)
    old = repo.head.commit.hexsha
    commit(repo, {"states/new.sls": "x: {}\n"})
    result = build(repo, store, rev=old)
    assert "new.sls" not in result.release.manifest.by_path()
    assert result.commit == old


def test_manifest_and_marker_are_stored_and_consistent(make_repo, store):
    result = build(make_repo(BASIC), store)
    rel = result.release
    loaded = Manifest.load(rel.path / "manifest.json")
    assert loaded == rel.manifest
    marker = parse_marker((rel.tree / MARKER_NAME).read_bytes())
    assert marker["release"] == rel.id
    assert marker["manifest_sha256"] == rel.manifest.digest
    assert marker["files"] == len(rel.manifest.entries)
    assert store.verify(rel) == []
    meta = json.loads((rel.path / "release.json").read_text())
    assert meta["commit"] == result.commit


def test_file_symlinks_inside_the_tree_are_materialised(make_repo, store):
    repo = make_repo({
        **BASIC,
        "states/web/alias.sls": Link("init.sls"),
        "states/shared": Link("../_files/common"),
        "_files/common/motd": "hello\n",
        "_modules/linked.py": Link("../states/web/files/run.sh"),
    })
    rel = build(repo, store).release
    files = rel.manifest.by_path()
    assert (rel.tree / "web/alias.sls").read_text() == BASIC["states/web/init.sls"]
    assert not (rel.tree / "web/alias.sls").is_symlink()
    assert (rel.tree / "shared/motd").read_text() == "hello\n"
    assert files["_modules/linked.py"].mode == 0o755
    assert store.verify(rel) == []


@pytest.mark.parametrize(
    "extra, path, words",
    [
        ({"states/evil.sls": Link("/etc/passwd")}, "states/evil.sls", "absolute"),
        ({"states/evil.sls": Link("../../outside")}, "states/evil.sls", "outside the repository"),
        ({"states/cfg.yaml": Link("../salt/pipeline.yaml")}, "states/cfg.yaml", "leaves the release tree"),
        ({"states/gone.sls": Link("nothere.sls")}, "states/gone.sls", "not in the commit"),
        ({"states/a.sls": Link("b.sls"), "states/b.sls": Link("a.sls")}, "states/a.sls", "loop"),
        ({"states/web/up": Link("..")}, "states/web/up", "cycle"),
        ({"states/saltpipe-release.json": "{}"}, "states/saltpipe-release.json", "reserved"),
        ({"states/_modules/ops_app.py": "dup\n"}, "_modules/ops_app.py", "as states/_modules/ops_app.py does"),
    ],
)
def test_refusals_name_the_path(make_repo, store, extra, path, words):
    repo = make_repo({**BASIC, **extra})
    with pytest.raises(ReleaseContentError) as info:
        build(repo, store)
    assert info.value.path == path
    assert words in str(info.value)
    assert str(info.value).startswith(path + ":")
    assert not store.root.exists() or not any(store.root.iterdir()), "a refused build leaves nothing behind"


def _crafted(repo, nested_lines: list[str], top_extra: list[str] | None = None) -> str:
    blob = hash_blob(repo, "x: {}\n")
    states = mktree(repo, [f"100644 blob {blob}\ttop.sls", *[line.format(blob=blob) for line in nested_lines]])
    return commit_raw_tree(repo, [f"040000 tree {states}\tstates", *(top_extra or [])])


def test_dotdot_name_in_a_crafted_tree_is_refused(make_repo, store):
    repo = make_repo(BASIC)
    sha = _crafted(repo, ["100644 blob {blob}\t.."])
    with pytest.raises(ReleaseContentError) as info:
        build(repo, store, rev=sha)
    assert info.value.path == "states/.."
    assert "escape" in str(info.value)


def test_control_characters_in_names_are_refused(make_repo, store):
    repo = make_repo(BASIC)
    sha = _crafted(repo, ["100644 blob {blob}\tnew\tline.sls"])  # a tab inside the name
    with pytest.raises(ReleaseContentError, match="control character"):
        build(repo, store, rev=sha)


def test_submodule_is_refused(make_repo, store):
    repo = make_repo(BASIC)
    gitlink = "1" * 40
    sha = _crafted(repo, [f"160000 commit {gitlink}\tvendored"])
    with pytest.raises(ReleaseContentError) as info:
        build(repo, store, rev=sha)
    assert info.value.path == "states/vendored"
    assert "submodule" in str(info.value)


def test_top_level_underscore_submodule_is_refused(make_repo, store):
    repo = make_repo(BASIC)
    sha = _crafted(repo, [], top_extra=[f"160000 commit {'2' * 40}\t_vendor"])
    with pytest.raises(ReleaseContentError, match="_vendor: is a submodule"):
        build(repo, store, rev=sha)


def test_missing_states_dir_and_bad_rev(make_repo, store):
    repo = make_repo({"_modules/x.py": "x = 1\n"})
    with pytest.raises(ReleaseContentError, match="no states/ directory"):
        build(repo, store)
    with pytest.raises(GitError, match="does not name a commit"):
        build(repo, store, rev="no-such-branch")


def test_not_a_repository(tmp_path, store):
    with pytest.raises(GitError, match="not a Git repository"):
        build_release(BuildContext(repo=tmp_path, rev="HEAD", store=store))


def test_store_refuses_a_damaged_existing_release(make_repo, store):
    repo = make_repo(BASIC)
    rel = build(repo, store).release
    target = rel.tree / "web/init.sls"
    target.write_text("edited in place\n")
    with pytest.raises(ReleaseStoreError) as info:
        build(repo, store)
    assert "web/init.sls" in str(info.value) and "immutable" in str(info.value)
    assert target.read_text() == "edited in place\n", "the store entry is not silently overwritten"


def test_store_refuses_different_content_under_an_existing_id(make_repo, store):
    repo = make_repo(BASIC)
    rel = build(repo, store).release
    other = build(make_repo({**BASIC, "states/other.sls": "y: {}\n"}), store).release
    # Put another release's manifest under this id, as a collision or a hand edit would.
    shutil.rmtree(rel.path)
    shutil.copytree(other.path, rel.path)
    with pytest.raises(ReleaseStoreError, match="different content|does not match"):
        build(repo, store)


def test_store_lists_releases_and_rejects_unknown_ids(make_repo, store):
    a = build(make_repo(BASIC), store).release
    b = build(make_repo({**BASIC, "states/b.sls": "b: {}\n"}), store).release
    assert {r.id for r in store.list()} == {a.id, b.id}
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="not in the release store"):
        store.get("rel-000000000000")
    with pytest.raises(UsageError, match="not a release id"):
        store.get("../etc")
