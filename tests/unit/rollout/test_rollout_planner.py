"""The schedule arithmetic and the plan: exact batch sizes for 1, 7, 50 and 10,000 minions, and refusals."""

from __future__ import annotations

import pytest

from pipeline.config import Canary, Size
from pipeline.rollout import PlanError, build_plan, schedule
from pipeline.rollout.planner import describe_plan, order_minions
from pipeline.salt_client.base import Resolution

from rollout_helpers import PROD_FLEET, RELEASE, make_config

# (environment overrides, population) -> [(spec, batch size, reached after it)], skipped specs.
# Production as in salt/pipeline.yaml: canary 1, then [1, 5%, 25%, 100%] - percentages are cumulative shares
# of the whole fleet, counts are batches of that many.
CASES = [
    ("production", {}, 1, [("canary", 1, 1)], ["1", "5%", "25%", "100%"]),
    ("production", {}, 7, [("canary", 1, 1), ("1", 1, 2), ("100%", 5, 7)], ["5%", "25%"]),
    ("production", {}, 50, [("canary", 1, 1), ("1", 1, 2), ("5%", 1, 3), ("25%", 10, 13), ("100%", 37, 50)], []),
    (
        "production",
        {},
        10_000,
        [("canary", 1, 1), ("1", 1, 2), ("5%", 498, 500), ("25%", 2000, 2500), ("100%", 7500, 10_000)],
        [],
    ),
    # The seeds' 1% -> 5% -> 25% -> 100% with a 1% canary.
    (
        "production",
        {"canary": "1%", "batches": ["5%", "25%", "100%"]},
        10_000,
        [("canary", 100, 100), ("5%", 400, 500), ("25%", 2000, 2500), ("100%", 7500, 10_000)],
        [],
    ),
    ("production", {"canary": "1%", "batches": ["5%", "25%", "100%"]}, 7, [("canary", 1, 1), ("25%", 1, 2), ("100%", 5, 7)], ["5%"]),
    ("production", {"canary": "1%", "batches": ["5%", "25%", "100%"]}, 50, [("canary", 1, 1), ("5%", 2, 3), ("25%", 10, 13), ("100%", 37, 50)], []),
    # Counts are increments: 10 then 10 more.
    ("production", {"canary": 2, "batches": [10, 10, "100%"]}, 50, [("canary", 2, 2), ("10", 10, 12), ("10", 10, 22), ("100%", 28, 50)], []),
    ("production", {"canary": 2, "batches": [10, 10, "100%"]}, 7, [("canary", 2, 2), ("10", 5, 7)], ["10", "100%"]),
    # The test environment: explicit canary, then 50%, 100%.
    ("test", {}, 1, [("canary", 1, 1)], ["50%", "100%"]),
    ("test", {}, 7, [("canary", 1, 1), ("50%", 3, 4), ("100%", 3, 7)], []),
    ("test", {}, 50, [("canary", 1, 1), ("50%", 24, 25), ("100%", 25, 50)], []),
    ("test", {}, 10_000, [("canary", 1, 1), ("50%", 4999, 5000), ("100%", 5000, 10_000)], []),
]


@pytest.mark.parametrize("env_name,overrides,population,expected,skipped", CASES)
def test_schedule_table(env_name, overrides, population, expected, skipped) -> None:
    cfg = make_config(**{env_name: overrides})
    env = cfg.environment(env_name)
    entries, skipped_entries = schedule(population, env.canary, env.batches)
    assert [(e.spec, e.size, e.reached) for e in entries] == expected
    assert [s for s, _ in skipped_entries] == skipped
    assert sum(e.size for e in entries) == population


@pytest.mark.parametrize("population", range(1, 120))
def test_every_population_places_every_minion_once(population: int) -> None:
    env = make_config().environment("production")
    fleet = {f"m{i:04d}": f"syndic-prod-{'ab'[i % 2]}" for i in range(population)}
    plan = build_plan(env, Resolution(minions=fleet), release=RELEASE, saltenv=RELEASE, previous_release=None,
                      commit=None, rollout_id="r1")
    placed = [m for b in plan.batches for m in b.minions]
    assert sorted(placed) == sorted(fleet)
    assert plan.batches[0].name == "canary" and len(plan.batches[0].minions) == 1
    assert plan.batches[-1].reached == population
    # reached grows strictly: no empty batch is planned
    reached = [b.reached for b in plan.batches]
    assert reached == sorted(set(reached))


def test_zero_population_schedules_nothing() -> None:
    assert schedule(0, Canary(size=Size(count=1)), (Size(percent=100),)) == ([], [])


