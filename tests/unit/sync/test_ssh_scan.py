"""The SSH target's verification script (``SCAN``) and its parser, run here with ``sh`` instead of over ssh.

The script hashes with ``openssl dgst -sha256 -r`` when the host has a working openssl and falls back to
coreutils' ``sha256sum``; both must give exactly what :func:`pipeline.release.tree.scan_tree` finds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.release.tree import compare, scan_tree
from pipeline.sync.ssh.scripts import SCAN, parse_scan, parse_sha256sum

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU coreutils")

NAMES = ["top.sls", "web/sp ace.sls", "web/st*ar.sls", "web/back\\slash.sls", "web/files/run.sh", "_modules/m.py"]


def _tree(root: Path) -> Path:
    rel = root / "releases" / "rel-000000000001"
    for i, name in enumerate(NAMES):
        path = rel / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content {i}\n".encode() * (i + 1))
        os.chmod(path, 0o755 if name.endswith(".sh") else 0o644)
    return rel


def _run_scan(root: Path, name: str, path_env: str) -> bytes:
    proc = subprocess.run(["sh", "-c", SCAN, "sh", str(root), name], capture_output=True, check=True,
                          env={**os.environ, "PATH": path_env})
    return proc.stdout


@pytest.fixture(params=["openssl", "sha256sum"])
def path_env(request, tmp_path: Path) -> str:
    """A PATH under which the script finds a working openssl, or one whose openssl is broken."""
    if request.param == "openssl":
        if shutil.which("openssl") is None:
            pytest.skip("no openssl here")
        return os.environ["PATH"]
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "openssl").write_text("#!/bin/sh\necho 'broken openssl' >&2\nexit 1\n")
    (fake / "openssl").chmod(0o755)
    return f"{fake}:{os.environ['PATH']}"


def test_scan_script_matches_scan_tree_with_either_hasher(tmp_path: Path, path_env: str) -> None:
    rel = _tree(tmp_path)
    out = _run_scan(tmp_path, rel.name, path_env)
    assert parse_scan(out) == scan_tree(rel)
    hashers = {"openssl": b" *./", "sha256sum": b"  ./"}
    expect = hashers["sha256sum" if "fakebin" in path_env else "openssl"]
    assert expect in out


def test_a_name_with_a_newline_fails_the_verification(tmp_path: Path, path_env: str) -> None:
    rel = _tree(tmp_path)
    expected_scan = scan_tree(rel)
    (rel / "web" / "evil\nname.sls").write_bytes(b"x\n")
    scan = parse_scan(_run_scan(tmp_path, rel.name, path_env))
    assert "name with a newline" in scan.others.values()
    # Whatever else the broken lines say, the tree no longer matches what it held before.
    from pipeline.release.manifest import ManifestEntry

    expected = {p: ManifestEntry(p, f.size, f.mode, f.sha256) for p, f in expected_scan.files.items()}
    assert compare(expected, scan)


def test_changed_content_is_seen(tmp_path: Path, path_env: str) -> None:
    rel = _tree(tmp_path)
    before = scan_tree(rel)
    (rel / "web" / "st*ar.sls").write_bytes(b"other\n")
    after = parse_scan(_run_scan(tmp_path, rel.name, path_env))
    assert after.files["web/st*ar.sls"].sha256 != before.files["web/st*ar.sls"].sha256
    assert after == scan_tree(rel)


@pytest.mark.parametrize(
    ("line", "digest", "path"),
    [
        ("ab12  ./top.sls", "ab12", "top.sls"),  # sha256sum, text mode
        ("ab12 *./top.sls", "ab12", "top.sls"),  # openssl dgst -r, sha256sum binary mode
        ("ab12 *./sp ace.sls", "ab12", "sp ace.sls"),
        ("\\ab12  ./back\\\\slash.sls", "ab12", "back\\slash.sls"),  # sha256sum escapes a backslash
        ("ab12 *./back\\slash.sls", "ab12", "back\\slash.sls"),  # openssl 3.0 does not
    ],
)
def test_parse_hash_lines(line: str, digest: str, path: str) -> None:
    assert parse_sha256sum(line) == (digest, path)
