"""``saltpipe init``: a lint-only ``salt/pipeline.yaml`` and fixtures for an existing repository.

:func:`init_repo` is a function of a frozen :class:`InitOptions` returning an :class:`InitResult`. It writes
three files, each only when it does not exist yet (``force`` rewrites them): the config (layout + lint
fixtures, no environments), fixture grains (one minion per OS family the formulas mention) and a fixture
pillar merged from the formulas' ``pillar.example`` files (or ``defaults.yaml`` keyed by the formula's name
where there is no example). Re-running without ``force`` changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.adopt.detect import Detection, detect
from pipeline.adopt.osgrains import fixture_minions
from pipeline.config import DEFAULT_CONFIG, LINT_FIXTURES, validate_config
from pipeline.topology.pillar import deep_merge
from pipeline.userfiles import write_file
from pipeline.yamlsrc import load_yaml_text


@dataclass(frozen=True)
class InitOptions:
    """The repository, ``--layout`` (``auto`` or a name of :data:`pipeline.adopt.detect.LAYOUTS`), ``--force``."""

    repo: Path
    layout: str = "auto"
    force: bool = False


@dataclass(frozen=True)
class InitResult:
    """What was found, which files were written and which kept, and where each pillar key came from."""

    detection: Detection
    written: tuple[Path, ...]
    kept: tuple[Path, ...]
    pillar_sources: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    fixture_minions: tuple[str, ...] = ()


def build_pillar(det: Detection) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The merged fixture pillar, ``{top key: source file}`` and the files that could not be used (why)."""
    pillar: dict[str, Any] = {}
    sources: dict[str, str] = {}
    skipped: list[str] = []
    for formula in det.formulas:
        used = False
        for example in formula.pillar_examples:
            rel = example.relative_to(det.repo).as_posix()
            data = _yaml_mapping(example, rel, skipped)
            if data is not None:
                pillar = deep_merge(pillar, data)
                for key in data:
                    sources.setdefault(str(key), rel)
                used = True
        if not used and formula.defaults is not None:
            rel = formula.defaults.relative_to(det.repo).as_posix()
            data = _yaml_mapping(formula.defaults, rel, skipped)
            # Only a defaults.yaml keyed by the formula's name is pillar-shaped (template-formula's); a
            # filter_by table ({default: ...}) is the formula's own defaults, which it reads without pillar.
            if data is not None and list(data) == [formula.name]:
                pillar = deep_merge(pillar, data)
                sources.setdefault(formula.name, rel)
    return pillar, sources, skipped


def _yaml_mapping(path: Path, rel: str, skipped: list[str]) -> dict[str, Any] | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    if "{%" in text or "{{" in text:
        skipped.append(f"{rel}: has Jinja; render it yourself into the fixture pillar")
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        skipped.append(f"{rel}: not valid YAML ({str(exc).splitlines()[0]})")
        return None
    if data is None:
        return None
    if not isinstance(data, dict):
        skipped.append(f"{rel}: not a mapping")
        return None
    return data


def config_text(det: Detection, fixtures_dir: Path) -> str:
    """The lint-only pipeline config for ``det`` (validated before it is written)."""
    layout: dict[str, Any] = {"states_root": det.roots[0]}
    if len(det.roots) > 1:
        layout["roots"] = list(det.roots[1:])
    if det.exclude:
        layout["exclude"] = list(det.exclude)
    data = {
        "version": 1,
        "layout": layout,
        "fixtures": {"grains": (fixtures_dir / "grains.yaml").as_posix(), "pillar": (fixtures_dir / "pillar.yaml").as_posix()},
    }
    head = (
        "# saltpipe configuration written by `saltpipe init` (docs/adopting.md).\n"
        "# Lint-only: no environments yet. `saltpipe lint` and `saltpipe release build` work now; add an\n"
        "# environment (syndics, target, canary, batches; docs/configuration.md) before `sync` or `rollout`.\n"
        "# layout: where Salt's file_roots is in this repository (docs/configuration.md, \"layout\").\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _dump(head: str, data: Any) -> str:
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def init_repo(options: InitOptions) -> InitResult:
    """Detect, then write the config and fixtures that do not exist yet (all of them with ``force``)."""
    repo = options.repo.resolve()
    det = detect(repo, options.layout)
    pillar, sources, skipped = build_pillar(det)
    minions = fixture_minions(det.os_families)
    config_path = repo / DEFAULT_CONFIG
    files = {
        config_path: config_text(det, LINT_FIXTURES),
        repo / LINT_FIXTURES / "grains.yaml": _dump(
            "# Fixture minions lint renders every SLS as: one per OS family (saltpipe init).\n"
            "# Replace with real ones: saltpipe fixtures import MINION... (docs/adopting.md).\n",
            {"minions": minions},
        ),
        repo / LINT_FIXTURES / "pillar.yaml": _dump(
            "# Fixture pillar, merged from the formulas' pillar.example (or defaults.yaml) by saltpipe init:\n"
            + "".join(f"#   {key}: {src}\n" for key, src in sorted(sources.items())),
            pillar,
        ),
    }
    # Never write a config saltpipe would refuse to load.
    validate_config(load_yaml_text(files[config_path], config_path))
    written: list[Path] = []
    kept: list[Path] = []
    for path, text in files.items():
        if path.exists() and not options.force:
            kept.append(path)
            continue
        write_file(path, text, hint="check the permissions of the repository")
        written.append(path)
    return InitResult(det, tuple(written), tuple(kept), sources, tuple(skipped), tuple(minions))
