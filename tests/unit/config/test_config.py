"""The pipeline.yaml model: the bundled file is valid, and each invalid case gets its own clear error that names
file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.config import Size, load_config
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

VALID = """\
version: 1
environments:
  test:
    syndics:
      - name: syndic-test
        file_roots: {type: local, path: /srv/saltpipe/syndic-test}
    target: "G@saltpipe_env:test"
    canary: [test-web-1]
    batches: ["50%", "100%"]
  production:
    syndics:
      - name: syndic-prod-a
        file_roots: {type: ssh, host: syndic-prod-a.example.net, path: /srv/saltpipe/a}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: [1, "5%", "25%", "100%"]
    gates:
      max_failure_ratio: 0.01
      health_check: {url: "http://{host}:8080/health"}
    approvals_required: 1
    requires: [test]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_bundled_config_is_valid() -> None:
    cfg = load_config(REPO / "salt" / "pipeline.yaml")
    assert set(cfg.environments) == {"test", "production"}
    assert cfg.promotion_order() == ["test", "production"]
    prod = cfg.environment("production")
    assert prod.requires == ("test",)
    assert [str(b) for b in prod.batches] == ["1", "5%", "25%", "100%"]
    assert cfg.source == REPO / "salt" / "pipeline.yaml"


def test_valid_minimal_config_fills_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    test_env = cfg.environment("test")
    assert test_env.canary.ids == ("test-web-1",)
    assert test_env.gates.max_missing_ratio == 0.0
    assert test_env.approvals_required == 0
    prod = cfg.environment("production")
    assert prod.canary.size == Size(count=1)
    assert prod.syndics[0].file_roots.type == "ssh"
    assert prod.syndics[0].file_roots.port == 22
    assert prod.gates.health_check is not None and prod.gates.health_check.url.endswith("/health")
    assert cfg.release.keep == 5


# (replace this, with that) in VALID -> expected line, key and words in the message
INVALID = [
    pytest.param(
        ('canary: [test-web-1]', 'canary: []'), 8, "environments.test.canary", "list of minion ids",
        id="empty-canary",
    ),
    pytest.param(
        ('batches: ["50%", "100%"]', 'batches: ["50%", "80%"]'), 9, "environments.test.batches", "100%",
        id="last-batch-not-100",
    ),
    pytest.param(
        ('batches: [1, "5%", "25%", "100%"]', 'batches: ["50%", "25%", "100%"]'), 16,
        "environments.production.batches[1]", "does not grow the rollout",
        id="decreasing-percentages",
    ),
    pytest.param(
        ('batches: ["50%", "100%"]', 'batches: ["fifty", "100%"]'), 9, "environments.test.batches", "percentage",
        id="batch-not-a-size",
    ),
    pytest.param(
        ("max_failure_ratio: 0.01", "max_failure_ratio: 1.5"), 18, "gates.max_failure_ratio", "less than or equal to 1",
        id="ratio-above-one",
    ),
    pytest.param(
        ("requires: [test]", "requires: [staging]"), 21, "environments.production.requires[0]", "'staging', which is not defined",
        id="requires-unknown-env",
    ),
    pytest.param(
        ("path: /srv/saltpipe/syndic-test", "path: srv/relative"), 6, "file_roots.path", "absolute path",
        id="relative-file-roots",
    ),
    pytest.param(
        ("type: ssh, host: syndic-prod-a.example.net,", "type: ftp, host: syndic-prod-a.example.net,"),
        13, "file_roots", "'local', 'ssh'",
        id="unknown-file-roots-type",
    ),
    pytest.param(
        ('target: "G@saltpipe_env:test"', 'targt: "G@saltpipe_env:test"'), 3, "environments.test.targt",
        "remove it, or check its spelling",
        id="misspelt-key",
    ),
    pytest.param(
        ("approvals_required: 1", "approvals_required: -1"), 20, "approvals_required", "greater than or equal to 0",
        id="negative-approvals",
    ),
    pytest.param(
        ('health_check: {url: "http://{host}:8080/health"}', "health_check: {url: ftp://x}"), 19,
        "health_check", "http://",
        id="health-check-bad-url",
    ),
    pytest.param(
        ("- name: syndic-prod-a", "- name: syndic-test"), 12, "environments.production.syndics[0].name", "is in both 'test' and 'production'",
        id="syndic-in-two-envs",
    ),
    pytest.param(
        ("version: 1", "version: 2"), 1, "version", "1",
        id="unknown-version",
    ),
    pytest.param(
        ('batches: ["50%", "100%"]', 'batches: ["50%", "100%"]\n    job_cache: {type: redis, host: r, port: 0}'), 10,
        "environments.test.job_cache.port", "greater than or equal to 1",
        id="job-cache-bad-port",
    ),
    pytest.param(
        ('batches: ["50%", "100%"]', 'batches: ["50%", "100%"]\n    job_cache: {type: memcached, host: r}'), 10,
        "environments.test.job_cache.type", "redis",
        id="job-cache-unknown-type",
    ),
]


