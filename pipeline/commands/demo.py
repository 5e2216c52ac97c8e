"""``saltpipe demo``"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from pipeline.context import AppContext
from pipeline.demo import DemoContext, StepResult, default_workdir, run_demo
from pipeline.errors import EXIT_FINDINGS


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to build the throwaway repository (default: a new temporary directory).",
)
@click.pass_obj
def demo(app: AppContext, workdir: Path | None) -> None:
    """Run the whole saltpipe flow on a throwaway repository built from the bundled content.

    Exit 0 when every step passed, 1 when a step's check failed, 2 on an error.
    """
    console = Console()
    workdir = (workdir or default_workdir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]saltpipe demo[/bold] in {workdir}")

    def show(step: StepResult) -> None:
        mark = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
        console.print(f"\n[bold]{step.name}[/bold] {mark} ({step.seconds:.1f}s)")
        for line in step.lines:
            console.print(f"  {line}", highlight=False, markup=False)

    result = run_demo(DemoContext(source=app.repo, workdir=workdir), on_step=show)
    passed = sum(s.ok for s in result.steps)
    console.print(f"\n[bold]summary[/bold]: {passed}/{len(result.steps)} steps passed; work directory {workdir}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FINDINGS)
COMMANDS = [demo]
