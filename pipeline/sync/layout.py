"""The on-disk layout of one syndic's saltpipe directory (the ``path`` of its ``file_roots`` in pipeline.yaml).

::

    <dir>/                            created by the operator; saltpipe never creates it (a typo must not
    |                                 silently create a directory Salt does not serve)
    +-- releases/
    |   +-- rel-3f2a9c1b7d4e/         immutable, verified release trees (states at the top, _modules/, ...,
    |   +-- rel-9b0c11d2e3f4/         saltpipe-release.json); unchanged files are hard links between them
    |   +-- .staging-rel-.../         a release being copied; never served; removed by the next sync
    +-- current -> releases/rel-3f2a...
    |                                 what saltenv ``base`` serves; switched by rename(2) of a new link
    +-- envs/
    |   +-- rel-9b0c11d2e3f4 -> ../releases/rel-9b0c11d2e3f4
    |                                 a canary saltenv: Salt's ``__env__`` file_roots maps saltenv
    |                                 ``rel-9b0c...`` to this directory; ``current`` is unchanged
    +-- saltpipe-state.json           what saltpipe did here: base/previous release, when, history
    +-- .saltpipe-tmp-*               a symlink or state file about to be renamed into place

The syndic master's config (see docs/sync.md)::

    file_roots:
      base:
        - <dir>/current
      __env__:
        - <dir>/envs/__env__

Symlinks are relative, so the directory can be mounted at another path (a container, a chroot) unchanged.
"""

from __future__ import annotations

from pipeline.release.manifest import RELEASE_ID_RE

RELEASES_DIR = "releases"
#: The link that serves saltenv ``base`` (named ``current``, the usual name for "the live release").
BASE_LINK = "current"
ENVS_DIR = "envs"
STATE_FILE = "saltpipe-state.json"
STAGING_PREFIX = ".staging-"
TMP_PREFIX = ".saltpipe-tmp-"
#: How many history entries saltpipe-state.json keeps.
HISTORY_KEEP = 50


def saltenv_for(release_id: str) -> str:
    """The saltenv under which a canary release is served: the release id itself (``rel-3f2a9c1b7d4e``).

    Release ids cannot collide with ``base`` or with each other, and are valid saltenv names.
    """
    return release_id


def env_link(saltenv: str) -> str:
    """The link (relative to the syndic's directory) that serves ``saltenv``: ``current`` or ``envs/<saltenv>``."""
    return BASE_LINK if saltenv == "base" else f"{ENVS_DIR}/{saltenv}"


def link_target(link: str, release_id: str) -> str:
    """The relative symlink target for ``link`` pointing at ``release_id``."""
    depth = link.count("/")
    return "../" * depth + f"{RELEASES_DIR}/{release_id}"


def release_of_target(target: str | None) -> str | None:
    """The release id a symlink target names (``releases/<id>`` or ``../releases/<id>``), else ``None``."""
    if not target:
        return None
    name = target.rstrip("/").rsplit("/", 1)[-1]
    parent = target.rstrip("/").rsplit("/", 2)
    if len(parent) < 2 or parent[-2] != RELEASES_DIR or not RELEASE_ID_RE.match(name):
        return None
    return name


def staging_name(release_id: str) -> str:
    return f"{STAGING_PREFIX}{release_id}"