@pytest.mark.parametrize(("edit", "line", "key", "words"), INVALID)
def test_invalid_config_names_file_line_key(
    tmp_path: Path, edit: tuple[str, str], line: int, key: str, words: str
) -> None:
    old, new = edit
    assert old in VALID, "test case does not apply to VALID"
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    err = excinfo.value
    text = str(err)
    assert err.path == path
    assert err.line == line, text
    assert f"{path}:{line}:" in text
    assert key in text
    assert words in text
    assert "hint:" in text


def test_missing_required_key_is_reported_at_its_parent(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('    target: "G@saltpipe_env:test"\n', "", 1))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert "environments.test.target: required key is missing" in str(excinfo.value)
    assert excinfo.value.line == 3


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    text = VALID.replace("canary: 1", "canary: 0").replace("max_failure_ratio: 0.01", "max_failure_ratio: 2")
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, text))
    message = str(excinfo.value)
    assert message.count(f"{tmp_path / 'pipeline.yaml'}:") >= 2
    assert ":15: environments.production.canary" in message
    assert ":18: environments.production.gates.max_failure_ratio" in message


def test_promotion_cycle(tmp_path: Path) -> None:
    text = VALID.replace("    batches: [\"50%\", \"100%\"]\n", "    batches: [\"50%\", \"100%\"]\n    requires: [production]\n", 1)
    with pytest.raises(ConfigError, match="cycle: (test -> production -> test|production -> test -> production)"):
        load_config(write(tmp_path, text))


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    canary: 1\n", "    canary: [1\n", 1))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert "invalid YAML" in str(excinfo.value)
    assert excinfo.value.line is not None and excinfo.value.line >= 15


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    canary: 1\n", "    canary: 1\n    canary: 2\n", 1))
    with pytest.raises(ConfigError, match=r"duplicate key 'canary' \(first defined on line 15\)") as excinfo:
        load_config(path)
    assert excinfo.value.line == 16


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as excinfo:
        load_config(tmp_path / "nope.yaml")
    assert "--config" in str(excinfo.value)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    from pipeline.errors import UsageError

    cfg = load_config(write(tmp_path, VALID))
    with pytest.raises(UsageError, match="unknown environment 'staging'") as excinfo:
        cfg.environment("staging")
    assert "test, production" in str(excinfo.value)


@pytest.mark.parametrize(
    ("size", "population", "expected"),
    [
        ("1%", 10_000, 100),
        ("1%", 50, 1),
        ("5%", 99, 5),
        ("25%", 3, 1),
        ("100%", 7, 7),
        (1, 0, 0),
        (3, 2, 2),
        ("33.3%", 1000, 333),
    ],
)
def test_size_of_population(size: object, population: int, expected: int) -> None:
    assert Size.parse(size).of(population) == expected


@pytest.mark.parametrize("bad", [0, "0%", "101%", True, "x", -1, 1.5])
def test_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        Size.parse(bad)


# -- the salt: section (how saltpipe reaches the MoM) and each syndic's master_config ------------------------------

SALT_LOCAL = VALID.replace(
    "environments:\n", "salt:\n  master_config: /etc/salt/master\nenvironments:\n", 1
).replace(
    "        file_roots: {type: local, path: /srv/saltpipe/syndic-test}\n",
    "        file_roots: {type: local, path: /srv/saltpipe/syndic-test}\n        master_config: /etc/salt/master\n",
    1,
)
SALT_API = VALID.replace(
    "environments:\n",
    "salt:\n  api:\n    url: https://mofm1.example.net:8000/\n    user: saltpipe\nenvironments:\n",
    1,
)


def test_salt_section_is_optional(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.salt is None
    assert cfg.syndic_master_configs("test") == {}


def test_salt_master_config_and_syndic_master_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SALT_LOCAL))
    assert cfg.salt is not None and cfg.salt.master_config == Path("/etc/salt/master") and cfg.salt.api is None
    assert cfg.syndic_master_configs("test") == {"syndic-test": Path("/etc/salt/master")}
    assert cfg.syndic_master_configs("production") == {}  # remote syndic without a local config


