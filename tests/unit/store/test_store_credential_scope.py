"""S3 credentials go only to the endpoint they were given for (issue 17): the environment's to the
environment's endpoint, a mounted Secret's to the endpoint it names."""

from __future__ import annotations

from pathlib import Path

from glassbox_api.store import S3Settings

ENV = {"GLASSBOX_S3_ENDPOINT": "http://store.a:9000", "GLASSBOX_S3_ACCESS_KEY": "AKIA-A", "GLASSBOX_S3_SECRET_KEY": "s-a",
       "GLASSBOX_S3_CREDENTIALS_DIR": "/nonexistent"}


def test_environment_credentials_go_to_the_environments_endpoint() -> None:
    s = S3Settings.from_env(ENV)
    assert (s.endpoint, s.access_key, s.secret_key.get_secret_value()) == ("store.a:9000", "AKIA-A", "s-a")
    same = S3Settings.from_env(ENV, endpoint="STORE.A:9000")
    assert same.access_key == "AKIA-A"


def test_environment_credentials_never_go_to_another_endpoint() -> None:
    s = S3Settings.from_env(ENV, endpoint="attacker.example:443")
    assert s.endpoint == "attacker.example:443"
    assert s.access_key is None and s.secret_key is None and s.session_token is None


def test_credentials_without_an_endpoint_apply_to_the_one_in_use() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIA-B", "AWS_SECRET_ACCESS_KEY": "s-b", "GLASSBOX_S3_CREDENTIALS_DIR": "/nonexistent"}
    assert S3Settings.from_env(env, endpoint="store.b:9000").access_key == "AKIA-B"


def test_a_mounted_secret_naming_its_endpoint_serves_only_that_endpoint(tmp_path: Path) -> None:
    (tmp_path / "endpoint").write_text("https://store.c:443\n")
    (tmp_path / "accessKey").write_text("AKIA-C")
    (tmp_path / "secretKey").write_text("s-c")
    env = {"GLASSBOX_S3_CREDENTIALS_DIR": str(tmp_path)}
    mine = S3Settings.from_env(env)
    assert (mine.endpoint, mine.secure, mine.access_key) == ("store.c:443", True, "AKIA-C")
    other = S3Settings.from_env(env, endpoint="store.d:9000")
    assert other.access_key is None and other.secret_key is None


def test_settings_never_print_the_secret() -> None:
    s = S3Settings.from_env(ENV)
    assert "s-a" not in repr(s) and "AKIA-A" not in repr(s)
