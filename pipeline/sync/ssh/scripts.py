"""The remote side of the SSH file_roots target: one short POSIX ``sh`` script per primitive, and the parsers of
what they print.

Each script takes its arguments as ``$1``, ``$2`` ... (the syndic's root first) and exits with a code the
target turns into a :class:`~pipeline.sync.target.TargetError`. :data:`SCAN` also runs on this host for the local
target (:mod:`pipeline.sync.local`), so both targets verify a staged tree with the same listing.
"""

from __future__ import annotations

from pipeline.release.tree import FileFact, TreeScan

SNAPSHOT = r"""
root=$1
[ -d "$root" ] || { echo "no such directory: $root" >&2; exit 3; }
cd "$root" || exit 3
{ [ -d releases ] && [ -d envs ]; } || mkdir -p releases envs || exit 4
for d in releases/* releases/.staging-*; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then printf 'D\t%s\n' "${d#releases/}"; fi
done
if [ -L current ]; then printf 'L\tcurrent\t%s\n' "$(readlink current)"; fi
for l in envs/*; do
  if [ -L "$l" ]; then printf 'L\t%s\t%s\n' "$l" "$(readlink "$l")"; fi
done
printf 'F\t%s\n' "$(stat -f -c '%a %S' .)"
if [ -f saltpipe-state.json ]; then printf 'S\t'; tr -d '\n' < saltpipe-state.json; printf '\n'; fi
"""

PREPARE = r"""
cd "$1/releases" || exit 3
st=".staging-$2"
rm -rf -- "$st" || exit 4
if [ -z "$3" ]; then mkdir -- "$st" || exit 4; exit 0; fi
cp -al -- "$3" "$st" || exit 5
cd "$st" || exit 5
tr '\n' '\0' | xargs -0 -r rm -f -- || exit 6
find . -mindepth 1 -depth -type d -empty -delete || exit 6
"""

# The hashes come from OpenSSL's sha256 when the host has a working `openssl` (it uses the CPU's SHA
# instructions: about 2.5x less CPU than coreutils' sha256sum here), else from sha256sum; both print
# "<hex> [ *]./path" lines. A name with a newline could make a line-based listing lie about another path, so
# such an entry is reported on its own ("X", by inode) and fails the verification.
SCAN = r"""
cd "$1/releases/$2" || exit 3
nl=$(printf '\nx'); nl=${nl%x}
find . -mindepth 1 \( -name "*$nl*" -printf 'X\t%i\n' \) , \( ! -type d ! -type f -printf 'O\t%y\t%P\n' \) , \
  \( -type f -printf 'F\t%s\t%m\t%P\n' \)
if [ "$(openssl dgst -sha256 -r /dev/null 2>/dev/null)" = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 */dev/null" ]; then
  find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r
else
  find . -type f -print0 | xargs -0 -r sha256sum --
fi
"""

COMMIT = r"""
cd "$1/releases" || exit 3
if [ -e "$2" ]; then echo "releases/$2 exists already" >&2; exit 7; fi
mv -T -- ".staging-$2" "$2"
"""

DISCARD = r"""
cd "$1/releases" || exit 3
rm -rf -- "$2"
"""

SET_LINK = r"""
cd "$1" || exit 3
[ -d "releases/$4" ] || { echo "release $4 is not staged here" >&2; exit 8; }
if [ -d "$2" ] && [ ! -L "$2" ]; then
  rmdir -- "$2" 2>/dev/null || { echo "$1/$2 is a directory with files in it, not a saltpipe link" >&2; exit 10; }
fi
tmp="$(dirname -- "$2")/.saltpipe-tmp-$$"
ln -s -- "$3" "$tmp" || exit 9
mv -Tf -- "$tmp" "$2" || { rm -f -- "$tmp"; exit 9; }
"""

REMOVE_LINK = r"""
cd "$1" || exit 3
if [ -L "$2" ]; then rm -f -- "$2"; fi
"""

CLEAR_LIST_CACHE = r"""
d="$1/file_lists"
[ -d "$d" ] || exit 0
for b in "$d"/*/; do
  [ -d "$b" ] || continue
  rm -f -- "$b$2.p" || exit 1
done
"""

READ_MARKER = r"""
f="$1/$2/saltpipe-release.json"
if [ -f "$f" ]; then cat -- "$f"; else exit 1; fi
"""

WRITE_STATE = r"""
cd "$1" || exit 3
tmp=".saltpipe-tmp-state-$$"
cat > "$tmp" && mv -f -- "$tmp" saltpipe-state.json
"""


def parse_scan(stdout: bytes) -> TreeScan:
    """The output of :data:`SCAN` as a :class:`TreeScan`."""
    sizes: dict[str, tuple[int, int]] = {}
    hashes: dict[str, str] = {}
    others: dict[str, str] = {}
    kinds = {"l": "symlink", "p": "fifo", "s": "socket", "c": "device", "b": "device"}
    for line in stdout.decode("utf-8", "surrogateescape").split("\n"):
        if line.startswith("O\t") and line.count("\t") >= 2:
            _, kind, path = line.split("\t", 2)
            others[path] = kinds.get(kind, "special file")
        elif line.startswith("X\t"):
            others[f"(inode {line[2:]}: a name with a newline)"] = "name with a newline"
        elif line.startswith("F\t"):
            try:
                _, size, mode, path = line.split("\t", 3)
                sizes[path] = (int(size), int(mode, 8))
            except ValueError:  # only a name with a newline breaks a line; it is reported as "X" too
                others[line] = "unreadable listing line"
        elif line:
            digest, path = parse_sha256sum(line)
            hashes[path] = digest
    files = {p: FileFact(size, mode, hashes.get(p, "")) for p, (size, mode) in sizes.items()}
    return TreeScan(files, others)


def parse_sha256sum(line: str) -> tuple[str, str]:
    """``<hex>  ./path`` (sha256sum) or ``<hex> *./path`` (``openssl dgst -r``) -> (hex, path).

    Both escape a name with a newline (and sha256sum one with a backslash) and flag the line with a backslash.
    """
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    digest, _, path = line.partition(" ")
    path = path[1:] if path[:1] in (" ", "*") else path
    if escaped:
        path = path.replace("\\\\", "\0").replace("\\n", "\n").replace("\0", "\\")
    if path.startswith("./"):
        path = path[2:]
    return digest, path
