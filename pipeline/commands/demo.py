"""``saltpipe demo``"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from pipeline.cli_options import dir_option
from pipeline.context import AppContext
from pipeline.demo import DemoContext, StepResult, default_workdir, run_demo
from pipeline.errors import EXIT_FINDINGS


@click.command()
@dir_option("--workdir", help="Where to build the throwaway repository (default: a new temporary directory).")
@click.option("--keep-topology", is_flag=True, help="Leave the local topology running at the end (to look around).")
@click.option("--topology-timeout", type=float, default=120.0, show_default=True,
              help="Seconds for the local topology to become ready.")
@click.option("--quiet", is_flag=True, help="Only the per-step summaries, not the commands' live progress.")
@click.option("--serve", "keep_serving", is_flag=True,
              help="At the end, serve the run's status page on 127.0.0.1 until Ctrl-C (saltpipe serve).")
@click.pass_obj
def demo(app: AppContext, workdir: Path | None, keep_topology: bool, topology_timeout: float, quiet: bool,
         keep_serving: bool) -> None:
    """Run the whole saltpipe flow on a throwaway repository built from the bundled content.

    MR checks -> release -> sync test -> rollout test (canary first) -> approval -> sync production ->
    rollout production (canary first, base promoted); then a second change that fails on the production canary
    is halted and rolled back with every other minion untouched. Runs on a local topology (MoM, 3 syndics,
    8 minions on loopback) started in WORKDIR/topo and stopped at the end (unless --keep-topology).

    Exit 0 when the flow behaved as intended (including the expected halt of the second change), 1 when a
    step's check failed, 2 on an error.
    """
    # In a CI log (not a terminal) rich would wrap at 80 columns; the demo's lines read better wider.
    console = Console(width=None if sys.stdout.isatty() else 120)
    workdir = (workdir or default_workdir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]saltpipe demo[/bold] in {workdir}")
    started = time.monotonic()

    # A step's live progress comes while it runs, its result after: its header goes first, printed with the
    # first progress line (a step without progress gets only its result line).
    current: dict[str, str | None] = {"step": None, "shown": None}

    def start(name: str) -> None:
        current["step"] = name

    def progress(line: str) -> None:
        if current["shown"] != current["step"]:
            current["shown"] = current["step"]
            console.print(f"\n[bold]{escape(current['step'] or '')}[/bold] ...")
        console.print(f"[dim]    {escape(line)}[/dim]", highlight=False, soft_wrap=True)

    def show(step: StepResult) -> None:
        mark = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
        if current["shown"] != step.name:
            console.print()
        console.print(f"[bold]{escape(step.name)}[/bold] {mark} ({step.seconds:.1f}s)")
        for line in step.lines:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)

    ctx = DemoContext(source=app.repo, workdir=workdir, keep_topology=keep_topology,
                      topology_timeout=topology_timeout, progress=None if quiet else progress)
    result = run_demo(ctx, on_step=show, on_start=start)
    passed = sum(s.ok for s in result.steps)
    console.print(f"\n[bold]summary[/bold]: {passed}/{len(result.steps)} steps passed in "
                  f"{time.monotonic() - started:.0f}s; work directory {workdir}")
    from pipeline.commands.serve import demo_page  # pylint: disable=import-outside-toplevel

    demo_page(app.repo, workdir, keep_serving, echo=console.print)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FINDINGS)
COMMANDS = [demo]
