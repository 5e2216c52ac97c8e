"""Freeze windows: the table of (window, instant) -> frozen or not, time zones and DST edges, validation at
load with file:line errors, and the refusal / override contract of :func:`check_freeze`."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.freeze import FreezeRefused, FreezeWindow, check_freeze, read_overrides, record_override

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

WEEKEND = {"name": "weekend", "cron": "0 18 * * fri", "duration": "62h", "timezone": "Europe/Berlin"}
NIGHTLY_0230 = {"name": "nightly", "cron": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"}
YEAR_END = {"name": "year-end", "start": "2026-12-20T00:00", "end": "2027-01-04T00:00", "timezone": "Europe/Berlin"}
NY_RANGE = {"name": "ny", "start": "2026-03-08T01:00", "end": "2026-03-08T04:00", "timezone": "America/New_York"}


def at(zone: ZoneInfo | timezone, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


CASES = [
    # (id, window, instant, frozen)
    ("weekend: friday 17:59 Berlin is before", WEEKEND, at(BERLIN, 2026, 11, 27, 17, 59), False),
    ("weekend: friday 18:00 Berlin starts it", WEEKEND, at(BERLIN, 2026, 11, 27, 18, 0), True),
    ("weekend: the same instant in UTC (17:00Z)", WEEKEND, at(UTC, 2026, 11, 27, 17, 0), True),
    ("weekend: 16:59Z is 17:59 Berlin", WEEKEND, at(UTC, 2026, 11, 27, 16, 59), False),
    ("weekend: sunday noon", WEEKEND, at(BERLIN, 2026, 11, 29, 12, 0), True),
    ("weekend: monday 07:59 is the last minute", WEEKEND, at(BERLIN, 2026, 11, 30, 7, 59), True),
    ("weekend: monday 08:00 ends it", WEEKEND, at(BERLIN, 2026, 11, 30, 8, 0), False),
    ("weekend: wednesday", WEEKEND, at(BERLIN, 2026, 12, 2, 12, 0), False),
    # DST: clocks go back on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET): 62 h elapsed end at 07:00 CET.
    ("weekend over fall-back: monday 06:59 CET", WEEKEND, at(BERLIN, 2026, 10, 26, 6, 59), True),
    ("weekend over fall-back: monday 07:00 CET ends", WEEKEND, at(BERLIN, 2026, 10, 26, 7, 0), False),
    # DST: clocks go forward on Sunday 2026-03-29 (02:00 CET -> 03:00 CEST): 62 h elapsed end at 09:00 CEST.
    ("weekend over spring-forward: monday 08:59 CEST", WEEKEND, at(BERLIN, 2026, 3, 30, 8, 59), True),
    ("weekend over spring-forward: monday 09:00 CEST ends", WEEKEND, at(BERLIN, 2026, 3, 30, 9, 0), False),
    # 02:30 does not exist on 2026-03-29 in Berlin: the window starts at 03:00 CEST and lasts 1 h.
    ("nightly on spring-forward day: 03:30 CEST", NIGHTLY_0230, at(BERLIN, 2026, 3, 29, 3, 30), True),
    ("nightly on spring-forward day: 04:00 CEST ends", NIGHTLY_0230, at(BERLIN, 2026, 3, 29, 4, 0), False),
    ("nightly on spring-forward day: 01:59 CET", NIGHTLY_0230, at(BERLIN, 2026, 3, 29, 1, 59), False),
    # 02:30 happens twice on 2026-10-25: the first (CEST, 00:30Z) starts it; 1 h later is 02:30 CET (01:30Z).
    ("nightly on fall-back day: 02:45 CEST (first)", NIGHTLY_0230, at(UTC, 2026, 10, 25, 0, 45), True),
    ("nightly on fall-back day: 02:29 CET (second pass)", NIGHTLY_0230, at(UTC, 2026, 10, 25, 1, 29), True),
    ("nightly on an ordinary day: 02:30 UTC is 03:30 CET", NIGHTLY_0230, at(UTC, 2026, 11, 3, 2, 30), False),
    ("year-end: start is inclusive", YEAR_END, at(BERLIN, 2026, 12, 20, 0, 0), True),
    ("year-end: 23:00Z the day before is midnight Berlin", YEAR_END, at(UTC, 2026, 12, 19, 23, 0), True),
    ("year-end: 22:59Z the day before", YEAR_END, at(UTC, 2026, 12, 19, 22, 59), False),
    ("year-end: new year's eve", YEAR_END, at(BERLIN, 2026, 12, 31, 23, 0), True),
    ("year-end: end is exclusive", YEAR_END, at(BERLIN, 2027, 1, 4, 0, 0), False),
    # New York springs forward at 02:00 on 2026-03-08: 01:00 EST (06:00Z) .. 04:00 EDT (08:00Z) is 2 h elapsed.
    ("NY range over spring-forward: 07:59Z inside", NY_RANGE, at(UTC, 2026, 3, 8, 7, 59), True),
    ("NY range over spring-forward: 08:00Z ends", NY_RANGE, at(UTC, 2026, 3, 8, 8, 0), False),
    ("NY range: 05:59Z before", NY_RANGE, at(UTC, 2026, 3, 8, 5, 59), False),
]


@pytest.mark.parametrize(("window", "instant", "frozen"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_window_table(window: dict, instant: datetime, frozen: bool) -> None:
    assert (FreezeWindow.model_validate(window).active_at(instant) is not None) is frozen


def test_occurrence_start_and_end_are_reported_in_the_window_zone() -> None:
    start, end = FreezeWindow.model_validate(WEEKEND).active_at(at(UTC, 2026, 10, 24, 12, 0))  # type: ignore[misc]
    assert start == at(BERLIN, 2026, 10, 23, 18, 0)
    assert end.utcoffset() == timedelta(hours=1) and end.replace(tzinfo=None) == datetime(2026, 10, 26, 7, 0)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=62)  # elapsed, not wall-clock


def test_check_freeze_refuses_with_the_window_name() -> None:
    windows = (FreezeWindow.model_validate(WEEKEND), FreezeWindow.model_validate(YEAR_END))
    with pytest.raises(FreezeRefused) as exc:
        check_freeze("production", windows, action="rollout", now=at(BERLIN, 2026, 12, 24, 10, 0))
    assert exc.value.exit_code == 1
    assert "'year-end'" in exc.value.message and "production is frozen" in exc.value.message
    assert "--override-freeze" in (exc.value.hint or "")


def test_check_freeze_passes_outside_and_on_override(tmp_path: Path) -> None:
    windows = (FreezeWindow.model_validate(YEAR_END),)
    outside = check_freeze("production", windows, action="sync", now=at(BERLIN, 2026, 12, 1, 10, 0))
    assert outside.window is None and not outside.overridden
    with pytest.raises(FreezeRefused):  # an empty reason is no override
        check_freeze("production", windows, action="sync", override="  ", now=at(BERLIN, 2026, 12, 24, 10, 0))
    inside = check_freeze("production", windows, action="sync", override=" hotfix INC-42 ",
                          now=at(BERLIN, 2026, 12, 24, 10, 0))
    assert inside.overridden and inside.override == "hotfix INC-42"
    record = record_override(tmp_path, inside, action="sync", release="rel-0123456789ab")
    assert read_overrides(tmp_path) == [record]
    assert record["window"] == "year-end" and record["reason"] == "hotfix INC-42" and record["by"]
    json.dumps(record)


BASE = """\
version: 1
environments:
  production:
    syndics:
      - name: syndic-prod-a
        file_roots: {type: local, path: /srv/a}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: ["100%"]
    freeze:
