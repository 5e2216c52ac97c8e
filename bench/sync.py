"""Benchmark of ``saltpipe sync`` (issue 5, point 8). Prints one JSON document.

Usage: ``python bench/sync.py [--target local|ssh|all] [--files N] [--mib M] [--repeat R]``

What it measures, on a synthetic file_roots tree (``--files`` files, about ``--mib`` MiB, sizes spread like a
Salt repository: many small SLS/Jinja files, some larger managed files), for each target kind:

* ``ratio_3_vs_1`` - a full sync to 3 syndics at once / a full sync to 1 syndic (target <= 1.5);
* ``one_file_bytes_ratio`` - bytes sent to the syndic for a release that changes one 64 KiB file / that file's
  size (target <= 2). For ssh this counts everything sent: rsync's "Total bytes sent" plus the scripts, file
  lists and state file sent to the remote shell; for local, the bytes copied;
* ``baseline_rsync_3_vs_1`` - the same 1-vs-3 ratio for plain ``rsync -a`` run 3 times at once: what this
  machine allows when the receivers share its CPUs and disk (on real syndics they do not);
* ``ratio_vs_rsync`` - a full sync to 1 syndic / plain ``rsync -a`` of the same tree to an empty directory over
  the same transport (target <= 1.5); ``ratio_vs_rsync_incremental`` does the same for the one-file change
  (saltpipe also re-verifies every file's sha256 on the syndic; rsync -a only compares sizes and mtimes).

``cpu_seconds_median`` (Linux) gives the CPU seconds of each full sync and of plain rsync, split into the sender
side (this process and its ssh/rsync children) and the receivers (everything under the sshd), with
``floor_ratio_3_vs_1``: the 3-syndic CPU spread over all of this machine's CPUs, divided by the 1-syndic wall
time - the best ``ratio_3_vs_1`` this machine could give with nothing else running. They are measured beside
the timed figures and change none of them.

Each repeat runs the compared operations back to back into fresh directories; the ratios are medians of the
per-repeat ratios (``ratios_best_of`` gives min/min as well: this machine is shared and its load varies). The ssh target runs against a throwaway
sshd on 127.0.0.1 (tests/integration/local_sshd.py), so sender and receivers share this machine's CPUs.
The top-level keys are those of the ssh target when it ran (the production transport), else of local.
Three *local* syndics share one disk and this machine's two CPUs, so their ``ratio_3_vs_1`` measures this
machine more than saltpipe: a local target serves a syndic master on the same host, one per host in practice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from pipeline.release import MARKER_NAME, Manifest, ManifestEntry, Release, ReleaseStore  # noqa: E402
from pipeline.release.store import TREE_DIR  # noqa: E402
from pipeline.sync import LocalTarget, SshTarget, SyncContext, sync_release  # noqa: E402

CHANGED = "web/files/app.conf"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _become_subreaper() -> bool:
    """Linux: orphaned descendants (ssh's ControlPersist master daemonizes) stay ours, so their CPU is counted."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _reap_orphans(keep: set[int]) -> None:
    """Collect exited orphans (not the processes in ``keep``) so their CPU lands in our children's times."""
    for pid in _children(os.getpid()):
        if pid in keep:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                out.append(int(entry))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of ``root``, its reaped children and its live (or zombie) descendants."""
    parents: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
        ticks[int(entry)] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo += parents.get(pid, [])
    return total / _TICK


class CpuMeter:
    """CPU seconds of one operation: all of this process's tree, and the part under the sshd (the receivers)."""

    def __init__(self, sshd_pid: int | None) -> None:
        self.sshd_pid = sshd_pid
        self.enabled = os.path.isdir("/proc/self") and _become_subreaper()

    def sample(self) -> tuple[float, float]:
        if not self.enabled:
            return 0.0, 0.0
        _reap_orphans({self.sshd_pid} if self.sshd_pid else set())
        receivers = tree_cpu(self.sshd_pid) if self.sshd_pid else 0.0
        return tree_cpu(os.getpid()), receivers

CHANGED_SIZE = 64 * 1024


def synthetic_files(n: int, mib: float, seed: int = 5) -> dict[str, bytes]:
    """``n`` files totalling about ``mib`` MiB: 90% small states/templates, 10% larger managed files."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {"top.sls": b"base:\n  '*':\n    - web\n"}
    budget = int(mib * 1024 * 1024) - CHANGED_SIZE
    small = int(n * 0.9)
    small_size = max(200, int(budget * 0.25 / max(small, 1)))
    large = max(1, n - small - 2)
    large_size = max(1024, int(budget * 0.75 / large))
    for i in range(small):
        files[f"roles/r{i % 40:02d}/s{i:05d}.sls"] = rng.randbytes(small_size // 2).hex().encode()
    for i in range(large):
        files[f"web/files/blob{i:04d}.bin"] = rng.randbytes(large_size)
    files[CHANGED] = rng.randbytes(CHANGED_SIZE // 2).hex().encode()
    return files


def make_release(store: ReleaseStore, files: dict[str, bytes]) -> Release:
    build = store.new_build_dir()
    entries = []
    for rel, data in files.items():
        path = build / TREE_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, 0o644)
        entries.append(ManifestEntry(rel, len(data), 0o644, hashlib.sha256(data).hexdigest()))
    manifest = Manifest.of(entries)
    (build / TREE_DIR / MARKER_NAME).write_bytes(manifest.marker_bytes())
    return store.add(build, manifest, {"commit": None, "built_at": None})[0]


class Bench:
    def __init__(self, kind: str, work: Path, store: ReleaseStore, sshd: Any | None) -> None:
        self.kind = kind
        self.work = work
        self.store = store
        self.sshd = sshd
        self.n = 0
        self.meter = CpuMeter(sshd.process.pid if sshd is not None else None)
        #: op name -> [(total CPU s, receiver CPU s)], one per run (see measure()).
        self.cpu: dict[str, list[tuple[float, float]]] = {}

    def _cpu(self, op: str, before: tuple[float, float]) -> None:
        time.sleep(0.05)  # let the sshd reap what the operation left (its CPU then shows in its times)
        after = self.meter.sample()
        self.cpu.setdefault(op, []).append((after[0] - before[0], after[1] - before[1]))

    def fresh_dirs(self, count: int) -> list[Path]:
        out = []
        for _ in range(count):
            self.n += 1
            d = self.work / f"{self.kind}-syndic-{self.n}"
            d.mkdir(parents=True)
            out.append(d)
        return out

    def target(self, name: str, root: Path):
        if self.kind == "local":
            return LocalTarget(name, root)
        return SshTarget(name, "127.0.0.1", root, port=self.sshd.port, ssh_options=self.sshd.ssh_options)

    def sync(self, release: Release, roots: list[Path], op: str | None = None) -> tuple[float, list[Any], Any]:
        targets = tuple(self.target(f"syndic-{i}", r) for i, r in enumerate(roots))
        cpu = self.meter.sample()
        started = time.perf_counter()
        result = sync_release(SyncContext("bench", release, targets, self.store))
        for t in targets:
            t.close()  # part of the cost: a real sync closes its connections too
        seconds = time.perf_counter() - started
        if op:
            self._cpu(op, cpu)
        if not result.ok:
            raise SystemExit(f"bench: sync failed: {result.failures()}")
        return seconds, list(targets), result

    def _rsync_argv(self, tree: Path, dest: Path) -> list[str]:
        if self.kind == "local":
            return ["rsync", "-a", f"{tree}/", f"{dest}/"]
        ssh = ["ssh", *self.sshd.ssh_options, "-p", str(self.sshd.port), "-o", "BatchMode=yes"]
        return ["rsync", "-a", "-e", " ".join(ssh), f"{tree}/", f"127.0.0.1:{dest}/"]

    def rsync(self, tree: Path, *dests: Path, op: str | None = None) -> float:
        """Plain ``rsync -a`` of ``tree`` into each of ``dests``, all at once; seconds until the last ends."""
        cpu = self.meter.sample()
        started = time.perf_counter()
        procs = [subprocess.Popen(self._rsync_argv(tree, d), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for d in dests]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"bench: rsync failed: {err.decode(errors='replace')}")
        seconds = time.perf_counter() - started
        if op:
            self._cpu(op, cpu)
        return seconds


def measure(bench: Bench, first: Release, second: Release, repeat: int) -> dict[str, Any]:
    """Each repeat runs the compared things back to back (ours, then the baseline), so load from other
    processes on this machine hits both alike; ratios are medians of the per-repeat ratios."""
    one, three, rsync_full, ours_inc, rsync_inc = [], [], [], [], []
    r31, rfull, rinc, rsync3 = [], [], [], []
    bytes_one_file: list[int] = []
    payload_one_file: list[int] = []
    for _ in range(repeat):
        (root,) = bench.fresh_dirs(1)
        t1 = bench.sync(first, [root], op="sync_1_syndic")[0]
        (plain,) = bench.fresh_dirs(1)
        tr = bench.rsync(first.tree, plain, op="rsync_a_1")
        t3 = bench.sync(first, bench.fresh_dirs(3), op="sync_3_syndics")[0]
        tr3 = bench.rsync(first.tree, *bench.fresh_dirs(3), op="rsync_a_3")
        rsync3.append(tr3 / tr)

        seconds, targets, result = bench.sync(second, [root])
        tri = bench.rsync(second.tree, plain)
        staged = result.staged[0]
        payload_one_file.append(staged.bytes_copied)
        if bench.kind == "ssh":
            traffic = targets[0].traffic()
            bytes_one_file.append(traffic["rsync_sent"] + traffic["control_sent"])
        else:
            bytes_one_file.append(staged.bytes_copied)
        one.append(t1)
        three.append(t3)
        rsync_full.append(tr)
        ours_inc.append(seconds)
        rsync_inc.append(tri)
        r31.append(t3 / t1)
        rfull.append(t1 / tr)
        rinc.append(seconds / tri)
    med = statistics.median
    changed = CHANGED_SIZE
    return {
        "ratio_3_vs_1": round(med(r31), 3),
        "one_file_bytes_ratio": round(med(bytes_one_file) / changed, 3),
        "ratio_vs_rsync": round(med(rfull), 3),
        "ratio_vs_rsync_incremental": round(med(rinc), 3),
        # What this machine allows: plain rsync -a to 3 destinations at once / to 1 (same transport).
        "baseline_rsync_3_vs_1": round(med(rsync3), 3),
        "seconds_median": {
            "sync_1_syndic": round(med(one), 3),
            "sync_3_syndics": round(med(three), 3),
            "rsync_a_full": round(med(rsync_full), 3),
            "sync_one_file_change": round(med(ours_inc), 3),
            "rsync_a_one_file_change": round(med(rsync_inc), 3),
        },
        # Best-of-N ratios (the minimum is the run least disturbed by other load on a shared machine).
        "ratios_best_of": {
            "3_vs_1": round(min(three) / min(one), 3),
            "vs_rsync": round(min(one) / min(rsync_full), 3),
            "vs_rsync_incremental": round(min(ours_inc) / min(rsync_inc), 3),
        },
        "ratios_per_repeat": {
            "3_vs_1": [round(x, 3) for x in r31],
            "vs_rsync": [round(x, 3) for x in rfull],
            "vs_rsync_incremental": [round(x, 3) for x in rinc],
        },
        "cpu_seconds_median": _cpu_figures(bench, {"sync_1_syndic": med(one), "sync_3_syndics": med(three),
                                                   "rsync_a_1": med(rsync_full)}),
        "one_file_change": {
            "changed_file": CHANGED,
            "changed_file_bytes": changed,
            "bytes_sent_to_syndic": int(med(bytes_one_file)),
            "payload_bytes_copied": int(med(payload_one_file)),
            "files_copied": 2,  # the changed file and the release marker
        },
    }


def _cpu_figures(bench: Bench, walls: dict[str, float]) -> dict[str, Any]:
    """CPU seconds per full sync (sender side = this process and its ssh/rsync children; receivers = under the
    sshd), and what they imply on this machine: 3 syncs need about 3x the CPU of one, which this machine's CPUs
    cannot run in less than CPU/cpus seconds even with nothing else running (``floor_*``). ``cpus_obtained`` is
    CPU seconds / wall seconds (medians): below the CPU count, other processes (or waiting) had the rest."""
    if not bench.meter.enabled or not bench.cpu:
        return {"note": "not measured (needs Linux /proc)"}
    med = statistics.median
    out: dict[str, Any] = {}
    for op, runs in bench.cpu.items():
        total = med(r[0] for r in runs)
        entry = {"total": round(total, 3)}
        if bench.kind == "ssh":
            receivers = med(r[1] for r in runs)
            entry.update({"sender": round(total - receivers, 3), "receivers": round(receivers, 3)})
        if op in walls and walls[op] > 0:
            entry["cpus_obtained"] = round(total / walls[op], 2)
        out[op] = entry
    cpus = os.cpu_count() or 1
    wall_one = walls["sync_1_syndic"]
    three = out.get("sync_3_syndics", {}).get("total")
    if three:
        # The least wall time 3 syncs can take here: their CPU spread over every CPU, nothing else running.
        out["floor_3_syndics_seconds"] = round(three / cpus, 3)
        out["floor_ratio_3_vs_1"] = round(three / cpus / wall_one, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["local", "ssh", "all"], default="all")
    parser.add_argument("--files", type=int, default=1500)
    parser.add_argument("--mib", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from local_sshd import missing_tools, start_sshd

    kinds = ["local", "ssh"] if args.target == "all" else [args.target]
    notes: list[str] = []
    if "ssh" in kinds and missing_tools():
        notes.append(f"ssh target skipped: missing {', '.join(missing_tools())}")
        kinds.remove("ssh")
        if not kinds:
            print(json.dumps({"error": notes[0]}))
            return 2
    work = Path(tempfile.mkdtemp(prefix="saltpipe-bench-"))
    sshd = None
    try:
        store = ReleaseStore(work / "store")
        files = synthetic_files(args.files, args.mib)
        first = make_release(store, files)
        changed = dict(files)
        changed[CHANGED] = random.Random(7).randbytes(CHANGED_SIZE // 2).hex().encode()
        second = make_release(store, changed)
        # The rsync baseline deserves its quick check: unchanged files keep their mtimes between the two trees,
        # as they would in a checkout that is updated in place.
        for rel in files:
            if rel != CHANGED:
                st = os.stat(first.tree / rel)
                os.utime(second.tree / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
        if "ssh" in kinds:
            sshd = start_sshd(work / "sshd")
        per_kind = {}
        for kind in kinds:
            per_kind[kind] = measure(Bench(kind, work / kind, store, sshd), first, second, args.repeat)
        primary = per_kind.get("ssh") or per_kind["local"]
        out = {
            "ratio_3_vs_1": primary["ratio_3_vs_1"],
            "one_file_bytes_ratio": primary["one_file_bytes_ratio"],
            "ratio_vs_rsync": primary["ratio_vs_rsync"],
            "primary_target": "ssh" if "ssh" in per_kind else "local",
            "targets": per_kind,
            "tree": {"files": len(files) + 1, "bytes": first.manifest.total_bytes},
            "repeat": args.repeat,
            "machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2), "python": platform.python_version()},
            "notes": notes,
        }
        print(json.dumps(out, indent=2))
    finally:
        if sshd is not None:
            sshd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
