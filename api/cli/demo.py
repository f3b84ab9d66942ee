"""`skintrouble demo`: walk the whole loop against a running service, printing what happens and where to look.

Photos are generated here (synthetic skin with known lesions), so reviews are filled in from the labels the
generator knows. Run `make up` in one terminal and `make demo` in another.
"""

from __future__ import annotations

import io
import json
import time
from typing import Annotated, Any

import httpx
import typer
from PIL import Image, ImageFilter
from rich.console import Console

from infra.settings import get_settings

out = Console()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


class Demo:
    def __init__(self, url: str, keys: dict[str, str], timeout: float) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.keys = keys
        self.url = url

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"X-API-Key": self.keys[role]}, **kwargs)

    def step(self, title: str) -> None:
        out.rule(f"[bold]{title}")


def _wait(predicate: Any, seconds: float, every: float = 2.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def demo(
    url: Annotated[str, typer.Option(help="the running service")] = "http://127.0.0.1:8000",
    photos: Annotated[int, typer.Option(help="synthetic photos to analyse")] = 8,
    train_timeout: Annotated[float, typer.Option(help="seconds to wait for the tiny retrain")] = 600,
) -> None:
    """Analyses, rejections, review queue, reviews from known labels, a tiny retrain, the gate, serving, rollback."""
    from detector.synthetic import synthetic_skin_photo, write_yolo_dataset
    from infra.db.unit_of_work import session_scope
    from pipelines.mlops.datasets import import_folder

    settings = get_settings()
    keys_file = settings.var_path / "dev-keys.json"
    if not keys_file.is_file():
        out.print(f"[red]no {keys_file}: start the service with `make up` first[/red]")
        raise typer.Exit(1)
    d = Demo(url, json.loads(keys_file.read_text()), timeout=120)
    try:
        ready = d.http.get("/readyz").json()
    except httpx.HTTPError as exc:
        out.print(f"[red]the service at {url} does not answer ({type(exc).__name__}); run `make up` first[/red]")
        raise typer.Exit(1) from exc
    out.print(f"service ready: {ready}")

    d.step("1. The mobile app uploads photos")
    known: dict[str, list[tuple[float, float, float, float]]] = {}
    # the photos are drawn by code: the gate's content network takes some for drawings rather than photos of skin
    # (`not_skin_photo`), as it would any such upload; the app keeps sending until `photos` were analysed
    for seed in range(4 * photos):
        if len(known) >= photos:
            break
        photo = synthetic_skin_photo(2000 + seed)
        r = d.call(
            "app",
            "POST",
            "/v1/analyses",
            files={"image": (f"demo{seed}.jpg", _jpeg(Image.fromarray(photo.rgb)), "image/jpeg")},
        )
        body = r.json()
        if r.status_code == 200:
            known[body["id"]] = photo.boxes
            review = f"queued for review ({body['review']['reason']})" if body["review"]["queued"] else "not queued"
            out.print(
                f"  photo {seed}: {body['lesion_count']} lesions (truth {len(photo.boxes)}), grade "
                f"{body['severity']['grade']} {body['severity']['label']}, {review}; model {body['model_version']}"
            )
        else:
            out.print(f"  photo {seed}: {r.status_code} {body}")

    d.step("2. The quality gate rejects bad photos with retake codes")
    base = Image.fromarray(synthetic_skin_photo(2999).rgb)
    bad = {
        "dark": base.point(lambda v: int(v * 0.12)),
        "blurred": base.filter(ImageFilter.GaussianBlur(8)),
        "tiny": base.resize((160, 160)),
    }
    for name, img in bad.items():
        r = d.call("app", "POST", "/v1/analyses", files={"image": (f"{name}.jpg", _jpeg(img), "image/jpeg")})
        err = r.json().get("error", {})
        out.print(f"  {name}: {r.status_code} {err.get('code')} {err.get('retake_codes')} - {err.get('hints')}")

    d.step("3. Dermatologists review the uncertain cases (filled in from the generator's known labels)")
    reviewed = 0
    while True:
        r = d.call("dermatologist", "POST", "/v1/review/claim")
        if r.status_code == 204:
            break
        case = r.json()
        truth = known.get(case["id"])
        if truth is None:  # a case from an earlier run: skip it
            d.call("dermatologist", "POST", f"/v1/review/cases/{case['id']}/skip")
            continue
        from detector.grading import grade_from_count

        labels = {
            "verdict": "corrected",
            "grade": grade_from_count(len(truth)).grade,
            "boxes": [{"label": "lesion", "box": [round(v, 1) for v in box]} for box in truth],
        }
        r = d.call("dermatologist", "POST", f"/v1/review/cases/{case['id']}/labels", json=labels)
        reviewed += r.status_code in (200, 201)
        out.print(
            f"  case {case['id'][:8]} ({case['reason']}): {len(truth)} boxes, grade {labels['grade']} -> {r.status_code}"
        )
        if reviewed >= photos:
            break
    out.print(
        f"  {reviewed} cases reviewed; queue stats: {d.call('dermatologist', 'GET', '/v1/review/stats').json()['queue']}"
    )

    d.step("4. An ML engineer retrains on the reviewed labels (tiny CPU run)")
    base_data = write_yolo_dataset(settings.var_path / "demo" / f"base-{int(time.time())}", range(3000, 3006), 320)
    with session_scope(settings.sqlalchemy_url) as session:  # what `skintrouble dataset register` does
        dataset = import_folder(session=session, src=base_data, root=settings.var_path / "datasets").id
    r = d.call(
        "ml-engineer",
        "POST",
        "/v1/training-runs",
        json={"epochs": 1, "imgsz": 320, "batch": 4, "from": "release", "dataset": dataset},
    )
    run = r.json()
    out.print(f"  training run {run.get('id')}: {r.status_code} {run.get('status')}")

    def finished() -> dict[str, Any] | None:
        state = d.call("ml-engineer", "GET", f"/v1/training-runs/{run['id']}").json()
        return state if state["status"] in ("succeeded", "failed") else None

    state = _wait(finished, train_timeout, every=3)
    if not state or state["status"] != "succeeded":
        out.print(f"[red]  training did not succeed in time: {state}[/red]")
        raise typer.Exit(1)
    version = state["model_version"]
    out.print(
        f"  registered version {version} (alias poc), dataset {state['dataset_digest'][:12]}, metrics {state['metrics']}"
    )

    d.step("5. The promotion gate on the frozen benchmark")
    r = d.call("ml-engineer", "POST", f"/v1/models/{version}/promote", json={"alias": "mvp", "reason": "demo"})
    out.print(f"  to mvp: {r.status_code} {r.json().get('figures') or r.json()}")
    r = d.call("ml-engineer", "POST", f"/v1/models/{version}/promote", json={"alias": "release", "reason": "demo"})
    body = r.json()
    if r.status_code == 409:
        out.print(f"  to release: refused - {body['error']['message']}")
        out.print(f"    figures: {body['error'].get('figures')}")
        out.print("  forcing it (recorded in the history) only to show that serving follows release:")
        r = d.call(
            "ml-engineer",
            "POST",
            f"/v1/models/{version}/promote",
            json={"alias": "release", "reason": "demo: forced to show serving follows release", "force": True},
        )
    out.print(f"  release -> {r.json().get('version')} ({r.status_code})")

    d.step("6. The API serves the new release without a restart")
    probe = _jpeg(Image.fromarray(synthetic_skin_photo(4242).rgb))

    def serving() -> str | None:
        body = d.call("app", "POST", "/v1/analyses", files={"image": ("probe.jpg", probe, "image/jpeg")}).json()
        served = body.get("model_version")
        return served if served and served.startswith("retrain-") else None

    served = _wait(serving, settings.model_refresh_seconds + 60, every=5)
    out.print(f"  analyses now report model_version {served}")
    r = d.call("ml-engineer", "POST", "/v1/models/rollback", json={"alias": "release", "reason": "demo: roll back"})
    out.print(f"  rolled back release to version {r.json().get('version')} ({r.status_code})")

    d.step("Where to look")
    out.print(f"  API docs      {url}/docs")
    out.print(f"  review page   {url}/review   (dermatologist key in {keys_file})")
    out.print(f"  metrics       {url}/metrics ; summary: GET {url}/v1/monitoring/summary (ml-engineer key)")
    out.print(f"  MLflow UI     .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")


def register(app: typer.Typer) -> None:
    app.command()(demo)
