"""Logs carry no API keys, URL passwords or photo bytes, whoever logs and however (args, exceptions, uvicorn).

test_api_contract.py checks captured logs around real uploads; here each redaction path is pinned down.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from infra.db.models import AuditEvent
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.logging_config import (
    REQUEST_ID_HEADER,
    ContextFilter,
    RedactingFilter,
    install_redaction,
    json_formatter,
    redact,
)
from infra.settings import REPO_ROOT, Settings, get_settings
from pipelines.mlops.registry import Registry
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


# ---- JSON lines with the request id --------------------------------------------------------------------------


def json_handler(stream: io.StringIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    handler.setLevel(logging.DEBUG)
    return handler


def test_request_log_lines_are_json_with_the_response_request_id(settings: Settings) -> None:
    app = create_app(settings)
    probe = logging.getLogger("probe")

    @app.get("/probe")
    def probe_route() -> dict[str, str]:  # sync: runs in the thread pool, and the id must follow it there
        probe.warning("handling with %s", KEY)
        return {}

    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    sent = {"none": None, "valid": "edge-7f3a9c21.b", "spaces": "not a valid id", "oversize": "a" * 65}
    answered: dict[str, str] = {}
    with TestClient(app) as client:
        root.addHandler(handler)
        try:
            for name, incoming in sent.items():
                headers = {REQUEST_ID_HEADER: incoming} if incoming else {}
                response = client.get("/probe", headers=headers)
                assert response.status_code == 200
                answered[name] = response.headers[REQUEST_ID_HEADER]
        finally:
            root.removeHandler(handler)
    assert answered["valid"] == sent["valid"]  # a proxy's id is honoured
    for name in ("none", "spaces", "oversize"):  # made here when absent or unusable
        assert len(answered[name]) == 32 and int(answered[name], 16) >= 0 and answered[name] != sent[name]
    assert len(set(answered.values())) == len(sent)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    probes = [line for line in lines if line["name"] == "probe"]
    assert [line["request_id"] for line in probes] == list(answered.values())
    assert all(line["request_id"] in answered.values() for line in lines)  # every line of those requests
    assert all(line["message"] == "handling with st_[REDACTED]" and line["level"] == "WARNING" for line in probes)


def test_an_unhandled_error_names_its_request_in_the_answer_and_the_log(settings: Settings) -> None:
    """The 500 is written outside every middleware, so the handler adds the id itself."""
    app = create_app(settings)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("bug")

    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    with TestClient(app, raise_server_exceptions=False) as client:
        root.addHandler(handler)
        try:
            response = client.get("/broken", headers={REQUEST_ID_HEADER: "edge-500-request"})
        finally:
            root.removeHandler(handler)
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert response.headers[REQUEST_ID_HEADER] == "edge-500-request"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [line for line in lines if line["message"] == "unhandled error: RuntimeError"]
    assert error["request_id"] == "edge-500-request" and "RuntimeError: bug" in error["exc_info"]


def test_json_lines_redact_extras_and_tracebacks_too() -> None:
    """The JSON formatter adds what the record factory never saw: `extra=` fields and its own traceback."""
    install_redaction()
    stream = io.StringIO()
    log = logging.getLogger("json.redaction")
    log.addHandler(json_handler(stream))
    log.propagate = False
    photo = encode(skin_photo(64, 64))
    try:
        log.warning("key %s", KEY, extra={"body": photo, "dsn": "postgresql://u:pw123@h/db", "key": KEY})
        try:
            raise RuntimeError(f"bad key {KEY}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.handlers.clear()
        log.propagate = True
    text = stream.getvalue()
    first, second = (json.loads(line) for line in text.splitlines())
    assert KEY not in text and "pw123" not in text and photo[:8].hex() not in text
    assert first["body"] == f"<{len(photo)} bytes>" and first["key"] == "st_[REDACTED]"
    assert "RuntimeError: bad key st_[REDACTED]" in second["exc_info"]


# ---- every logging path during real traffic, and the audit trail of sensitive actions -----------------------

WINDOW = 32


def windows(data: bytes, size: int = WINDOW) -> set[bytes]:
    return {data[i : i + size] for i in range(0, max(1, len(data) - size + 1))}


def leaked_photo_slices(photo: bytes, text: str) -> list[str]:
    """Every 32-byte slice of the photo, looked for raw, as hex, as Python repr and (sampled) as base64."""
    raw = text.encode("utf-8", "surrogateescape")
    found: list[str] = []
    log_windows = windows(raw) | windows(text.encode("latin-1", "replace"))
    hex_windows = windows(raw, 2 * WINDOW)
    for i in range(0, len(photo) - WINDOW + 1):
        piece = photo[i : i + WINDOW]
        if piece in log_windows or piece.hex().encode() in hex_windows:
            found.append(f"raw/hex slice at {i}")
    for i in range(0, len(photo) - WINDOW + 1, 97):
        piece = photo[i : i + WINDOW]
        if repr(piece)[2:-1] in text or base64.b64encode(piece).decode()[4:-4] in text:
            found.append(f"repr/base64 slice at {i}")
    return found[:5]


@pytest.fixture
def audited_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SKINTROUBLE_REVIEW_AUDIT_RATE", "1.0")  # the analysed case goes to the review queue
    monkeypatch.setenv("SKINTROUBLE_REVIEW_DOUBLE_RATE", "0.0")
    get_settings.cache_clear()
    return get_settings()


def test_logs_carry_no_keys_or_photo_bytes_and_actions_are_audited(
    audited_settings: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    settings = audited_settings
    photo = encode(skin_photo(416, 400, seed=3))
    root = logging.getLogger()
    stream = io.StringIO()
    handler = json_handler(stream)  # what `serve` writes: JSON lines
    handler.setLevel(logging.DEBUG)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
            with session_scope(settings.sqlalchemy_url) as session:
                app_row, app_raw = api_keys.create_key(session=session, role="app", name="phone")
                derm_row, derm_raw = api_keys.create_key(session=session, role="dermatologist", name="derm")
                ml_row, ml_raw = api_keys.create_key(session=session, role="ml-engineer", name="ml")
                revoked_row, revoked_raw = api_keys.create_key(session=session, role="app", name="old-phone")
                revoked_prefix = revoked_row.prefix
                ids = {"app": app_row.id, "dermatologist": derm_row.id, "ml-engineer": ml_row.id}
            with session_scope(settings.sqlalchemy_url) as session:
                api_keys.revoke_by_prefix(session=session, prefix=revoked_prefix)
            phone, derm, ml = ({"X-API-Key": k} for k in (app_raw, derm_raw, ml_raw))
            files = {"image": ("photo.jpg", photo, "image/jpeg")}

            analysed = client.post("/v1/analyses", files=files, headers=phone)
            assert analysed.status_code == 200, analysed.text
            case_id = analysed.json()["id"]
            assert (
                client.post("/v1/analyses", files={"image": ("x.jpg", photo[:5000])}, headers=phone).status_code == 400
            )
            assert client.post("/v1/analyses", files={"image": ("x.jpg", b"notes")}, headers=phone).status_code == 415
            invalid_key = "st_" + app_raw[3:-4] + "abcd"
            assert client.post("/v1/analyses", files=files, headers={"X-API-Key": invalid_key}).status_code == 401
            assert client.post("/v1/analyses", files=files, headers={"X-API-Key": revoked_raw}).status_code == 401
            assert client.get("/v1/models", headers=phone).status_code == 403

            claimed = client.post("/v1/review/claim", headers=derm)
            assert claimed.status_code == 200 and claimed.json()["id"] == case_id, claimed.text
            labels = {"verdict": "corrected", "grade": 1, "boxes": [{"label": "lesion", "box": [10, 10, 30, 30]}]}
            assert client.post(f"/v1/review/cases/{case_id}/labels", json=labels, headers=derm).status_code == 201

            version = register_card_only_version(settings, tmp_path)
            promoted = client.post(f"/v1/models/{version}/promote", json={"alias": "poc", "reason": "try"}, headers=ml)
            assert promoted.status_code == 200, promoted.text

            assert client.delete(f"/v1/analyses/{case_id}", headers=phone).status_code == 204
            # a careless log call is made harmless by the record factory the app installs
            logging.getLogger("careless").debug("upload %r from %s", photo, app_raw)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"time", "level", "name", "message", "request_id"} <= set(line) for line in lines)
    text = "\n".join([stream.getvalue(), caplog.text, *(r.getMessage() for r in caplog.records)])
    assert f"<{len(photo)} bytes>" in text and "from st_[REDACTED]" in text  # the capture saw the careless line
    for raw in (app_raw, derm_raw, ml_raw, revoked_raw, invalid_key):
        assert raw not in text and raw[3:] not in text
    assert not leaked_photo_slices(photo, text)

    with session_scope(settings.sqlalchemy_url) as session:
        events = {(e.action, e.actor_id, e.role, e.target) for e in session.scalars(select(AuditEvent))}
    assert ("analysis.deleted", ids["app"], "app", case_id) in events
    assert ("review.claimed", ids["dermatologist"], "dermatologist", case_id) in events
    assert ("review.labelled", ids["dermatologist"], "dermatologist", case_id) in events
    assert ("model.promoted", ids["ml-engineer"], "ml-engineer", f"poc:{version}") in events


def register_card_only_version(settings: Settings, tmp_path: Path) -> str:
    """A registry version holding only a model card: enough to move the `poc` alias (no gate, no download)."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy2(REPO_ROOT / "detector" / "weights" / "model.json", folder / "model.json")
    registry = Registry.from_settings(settings)
    run = registry.client.create_run(registry.experiment_id(), run_name="privacy-test")
    version = registry.register_folder(run_id=run.info.run_id, model_dir=folder, tags={})
    registry.client.set_terminated(run.info.run_id)
    return version
