"""The manifest of a release: every file with its size, mode and sha256, and the id derived from it.

A release is *content-addressed*: its id is a short prefix of the sha256 of the canonical manifest, so two
commits with the same file_roots content give the same release, and any change of a byte, a mode or a path
gives a new one. The manifest is the authority every copy (the local store, each syndic) is verified against.

The release tree also holds :data:`MARKER_NAME` at its root. It names the release and the manifest digest, so
a syndic master (or a minion of it, through ``salt://saltpipe-release.json``) can say which release it serves.
The marker is derived from the manifest, so it cannot be part of it; :meth:`Manifest.expected_files` lists the
manifest's files plus the marker, which is what a verified tree must hold exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InfrastructureError

#: Format of manifest.json and of the marker; bumped only with a migration.
MANIFEST_FORMAT = 1
#: Release ids look like ``rel-3f2a9c1b7d4e``: a fixed prefix, then 12 hex digits of the manifest digest.
RELEASE_ID_PREFIX = "rel-"
RELEASE_ID_HEX = 12
RELEASE_ID_RE = re.compile(rf"^{RELEASE_ID_PREFIX}[0-9a-f]{{{RELEASE_ID_HEX}}}$")
#: The file at the root of every release tree that says which release it is.
MARKER_NAME = "saltpipe-release.json"
#: Git stores only these two modes for regular files.
ALLOWED_MODES = (0o644, 0o755)


class ManifestError(InfrastructureError):
    """A manifest file cannot be read or is not a saltpipe manifest."""


@dataclass(frozen=True, order=True)
class ManifestEntry:
    """One regular file of a release tree. ``path`` is POSIX and relative to the tree root."""

    path: str
    size: int
    mode: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mode": f"{self.mode:04o}", "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "ManifestEntry":
        try:
            entry = cls(
                path=str(data["path"]),
                size=int(data["size"]),
                mode=int(str(data["mode"]), 8),
                sha256=str(data["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: bad manifest entry {data!r} ({exc})") from None
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
            raise ManifestError(f"{where}: {entry.path}: sha256 is not 64 hex digits")
        return entry


@dataclass(frozen=True)
class Manifest:
    """The sorted files of a release (the marker excluded). Equal manifests mean equal releases."""

    entries: tuple[ManifestEntry, ...]

    def __post_init__(self) -> None:
        paths = [e.path for e in self.entries]
        if paths != sorted(paths):
            raise ValueError("manifest entries must be sorted by path")
        if len(set(paths)) != len(paths):
            raise ValueError("manifest paths must be unique")

    @classmethod
    def of(cls, entries: list[ManifestEntry] | tuple[ManifestEntry, ...]) -> "Manifest":
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    def canonical_bytes(self) -> bytes:
        """The exact bytes the digest is taken over. Never change this without bumping MANIFEST_FORMAT."""
        rows = [[e.path, e.size, f"{e.mode:04o}", e.sha256] for e in self.entries]
        return json.dumps(
            {"format": MANIFEST_FORMAT, "files": rows}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    @property
    def release_id(self) -> str:
        return RELEASE_ID_PREFIX + self.digest[:RELEASE_ID_HEX]

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}

    # -- the marker -------------------------------------------------------------------------------------------

    def marker_bytes(self) -> bytes:
        """Content of :data:`MARKER_NAME` for this release; deterministic (the same manifest, the same bytes)."""
        data = {
            "format": MANIFEST_FORMAT,
            "release": self.release_id,
            "manifest_sha256": self.digest,
            "files": len(self.entries),
            "bytes": self.total_bytes,
        }
        return (json.dumps(data, sort_keys=True, indent=1) + "\n").encode("utf-8")

    def marker_entry(self) -> ManifestEntry:
        data = self.marker_bytes()
        return ManifestEntry(MARKER_NAME, len(data), 0o644, hashlib.sha256(data).hexdigest())

    def expected_files(self) -> dict[str, ManifestEntry]:
        """Every regular file a correct release tree holds: the manifest's files and the marker."""
        files = self.by_path()
        files[MARKER_NAME] = self.marker_entry()
        return files

    # -- files ------------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "release": self.release_id,
            "digest": self.digest,
            "files": [e.to_json() for e in self.entries],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        """Read ``manifest.json``; the stored id and digest must match the entries (else it was edited)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ManifestError(
                f"{path}: cannot read manifest ({exc})", hint="rebuild the release with `saltpipe release build`"
            ) from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(
            data.get("files"), list
        ):
            raise ManifestError(f"{path}: not a saltpipe manifest (format {MANIFEST_FORMAT})")
        try:
            manifest = cls.of([ManifestEntry.from_json(item, str(path)) for item in data["files"]])
        except ValueError as exc:
            raise ManifestError(f"{path}: {exc}") from None
        if data.get("digest") != manifest.digest or data.get("release") != manifest.release_id:
            raise ManifestError(
                f"{path}: the stored digest/id do not match the listed files (the manifest was edited)",
                hint="remove this release directory and rebuild it with `saltpipe release build`",
            )
        return manifest


def parse_marker(data: bytes | str) -> dict[str, Any] | None:
    """The marker's fields, or ``None`` when ``data`` is not a saltpipe marker (attestation reads untrusted text)."""
    try:
        parsed = json.loads(data)
    except (ValueError, TypeError):
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("release"), str):
        return None
    return parsed


def check_release_id(value: str) -> str:
    """``value`` if it looks like a release id, else a :class:`~pipeline.errors.UsageError` saying what one is."""
    from pipeline.errors import UsageError

    if not RELEASE_ID_RE.match(value):
        raise UsageError(
            f"{value!r} is not a release id",
            hint=f"release ids look like {RELEASE_ID_PREFIX}{'0' * RELEASE_ID_HEX}; `saltpipe release list` shows them",
        )
    return value
