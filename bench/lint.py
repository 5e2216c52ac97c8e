"""Benchmark of ``saltpipe lint``: a full run and a one-file ``--changed-since`` run.

Generates a repository of realistic formulas (``--formulas`` x 5 SLS each: init including install, config,
service and users, a map.jinja merging pillar over defaults, Jinja loops, requisites, managed templates), a
top.sls by role, ``--modules`` execution modules in ``_modules/``, and two environments with two fixture
minions each (so every SLS renders four times) - or uses the repository given with ``--repo``. Then it times,
as CI pays it (a fresh ``saltpipe`` process each):

* ``full_seconds``: ``saltpipe lint --no-pylint`` over everything;
* ``changed_one_seconds``: ``saltpipe lint --no-pylint --changed-since main`` after one SLS changed on a branch.

Targets (issue 3): render + policy over 250 SLS <= 10 s; one changed file <= 2 s. pylint is timed apart
(``--with-pylint``): it is not part of those targets. Prints one JSON object; besides wall seconds it reports
the CPU seconds of each ``saltpipe`` process and the load average, because on a shared 2-core machine wall
time says as much about the neighbours as about lint.

    python bench/lint.py [--formulas 50] [--modules 50] [--repo PATH] [--keep] [--with-pylint]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import git

PIPELINE_YAML = """\
version: 1
environments:
  test:
    syndics:
      - name: syndic-test
        file_roots: {type: local, path: /srv/saltpipe/syndic-test}
    target: "G@saltpipe_env:test"
    canary: 1
    batches: ["100%"]
  production:
    syndics:
      - name: syndic-prod
        file_roots: {type: local, path: /srv/saltpipe/syndic-prod}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: [1, "100%"]
    requires: [test]
