"""The analyses API's contract: every documented status code and JSON error, on SQLite and PostgreSQL,
a bad-input corpus made here, privacy of stored photos and logs."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from infra.db.models import AuditEvent, Case, DeletedCase
from infra.db.repositories.api_keys import create_key
from infra.db.unit_of_work import session_scope
from infra.settings import Settings, get_settings
from tests.conftest import encode, skin_photo


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """(client, settings, keys by role) on the embedded database or a live PostgreSQL of this test's own."""
    if request.param == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_url"))
    # every case goes to review, so the dermatologist's read below does not hang on what the model found
    monkeypatch.setenv("SKINTROUBLE_REVIEW_AUDIT_RATE", "1.0")
    get_settings.cache_clear()
    current = get_settings()
    from api.main import create_app

    with TestClient(create_app(current)) as client:
        with session_scope(current.sqlalchemy_url) as session:
            keys = {
                role: create_key(session=session, role=role, name=role)[1]
                for role in ("app", "dermatologist", "ml-engineer")
            }
            keys["app2"] = create_key(session=session, role="app", name="other phone")[1]
        yield client, current, keys


def upload(client: TestClient, key: str | None, data: bytes, name: str = "p.jpg", **kw: object):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key} if key else {}
    headers.update(kw.pop("headers", {}))  # type: ignore[arg-type]
    return client.post("/v1/analyses", files={"image": (name, data, "image/jpeg")}, headers=headers, **kw)


def assert_error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)


