"""`skintrouble check-quality` and `predict`: the quality gate and the analysis on local photos."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import err
from infra.settings import get_settings

if TYPE_CHECKING:
    from pipelines.cases.photos import Photo


def check_quality(
    images: Annotated[list[Path], typer.Argument(help="photos to check")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Run the quality gate on photos."""
    from pipelines.cases.analysis import ANALYSIS_LONG_SIDE, thresholds_from
    from pipelines.cases.photos import decode_stored
    from quality_gate import assess

    settings = get_settings()
    thresholds = thresholds_from(settings)
    for path, photo in _uploads(images, as_json):
        pixels = decode_stored(photo.jpeg, min_long_side=ANALYSIS_LONG_SIDE)  # what the API judges, too
        report = assess(pixels.rgb, thresholds, photo_size=(photo.width, photo.height))
        line = {
            "image": str(path),
            "accepted": report.accepted,
            "retake_codes": report.retake_codes,
            "measures": report.measures,
        }
        if as_json:
            typer.echo(json.dumps(line))
        else:
            verdict = "accepted" if report.accepted else "retake: " + ", ".join(report.retake_codes)
            typer.echo(f"{path}: {verdict}")


def _uploads(images: list[Path], as_json: bool) -> Iterator[tuple[Path, Photo]]:
    """Each photo as the API would accept it; one it refuses is reported, and the command exits 1 at the end."""
    from pipelines.cases.photos import PhotoError, decode_photo

    max_pixels = get_settings().max_image_pixels
    failed = False
    for path in images:
        try:
            photo = decode_photo(path.read_bytes(), max_pixels=max_pixels)
        except (PhotoError, OSError) as exc:
            failed = True
            _print_error(path, exc, as_json)
            continue
        yield path, photo
    if failed:
        raise typer.Exit(1)


def _print_error(path: Path, exc: Exception, as_json: bool) -> None:
    code = getattr(exc, "code", "unreadable_file")
    message = getattr(exc, "message", str(exc))
    if as_json:
        typer.echo(json.dumps({"image": str(path), "error": {"code": code, "message": message}}))
    else:
        err.print(f"[red]{path}: {code}: {message}[/red]")


def predict(
    images: Annotated[list[Path], typer.Argument(help="photos to analyse")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    conf: Annotated[
        float | None, typer.Option(help="list findings down to this confidence (count/grade unchanged)")
    ] = None,
    skip_quality_gate: Annotated[bool, typer.Option(help="analyse even photos the gate rejects")] = False,
    model: Annotated[Path | None, typer.Option(help="model folder (default: the shipped model)")] = None,
) -> None:
    """Analyse photos with the quality gate and the detector."""
    from detector.onnx_runtime import Detector
    from pipelines.cases.analysis import analyze_jpeg, outcome_to_dict, thresholds_from
    from pipelines.cases.routing import RoutingPolicy

    settings = get_settings()
    detector = Detector.load(model or settings.model_dir, settings.model_cache_dir, threads=settings.detector_threads)
    for path, photo in _uploads(images, as_json):
        outcome = analyze_jpeg(
            photo.jpeg,
            photo_size=(photo.width, photo.height),
            case_id=str(path),
            detector=detector,
            thresholds=thresholds_from(settings),
            policy=RoutingPolicy.from_settings(settings),
            skip_quality_gate=skip_quality_gate,
            embedding_check=settings.embedding_ood_check,
            conf=conf,
        )
        line = {"image": str(path), **outcome_to_dict(outcome)}
        if outcome.rejected:
            line["model_version"] = detector.version
        if as_json:
            typer.echo(json.dumps(line))
        elif outcome.rejected:
            typer.echo(f"{path}: rejected ({', '.join(outcome.quality.retake_codes)})")
        else:
            sev = line["severity"]
            typer.echo(f"{path}: {line['lesion_count']} lesions, grade {sev['grade']} ({sev['label']})")


def register(app: typer.Typer) -> None:
    app.command("check-quality")(check_quality)
    app.command()(predict)
