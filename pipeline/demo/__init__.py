"""``saltpipe demo``: the whole flow on throwaway material, end to end.

Layers, each importing only those above it: ``model`` (context, state, results) -> ``health`` (the local health
endpoint), ``invoke`` (running ``saltpipe`` in a subprocess) -> the steps: ``mr_checks`` (lint on MR branches),
``flow`` (topology, release, sync, rollouts) -> ``run`` (the step list and the runner). See docs/demo.md.
"""

from pipeline.demo.model import DemoContext, DemoResult, DemoState, StepResult
from pipeline.demo.run import default_workdir, run_demo, steps

__all__ = ["DemoContext", "DemoResult", "DemoState", "StepResult", "default_workdir", "run_demo", "steps"]
