"""Immutable, content-addressed releases of the file_roots tree (issue 5, point 1).

* :mod:`pipeline.release.manifest` - the manifest, the release id derived from it, the marker file;
* :mod:`pipeline.release.build` - building a release from a Git commit (never the working tree);
* :mod:`pipeline.release.store` - the local store under ``<state_dir>/releases/``;
* :mod:`pipeline.release.tree` - scanning a tree on disk and comparing it with a manifest.
"""

from pipeline.release.build import BuildContext, BuildResult, ReleaseContentError, build_release
from pipeline.release.manifest import MARKER_NAME, Manifest, ManifestEntry, ManifestError, parse_marker
from pipeline.release.store import Release, ReleaseStore, ReleaseStoreError
from pipeline.release.tree import Mismatch, TreeScan, compare, scan_tree

__all__ = [
    "BuildContext",
    "BuildResult",
    "MARKER_NAME",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "Mismatch",
    "Release",
    "ReleaseContentError",
    "ReleaseStore",
    "ReleaseStoreError",
    "TreeScan",
    "build_release",
    "compare",
    "parse_marker",
    "scan_tree",
]
