"""Security settings and the clients built from them (no servers: what goes to the clients)."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest
from pydantic import SecretStr, ValidationError

from meterwatch.cli import check_credentials
from meterwatch.connections import (
    faust_broker_credentials,
    kafka_client_kwargs,
    kafka_security,
    redis_auth_url,
    redis_options,
    redis_target,
    security_configured,
)
from meterwatch.settings import Settings, settings_error

SASL = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "mw",
    "kafka_ssl_cafile": certifi.where(),
}


def _error(**kw: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**kw)  # type: ignore[arg-type]
    return settings_error(info.value)


def test_secrets_from_files_never_show_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k").write_text("kafka-s3cret\n")
    (tmp_path / "r").write_text("redis-s3cret")
    monkeypatch.setenv("MW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MW_KAFKA_SASL_USERNAME", "mw")
    monkeypatch.setenv("MW_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "k"))
    monkeypatch.setenv("MW_REDIS_PASSWORD_FILE", str(tmp_path / "r"))
    s = Settings()
    assert s.kafka_sasl_password.get_secret_value() == "kafka-s3cret"  # the trailing newline dropped
    assert s.redis_password.get_secret_value() == "redis-s3cret"
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert "s3cret" not in text
    assert "kafka-s3cret" not in repr(faust_broker_credentials(s))


def test_bad_secret_settings_are_one_line_without_the_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file")
    both = _error(redis_password="inline-pw", redis_password_file=str(tmp_path / "pw"))
    assert both == "set MW_REDIS_PASSWORD or MW_REDIS_PASSWORD_FILE, not both"
    missing = _error(redis_password_file=str(tmp_path / "nope"))
    assert missing.startswith("MW_REDIS_PASSWORD_FILE: cannot read") and "No such file" in missing
    no_pw = _error(kafka_security_protocol="SASL_SSL", kafka_sasl_username="mw")
    assert "MW_KAFKA_SASL_PASSWORD" in no_pw
    url = _error(redis_url="redis://:hunter2@r1:notaport/0")
    assert "hunter2" not in url and url.startswith("MW_REDIS_URL='redis://***@r1")
    tls_off = _error(kafka_ssl_cafile=certifi.where())
    assert "does not use TLS" in tls_off
    assert "MW_REDIS_SSL_CAFILE is set but MW_REDIS_URL is not a rediss://" in _error(
        redis_ssl_cafile=certifi.where()
    )


def test_plaintext_defaults_add_no_security_arguments() -> None:
    s = Settings()
    assert kafka_client_kwargs(s, client_id="x") == {"bootstrap_servers": s.kafka_bootstrap, "client_id": "x"}
    assert faust_broker_credentials(s) is None
    assert redis_options(s) == {}
    assert security_configured(s) == (False, False)
    assert check_credentials("worker") is None  # nothing secured: no server is asked


def test_sasl_ssl_reaches_aiokafka_and_faust_alike() -> None:
    s = Settings(**SASL, kafka_sasl_password="pw", kafka_ssl_check_hostname=False)  # type: ignore[arg-type]
    sec = kafka_security(s)
    assert sec["security_protocol"] == "SASL_SSL" and sec["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (sec["sasl_plain_username"], sec["sasl_plain_password"]) == ("mw", "pw")
    ctx = sec["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False and ctx.cert_store_stats()["x509_ca"] > 0
    creds = faust_broker_credentials(s)
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (creds.username, creds.password) == ("mw", "pw")
    ssl_only = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=certifi.where())
    assert isinstance(faust_broker_credentials(ssl_only), ssl.SSLContext)
    assert "sasl_mechanism" not in kafka_security(ssl_only)
    assert security_configured(s) == (True, False)


def test_redis_tls_and_acl_user() -> None:
    s = Settings(
        redis_url="rediss://r1:6380/3",
        redis_username="mw",
        redis_password=SecretStr("p@ss word"),
        redis_ssl_cafile=certifi.where(),
    )
    opts = redis_options(s)
    assert opts == {
        "username": "mw",
        "password": "p@ss word",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": certifi.where(),
    }
    assert redis_target(s) == "rediss://r1:6380/3"
    assert redis_auth_url(s) == "rediss://mw:p%40ss%20word@r1:6380/3"
    assert redis_target(Settings(redis_url="redis://:pw@r1:6379/0")) == "redis://r1:6379/0"
    assert security_configured(s) == (False, True)