def test_salt_api_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SALT_API))
    assert cfg.salt is not None and cfg.salt.master_config is None
    api = cfg.salt.api
    assert api is not None
    assert (api.url, api.user, api.eauth, api.ca_bundle) == ("https://mofm1.example.net:8000", "saltpipe", "pam", None)


def test_bundled_config_reaches_the_mom_through_salt_api() -> None:
    cfg = load_config(REPO / "salt" / "pipeline.yaml")
    assert cfg.salt is not None and cfg.salt.api is not None and cfg.salt.api.url.startswith("https://")


SALT_INVALID = [
    pytest.param(
        SALT_LOCAL, ("  master_config: /etc/salt/master\n", "  master_config: etc/salt/master\n"), 3,
        "salt.master_config", "absolute path", id="relative-mom-config",
    ),
    pytest.param(
        SALT_LOCAL, ("        master_config: /etc/salt/master\n", "        master_config: master\n"), 9,
        "environments.test.syndics[0].master_config", "absolute path", id="relative-syndic-config",
    ),
    pytest.param(
        SALT_LOCAL, ("  master_config: /etc/salt/master\n", "  master_config: /etc/salt/master\n  api: {url: https://x, user: u}\n"),
        2, "salt", "exactly one way to reach the master-of-masters", id="both-local-and-api",
    ),
    pytest.param(
        SALT_LOCAL, ("  master_config: /etc/salt/master\n", "  {}\n"), 2,
        "salt", "exactly one way", id="neither-local-nor-api",
    ),
    pytest.param(
        SALT_API, ("url: https://mofm1.example.net:8000/", "url: mofm1.example.net:8000"), 4,
        "salt.api.url", "http:// or https://", id="api-url-without-scheme",
    ),
    pytest.param(
        SALT_API, ("    user: saltpipe\n", ""), 3, "salt.api.user", "required key is missing", id="api-without-user",
    ),
    pytest.param(
        SALT_API, ("    user: saltpipe\n", "    user: saltpipe\n    password: hunter2\n"), 6,
        "salt.api.password", "remove it", id="api-password-in-file-refused",
    ),
]


@pytest.mark.parametrize(("base", "edit", "line", "key", "words"), SALT_INVALID)
def test_invalid_salt_section_names_file_line_key(
    tmp_path: Path, base: str, edit: tuple[str, str], line: int, key: str, words: str
) -> None:
    old, new = edit
    assert old in base, "test case does not apply"
    path = write(tmp_path, base.replace(old, new, 1))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    text = str(excinfo.value)
    assert excinfo.value.line == line, text
    assert f"{path}:{line}:" in text and key in text and words in text, text


# -- how the CLI combines the salt: section with its flags (pipeline/salt_access.py) -----------------------------------


def test_flags_override_the_salt_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import UsageError
    from pipeline.salt_access import mom_access, syndic_configs

    local = load_config(write(tmp_path, SALT_LOCAL))
    assert mom_access(local).master_config == Path("/etc/salt/master")
    assert mom_access(local, master_config="/tmp/mom/master").master_config == Path("/tmp/mom/master")
    via_flag = mom_access(local, api_url="https://api.example.net", api_user="ci")
    assert via_flag.master_config is None and via_flag.api is not None and via_flag.api.eauth == "pam"
    with pytest.raises(UsageError, match="not both"):
        mom_access(local, master_config="/x", api_url="https://y")

    api = mom_access(load_config(write(tmp_path, SALT_API)), api_eauth="ldap")
    assert api.api is not None and (api.api.user, api.api.eauth) == ("saltpipe", "ldap")
    monkeypatch.delenv("SALTPIPE_SALT_API_PASSWORD", raising=False)
    with pytest.raises(UsageError, match="password"):
        api.password()
    monkeypatch.setenv("SALTPIPE_SALT_API_PASSWORD", "s3cret")
    assert api.password() == "s3cret"

    with pytest.raises(UsageError, match="salt:` section"):
        mom_access(load_config(write(tmp_path, VALID)))

    assert syndic_configs(local, "test", ["syndic-test=/tmp/st/master"]) == {"syndic-test": Path("/tmp/st/master")}
    assert syndic_configs(local, "production", ["syndic-prod-a=/a"]) == {"syndic-prod-a": Path("/a")}
    with pytest.raises(UsageError, match="not a syndic of test"):
        syndic_configs(local, "test", ["syndic-prod-a=/a"])
    with pytest.raises(UsageError, match="NAME=VALUE"):
        syndic_configs(local, "test", ["syndic-test"])