"""

INVALID = [
    ("bad cron", '      - {name: w, cron: "61 * * * *", duration: 1h}\n', 11, "5-field cron"),
    ("bad zone", '      - {name: w, cron: "0 18 * * fri", duration: 1h, timezone: Mars/Olympus}\n', 11, "IANA"),
    ("bad duration", '      - {name: w, cron: "0 18 * * fri", duration: soon}\n', 11, "duration like"),
    ("cron without duration", '      - {name: w, cron: "0 18 * * fri"}\n', 11, "needs both"),
    ("mixed kinds", '      - {name: w, cron: "0 18 * * fri", duration: 1h, start: 2026-01-01T00:00}\n', 11, "either"),
    ("end before start", "      - {name: w, start: 2026-02-01T00:00, end: 2026-01-01T00:00}\n", 11, "must be after"),
    ("offset given", "      - {name: w, start: '2026-01-01T00:00+01:00', end: 2026-02-01T00:00}\n", 11, "without an offset"),
    ("unknown key", '      - {name: w, cron: "0 18 * * fri", duration: 1h, tz: UTC}\n', 11, "tz"),
    ("name twice", '      - {name: w, cron: "0 18 * * fri", duration: 1h}\n'
                   '      - {name: w, start: 2026-01-01T00:00, end: 2026-02-01T00:00}\n', 3, "used twice"),
]


@pytest.mark.parametrize(("body", "line", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_windows_name_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(BASE + body)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert f"{path}:{line}" in str(exc.value)
    assert words in str(exc.value)


def test_valid_windows_load(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(BASE + textwrap.indent(
        '- {name: weekend, cron: "0 18 * * fri", duration: 62h, timezone: Europe/Berlin}\n'
        "- {name: year-end, start: 2026-12-20T00:00, end: 2027-01-04T00:00}\n", "      "))
    env = load_config(path).environment("production")
    assert [w.name for w in env.freeze] == ["weekend", "year-end"]
    assert env.freeze[0].duration == timedelta(hours=62) and env.freeze[1].timezone == "UTC"
