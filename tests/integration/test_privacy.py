"""Logs carry no API keys, URL passwords or photo bytes, whoever logs and however (args, exceptions, uvicorn).

test_api_contract.py checks captured logs around real uploads; here each redaction path is pinned down.
"""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.logging_config import RedactingFilter, install_redaction, redact
from api.main import create_app
from infra.db.engine import session_scope
from infra.db.repositories import api_keys
from infra.settings import Settings
from tests.conftest import encode, skin_photo

KEY = "st_Zk3v9Qx7LmN2pR8sT4uW6yA1bC5dE0fG"


def test_redact_masks_keys_and_url_passwords_only() -> None:
    assert KEY not in redact(f"key {KEY} used") and "st_[REDACTED]" in redact(f"key {KEY} used")
    assert redact("postgresql+psycopg://skin:s3cr3t@db:5432/x") == "postgresql+psycopg://skin:***@db:5432/x"
    assert redact("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact("first_name st_x and http://host:8000/path") == "first_name st_x and http://host:8000/path"


def test_every_logger_is_redacted_at_record_creation(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    photo = encode(skin_photo(64, 64))
    log = logging.getLogger("anything.at.all")
    with caplog.at_level(logging.DEBUG):
        log.info("key=%s", KEY)
        log.info("dict %(k)s", {"k": KEY})
        log.info(f"inline {KEY}")
        log.debug("body %r", photo)
        log.debug("nested %s", {"headers": {"x-api-key": KEY}, "body": photo})
        log.warning("db %s", "postgresql://u:pw123@h/db")
        try:
            raise RuntimeError(f"bad key {KEY}")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in text and "pw123" not in text
    assert repr(photo[:16])[2:-1] not in text and f"<{len(photo)} bytes>" in text
    assert text.count("st_[REDACTED]") >= 5


def test_filter_for_handlers_configured_elsewhere() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "auth %s", (KEY,), None)
    assert RedactingFilter().filter(record) and KEY not in record.getMessage()


def test_uvicorn_access_records_keep_their_shape() -> None:
    """uvicorn's access formatter unpacks record.args: redaction must leave the tuple intact."""
    from uvicorn.logging import AccessFormatter

    install_redaction()
    record = logging.getLogRecordFactory()(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/v1/analyses?k={KEY}", "1.1", 200),
        None,
    )
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s", use_colors=False).format(record)
    assert "GET" in line and "200" in line and KEY not in line


def test_errors_and_uploads_log_neither_key_nor_photo(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, raw = api_keys.create_key(session=session, role="app", name="phone")
        photo = encode(skin_photo(400, 400, seed=3))
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("api.test").error("client sent %s with %r", raw, photo)  # a careless log line
            client.post(
                "/v1/analyses", files={"image": ("p.jpg", photo[:5000], "image/jpeg")}, headers={"X-API-Key": raw}
            )
            client.get("/v1/analyses/none", headers={"X-API-Key": raw + "x"})
    text = caplog.text
    assert raw not in text and raw[3:20] not in text
    assert photo[100:140].hex() not in text and repr(photo[100:120])[2:-1] not in text