"""
ROLES = ("web", "app", "db", "cache", "batch")


def _grains(env: str) -> str:
    lines = ["minions:"]
    for i, role in enumerate(("web", "app")):
        lines.append(f"  {env}-{role}-1:")
        lines.append(f"    {{saltpipe_env: {env}, roles: [{role}, {ROLES[(i + 2) % len(ROLES)]}], os_family: Debian, datacenter: dc{i}}}")
    return "\n".join(lines) + "\n"


def _pillar(formulas: int) -> str:
    out = ["formulas:"]
    for n in range(formulas):
        out.append(f"  f{n:03d}: {{port: {8000 + n}, packages: [pkg-{n}-a, pkg-{n}-b], users: {{svc{n}: {{uid: {3000 + n}}}}}}}")
    return "\n".join(out) + "\n"


def _formula(n: int) -> dict[str, str]:
    name = f"f{n:03d}"
    d = f"states/{name}"
    return {
        f"{d}/map.jinja": textwrap.dedent(
            f"""\
            {{%- set defaults = {{'port': 80, 'packages': [], 'users': {{}}, 'root': '', 'conf': '/etc/{name}/{name}.conf'}} %}}
            {{%- set {name} = salt['pillar.get']('formulas:{name}', default=defaults, merge=True) %}}
            """
        ),
        f"{d}/init.sls": "include:\n  - .install\n  - .config\n  - .service\n  - .users\n",
        f"{d}/install.sls": textwrap.dedent(
            f"""\
            {{%- from "{name}/map.jinja" import {name} with context %}}
            {name}-packages:
              pkg.installed:
                - pkgs: {{{{ {name}.packages | json }}}}
            """
        ),
        f"{d}/config.sls": textwrap.dedent(
            f"""\
            {{%- from "{name}/map.jinja" import {name} with context %}}
            include:
              - .install

            {name}-config:
              file.managed:
                - name: {{{{ {name}.root }}}}{{{{ {name}.conf }}}}
                - source: salt://{name}/files/{name}.conf.jinja
                - template: jinja
                - makedirs: True
                - context:
                    port: {{{{ {name}.port }}}}
                - require:
                  - pkg: {name}-packages
            """
        ),
        f"{d}/service.sls": textwrap.dedent(
            f"""\
            {{%- from "{name}/map.jinja" import {name} with context %}}
            include:
              - .config

            {name}-service:
              service.running:
                - name: {name}
                - enable: True
                - watch:
                  - file: {name}-config
            {{%- if grains['os_family'] == 'Debian' %}}
                - onlyif:
                  - fun: file.file_exists
                    path: {{{{ {name}.conf }}}}
            {{%- endif %}}
            """
        ),
        f"{d}/users.sls": textwrap.dedent(
            f"""\
            {{%- from "{name}/map.jinja" import {name} with context %}}
            {{%- for user, spec in {name}.users | dictsort %}}
            {name}-user-{{{{ user }}}}:
              user.present:
                - name: {{{{ user }}}}
                - uid: {{{{ spec.uid }}}}
                - createhome: False
            {{%- endfor %}}
            {name}-users-done:
              test.succeed_without_changes: []
            """
        ),
        f"{d}/files/{name}.conf.jinja": "# managed by Salt\nlisten {{ port }}\n",
    }


def _module(n: int) -> str:
    return textwrap.dedent(
        f'''\
        """Execution module ops_bench{n:02d}: reads config and packages through Salt's own modules."""

        __virtualname__ = "ops_bench{n:02d}"


        def __virtual__():
            if "pkg.version" in __salt__:
                return __virtualname__
            return (False, "pkg.version is not available")


        def version(name):
            """
            Installed version of ``name``.

            CLI Example:

            .. code-block:: bash

                salt '*' ops_bench{n:02d}.version nginx
            """
            return __salt__["pkg.version"](name)


        def port():
            """The configured port. CLI Example: ``salt '*' ops_bench{n:02d}.port``"""
            return int(__salt__["config.get"]("ops:bench{n:02d}:port", {8000 + n}))
        '''
    )


def generate(root: Path, formulas: int, modules: int) -> int:
    """Write the benchmark repository under ``root``; returns the number of SLS."""
    files: dict[str, str] = {"salt/pipeline.yaml": PIPELINE_YAML, "salt/policy.yaml": "version: 1\n"}
    for env in ("test", "production"):
        files[f"salt/fixtures/{env}/grains.yaml"] = _grains(env)
        files[f"salt/fixtures/{env}/pillar.yaml"] = _pillar(formulas)
    top = ["base:"]
    for i, role in enumerate(ROLES):
        top.append(f"  'G@roles:{role}':")
        top.append("    - match: compound")
        top += [f"    - f{n:03d}" for n in range(formulas) if n % len(ROLES) == i]
    files["states/top.sls"] = "\n".join(top) + "\n"
    for n in range(formulas):
        files.update(_formula(n))
    for n in range(modules):
        files[f"_modules/ops_bench{n:02d}.py"] = _module(n)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sum(1 for rel in files if rel.endswith(".sls") and not rel.endswith("top.sls"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _saltpipe(repo: Path, *args: str) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one ``saltpipe lint`` process, and its JSON report."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(repo), "lint", "--format", "json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"saltpipe lint failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, _children_cpu() - cpu, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", type=int, default=50, help="formulas of 5 SLS each (default 50: 250 SLS)")
    parser.add_argument("--modules", type=int, default=50, help="execution modules in _modules/ (default 50)")
    parser.add_argument("--repo", type=Path, default=None, help="benchmark this repository instead (a Git checkout on main)")
    parser.add_argument("--keep", action="store_true", help="keep the generated repository")
    parser.add_argument("--with-pylint", action="store_true", help="also time a full run with pylint")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="saltpipe-bench-"))
    try:
        if args.repo:
            repo_path = workdir / "repo"
            shutil.copytree(args.repo, repo_path, ignore=shutil.ignore_patterns(".tox", "__pycache__", ".saltpipe"))
            repo = git.Repo(repo_path) if (repo_path / ".git").exists() else None
            if repo is not None and repo.is_dirty(untracked_files=True):
                # Start from a clean tree, so the one-file run sees exactly one changed file.
                repo.git.add(A=True)
                repo.git.commit("-qm", "bench: working tree", "--no-verify")
            sls_count = sum(1 for p in (repo_path / "states").rglob("*.sls") if p.name != "top.sls")
        else:
            repo_path = workdir / "repo"
            sls_count = generate(repo_path, args.formulas, args.modules)
            repo = None
        if repo is None:
            repo = git.Repo.init(repo_path, initial_branch="main")
            with repo.config_writer() as cw:
                cw.set_value("user", "name", "bench")
                cw.set_value("user", "email", "bench@example.net")
            repo.git.add(A=True)
            repo.index.commit("bench content")
        base = repo.head.commit.hexsha

        full_seconds, full_cpu, full = _saltpipe(repo_path, "--no-pylint")
        # One changed SLS on a branch, as in a merge request.
        repo.git.checkout("-b", "bench-change")
        candidates = sorted(p for p in (repo_path / "states").rglob("*.sls") if p.name not in ("top.sls", "init.sls"))
        changed = candidates[len(candidates) // 2]
        changed.write_text(changed.read_text() + "\n# changed by bench/lint.py\n")
        repo.git.commit("-am", "change one SLS")
        changed_seconds, changed_cpu, partial = _saltpipe(repo_path, "--no-pylint", "--changed-since", base)

        result = {
            "sls_count": sls_count,
            "module_count": sum(1 for _ in (repo_path / "_modules").glob("*.py")) if (repo_path / "_modules").is_dir() else 0,
            "minions": full["stats"].get("minions"),
            "renders": full["stats"].get("renders"),
            "full_seconds": round(full_seconds, 2),
            "full_cpu_seconds": round(full_cpu, 2),
            "full_findings": full["summary"],
            "changed_one_file": changed.relative_to(repo_path).as_posix(),
            "changed_one_sls_checked": partial["stats"].get("sls"),
            "changed_one_seconds": round(changed_seconds, 2),
            "changed_one_cpu_seconds": round(changed_cpu, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "targets": {"full_seconds": 10, "changed_one_seconds": 2},
        }
        if args.with_pylint:
            repo.git.checkout(base)
            pylint_seconds, pylint_cpu, _ = _saltpipe(repo_path)
            result["full_with_pylint_seconds"] = round(pylint_seconds, 2)
            result["full_with_pylint_cpu_seconds"] = round(pylint_cpu, 2)
        if args.keep:
            result["repo"] = str(repo_path)
        print(json.dumps(result, indent=2))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