def test_order_interleaves_syndics_and_is_deterministic() -> None:
    fleet = {"b-2": "s-b", "a-1": "s-a", "b-1": "s-b", "a-2": "s-a", "a-3": "s-a", "x": None}
    assert order_minions(fleet) == ["x", "a-1", "b-1", "a-2", "b-2", "a-3"]
    assert order_minions(dict(reversed(list(fleet.items())))) == order_minions(fleet)


def test_plan_puts_explicit_canary_first_and_spreads_batches() -> None:
    env = make_config().environment("production")
    plan = build_plan(env, Resolution(minions=PROD_FLEET), release=RELEASE, saltenv=RELEASE,
                      previous_release="rel-ba9876543210", commit="abc", rollout_id="r1")
    assert [len(b.minions) for b in plan.batches] == [1, 1, 4]
    assert plan.batches[0].minions == ("prod-a-1",)
    assert plan.batches[1].minions == ("prod-b-1",)  # the next batch goes to the other syndic
    assert plan.skipped == (("5%", "5% of 6 minions is 1, reached already"), ("25%", "25% of 6 minions is 2, reached already"))
    test_env = make_config(test={"canary": ["test-web-2"]}).environment("test")
    fleet = {"test-web-1": "syndic-test", "test-web-2": "syndic-test", "test-db-1": "syndic-test"}
    plan = build_plan(test_env, Resolution(minions=fleet), release=RELEASE, saltenv=RELEASE, previous_release=None,
                      commit=None, rollout_id="r2")
    assert plan.batches[0].minions == ("test-web-2",)
    text = "\n".join(describe_plan(plan))
    assert "canary" in text and "test-web-2" in text and "rollback target): none" in text


def test_plan_round_trips_through_json() -> None:
    from pipeline.rollout import Plan

    env = make_config().environment("production")
    plan = build_plan(env, Resolution(minions=PROD_FLEET, jid="123"), release=RELEASE, saltenv=RELEASE,
                      previous_release=None, commit=None, rollout_id="r1", attested={"syndic-prod-a": RELEASE})
    assert Plan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    "resolution,message",
    [
        (Resolution(minions={}), "reaches no minion"),
        (Resolution(minions=PROD_FLEET, silent={"prod-a-9": "syndic-prod-a"}), "did not answer test.ping: prod-a-9"),
        (Resolution(minions={**PROD_FLEET, "test-web-1": "syndic-test"}), "not one of its syndics"),
    ],
)
def test_plan_refusals(resolution: Resolution, message: str) -> None:
    env = make_config().environment("production")
    with pytest.raises(PlanError, match=message) as excinfo:
        build_plan(env, resolution, release=RELEASE, saltenv=RELEASE, previous_release=None, commit=None,
                   rollout_id="r")
    assert excinfo.value.hint


def test_plan_refuses_a_canary_that_did_not_answer() -> None:
    env = make_config().environment("test")
    with pytest.raises(PlanError, match="canary minion.*test-web-1"):
        build_plan(env, Resolution(minions={"test-web-2": "syndic-test"}), release=RELEASE, saltenv=RELEASE,
                   previous_release=None, commit=None, rollout_id="r")


TOPS = [
    ("{{ saltenv }}:\n  '*':\n    - base\n", True),
    ("{{saltenv}}:\n  '*':\n    - base\n", True),
    ("{#- comment -#}\n{{ saltenv }}:\n{%- for env in ['test'] %}\n  'G@x:{{ env }}':\n    - base\n{%- endfor %}\n", True),
    (f"{RELEASE}:\n  '*':\n    - base\n", True),
    ("{{ some_macro() }}:\n  '*':\n    - base\n", True),  # cannot tell: the canary will show
    ("base:\n  '*':\n    - base\n", False),
    ("# top\nbase:  # the highstate\n  'G@roles:web':\n    - nginx\n", False),
    ("'base':\n  '*':\n    - base\n", False),
    (None, False),
]


@pytest.mark.parametrize("text,ok", TOPS)
def test_top_file_must_be_keyed_by_the_saltenv(text: str | None, ok: bool) -> None:
    from pipeline.rollout.planner import check_top_file

    if ok:
        check_top_file(text, RELEASE, RELEASE)
    else:
        with pytest.raises(PlanError, match="top.sls") as excinfo:
            check_top_file(text, RELEASE, RELEASE)
        assert "{{ saltenv }}" in str(excinfo.value.hint)
    check_top_file(text, RELEASE, "base")  # a rollback applies base: any top file is fine