def test_analysis_round_trip_and_every_status_code(api: tuple) -> None:
    client, settings, keys = api
    good = encode(skin_photo(800, 600, seed=1))
    r = upload(client, keys["app"], good, headers={"Idempotency-Key": "retry-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"id", "quality", "findings", "lesion_count", "severity", "model_version", "review"} <= set(body)
    assert body["severity"]["grade"] in range(4) and set(body["review"]) == {"queued", "reason"}
    with session_scope(settings.sqlalchemy_url) as session:  # stored before the answer was sent
        case = session.get(Case, body["id"])
        assert case is not None and case.status == "done" and case.photo_key
    assert (settings.photos_dir / f"cases/{body['id']}/photo.jpg").is_file()

    again = upload(client, keys["app"], good, headers={"Idempotency-Key": "retry-1"})
    assert again.json()["id"] == body["id"]
    with session_scope(settings.sqlalchemy_url) as session:
        assert session.query(Case).count() == 1

    read = client.get(f"/v1/analyses/{body['id']}", headers={"X-API-Key": keys["app"]})
    assert read.status_code == 200 and read.json()["lesion_count"] == body["lesion_count"]
    assert client.get(f"/v1/analyses/{body['id']}", headers={"X-API-Key": keys["dermatologist"]}).status_code == 200
    assert_error(
        client.get(f"/v1/analyses/{body['id']}", headers={"X-API-Key": keys["app2"]}), 404, "analysis_not_found"
    )
    overlay = client.get(f"/v1/analyses/{body['id']}/overlay.png", headers={"X-API-Key": keys["app"]})
    assert overlay.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(overlay.content)).size == (800, 600)

    assert_error(upload(client, None, good), 401, "missing_api_key")
    assert_error(upload(client, "st_not-a-key", good), 401, "invalid_api_key")
    assert_error(upload(client, keys["dermatologist"], good), 403, "forbidden_role")
    dark = upload(client, keys["app"], encode((skin_photo(seed=2) * 0.08).astype(np.uint8)))
    assert_error(dark, 422, "quality_rejected")
    assert "too_dark" in dark.json()["error"]["retake_codes"] and dark.json()["error"]["hints"]

    pending = upload(client, keys["app"], good, params={"mode": "async"})
    assert pending.status_code == 202 and pending.headers["Location"].endswith(pending.json()["id"])
    assert client.get(pending.headers["Location"], headers={"X-API-Key": keys["app"]}).json()["status"] == "pending"

    assert client.delete(f"/v1/analyses/{body['id']}", headers={"X-API-Key": keys["app"]}).status_code == 204
    assert not (settings.photos_dir / f"cases/{body['id']}").exists()
    assert_error(
        client.get(f"/v1/analyses/{body['id']}", headers={"X-API-Key": keys["app"]}), 404, "analysis_not_found"
    )
    with session_scope(settings.sqlalchemy_url) as session:
        assert session.get(DeletedCase, body["id"]) is not None
        assert session.query(AuditEvent).filter_by(action="analysis.deleted", target=body["id"]).count() == 1


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def exif_photo(orientation: int | None = None, gps: bool = False) -> bytes:
    img = Image.fromarray(skin_photo(640, 480, seed=4))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_bad_input_corpus_gets_documented_errors_and_the_server_keeps_serving(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKINTROUBLE_MAX_UPLOAD_BYTES", str(3_000_000))
    get_settings.cache_clear()
    current = get_settings()
    from api.main import create_app

    photo = skin_photo(640, 480, seed=5)
    rgb_img = Image.fromarray(photo)
    with TestClient(create_app(current)) as client:
        with session_scope(current.sqlalchemy_url) as session:
            key = create_key(session=session, role="app", name="phone")[1]
        full = encode(photo)
        assert_error(upload(client, key, b""), 400, "empty_body")
        assert_error(upload(client, key, b"just some notes, not a photo"), 415, "unsupported_media_type")
        assert_error(upload(client, key, full[: len(full) // 2]), 400, "unreadable_image")
        import tracemalloc

        tracemalloc.start()
        assert_error(upload(client, key, png_declaring(30000, 30000), name="bomb.png"), 413, "image_too_large")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 50_000_000  # nothing near 30000 x 30000 x 3 bytes was ever allocated
        noise = np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)
        assert_error(upload(client, key, encode(noise, "PNG")), 413, "payload_too_large")
        missing = client.post("/v1/analyses", headers={"X-API-Key": key})
        assert_error(missing, 422, "invalid_request")

        accepted = {"gray.png": encode(np.asarray(rgb_img.convert("L").convert("RGB")), "PNG")}
        buf = io.BytesIO()
        rgb_img.convert("CMYK").save(buf, format="JPEG")
        accepted["cmyk.jpg"] = buf.getvalue()
        buf = io.BytesIO()
        Image.fromarray(np.asarray(rgb_img.convert("L")).astype(np.uint16) * 257).save(buf, format="PNG")
        accepted["16bit.png"] = buf.getvalue()
        buf = io.BytesIO()
        frames = [rgb_img.convert("P"), Image.fromarray(255 - photo).convert("P")]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
        accepted["animated.gif"] = buf.getvalue()
        for name, data in accepted.items():
            r = upload(client, key, data, name=name)
            assert r.status_code in (200, 422), (name, r.text)  # decoded; 422 only if the gate dislikes it
            if r.status_code == 422:
                assert r.json()["error"]["code"] == "quality_rejected", name

        rotated = upload(client, key, exif_photo(orientation=6, gps=True), name="rotated.jpg")
        assert rotated.status_code == 200, rotated.text
        assert (rotated.json()["width"], rotated.json()["height"]) == (480, 640)  # EXIF rotation applied
        stored = (current.photos_dir / f"cases/{rotated.json()['id']}/photo.jpg").read_bytes()
        with Image.open(io.BytesIO(stored)) as img:
            assert img.size == (480, 640) and not img.getexif() and 0x8825 not in img.getexif()
        assert b"Exif" not in stored[:4096]

        try:
            import pillow_heif

            heif = io.BytesIO()
            pillow_heif.from_pillow(rgb_img).save(heif, format="HEIF", quality=90)
        except Exception as exc:  # an encoder may be missing from the wheel; decoding is what we serve
            pytest.skip(f"cannot encode HEIC here to test it: {exc}")
        r = upload(client, key, heif.getvalue(), name="iphone.heic")
        assert (
            r.status_code in (200, 422)
            and r.json().get("error", {}).get("code", "quality_rejected") == "quality_rejected"
        )

        assert upload(client, key, full).status_code == 200  # still serving


def test_no_photo_bytes_or_keys_in_logs(api: tuple, caplog: pytest.LogCaptureFixture) -> None:
    client, _, keys = api
    data = encode(skin_photo(seed=9))
    with caplog.at_level(logging.DEBUG):
        upload(client, keys["app"], data)
        upload(client, keys["app"], b"garbage")
        upload(client, keys["app"] + "x", data)
        client.get("/v1/analyses/nope", headers={"X-API-Key": keys["app"]})
    text = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    for key in keys.values():
        assert key not in text
    assert all(
        data[i : i + 32].hex() not in text and str(data[i : i + 32]) not in text for i in range(0, len(data) - 32, 997)
    )


def test_photo_storage_folder_is_not_created_for_rejected_photos(api: tuple) -> None:
    client, settings, keys = api
    dark = upload(client, keys["app"], encode((skin_photo(seed=3) * 0.05).astype(np.uint8)))
    assert dark.status_code == 422
    case_id = dark.json()["error"]["id"]
    assert not Path(settings.photos_dir / f"cases/{case_id}").exists()  # rejected photos are not kept
