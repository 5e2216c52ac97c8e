"""`salt_access.make_client`: the one place that builds the Salt client the config and the flags choose (the CLI
only parses flags into SaltFlags). Nothing is contacted: the clients only connect on their first call."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import SaltError, UsageError
from pipeline.salt_access import PASSWORD_ENV, SaltFlags, make_client
from pipeline.salt_client.api import SaltApiClient
from pipeline.salt_client.jobcache import JobCacheClient

CONFIG = """\
version: 1
salt:
  api: {{url: "https://mom.example.net:8000", user: saltpipe, eauth: pam}}
environments:
  test:
    syndics: [{{name: syndic-test, file_roots: {{type: local, path: /srv/t}}}}]
    target: "G@saltpipe_env:test"
    canary: 1
    batches: ["100%"]
  production:
    syndics: [{{name: syndic-prod-a, file_roots: {{type: local, path: /srv/a}}}}]
    target: "G@saltpipe_env:production"
    canary: 1
    batches: ["100%"]
    job_cache: {{type: redis, host: 127.0.0.1, port: {port}}}
"""


@pytest.fixture
def cfg(tmp_path: Path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(CONFIG.format(port=6399), encoding="utf-8")
    return load_config(path)


def test_salt_api_from_the_config_with_extra_functions_and_syndic_apis(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    client = make_client(cfg, SaltFlags(syndic_apis=("syndic-test=https://syndic-test:8000",)), environment="test",
                         extra_functions=("ops_app.health",))
    assert isinstance(client, SaltApiClient)
    assert client.name == "salt-api(https://mom.example.net:8000)"
    assert "ops_app.health" in client.allowed_functions
    assert set(client._syndics) == {"syndic-test"}  # pylint: disable=protected-access


def test_an_environment_with_a_job_cache_reads_through_it(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    assert isinstance(make_client(cfg, SaltFlags(), environment="production"), JobCacheClient)
    assert isinstance(make_client(cfg, SaltFlags()), SaltApiClient)  # no environment: no job cache


def test_salt_api_without_a_password_says_what_to_set(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(UsageError) as excinfo:
        make_client(cfg, SaltFlags(), environment="test")
    assert PASSWORD_ENV in (excinfo.value.hint or "")


def test_master_config_flag_wins_over_the_config_and_is_checked(cfg, tmp_path: Path) -> None:
    with pytest.raises(SaltError, match="no such master config file"):
        make_client(cfg, SaltFlags(master_config=tmp_path / "absent"), environment="test")
    with pytest.raises(UsageError, match="--syndic-config nope"):
        make_client(cfg, SaltFlags(master_config=tmp_path / "absent", syndic_configs=("nope=/x",)), environment="test")
