"""How the demo's delivery steps run ``saltpipe``: as the command an operator types, in a subprocess, with
``--repo <throwaway repo> --config <topology>/pipeline.yaml``; plus the accessors the steps share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.demo.model import DemoContext, DemoState, FlowState

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pipeline.topology import Topology

#: Environment variables that would override the derived config's way to Salt (an operator's shell may set them).
_SALT_ENV_VARS = ("SALTPIPE_MASTER_CONFIG", "SALTPIPE_SALT_API_URL", "SALTPIPE_SALT_API_USER", "SALTPIPE_SALT_API_EAUTH")


def flow_of(state: DemoState) -> FlowState:
    return state.flow


def root_of(state: DemoState) -> Path:
    assert state.repo is not None and state.repo.working_tree_dir is not None
    return Path(state.repo.working_tree_dir)


def topology_of(state: DemoState) -> Topology:
    topo = flow_of(state).topology
    assert topo is not None, "the topology step runs first"
    return topo


@dataclass(frozen=True)
class Ran:
    """One ``saltpipe`` command the demo ran: its words, exit code, stdout (JSON when asked) and stderr."""

    words: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def shown(self) -> str:
        return "saltpipe " + " ".join(self.words)


#: Who runs the demo's commands on its GitLab unless a step says otherwise (the operator; docs/demo.md).
OPERATOR = "demo-operator"


def saltpipe(ctx: DemoContext, state: DemoState, *words: str, as_user: str = OPERATOR) -> Ran:
    """Run ``saltpipe --repo <throwaway repo> --config <topology>/pipeline.yaml WORDS`` in a subprocess, as
    ``as_user`` of the demo's GitLab once it runs (outside CI: no CI_* job variables of the caller's shell).

    stderr (a rollout's progress) is passed to ``ctx.progress`` line by line as it comes."""
    topo = topology_of(state)
    flow = flow_of(state)
    argv = [sys.executable, "-m", "pipeline", "--repo", str(root_of(state)), "--config", str(topo.pipeline_config),
            *words]
    env = {k: v for k, v in os.environ.items()
           if k not in _SALT_ENV_VARS and not k.startswith(("CI_", "GITLAB_", "SALTPIPE_GITLAB"))}
    if flow.gitlab is not None:
        env.update(flow.gitlab.environ(flow.tokens[as_user]))
    env["COLUMNS"] = "110"
    if ctx.progress:
        ctx.progress("$ saltpipe " + " ".join(words))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err_lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if ctx.progress:
                ctx.progress("  " + line.rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    reader.join()
    return Ran(tuple(words), proc.returncode, out, "".join(err_lines))


def failed(ran: Ran, why: str) -> tuple[bool, list[str]]:
    tail = (ran.stderr.strip().splitlines() or ran.stdout.strip().splitlines() or ["(no output)"])[-6:]
    return False, [f"{ran.shown}: {why} (exit {ran.returncode})", *(f"  {line}" for line in tail)]
