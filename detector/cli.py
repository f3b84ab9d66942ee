"""Typer commands for datasets, training and evaluation; `register(app)` adds them to the main CLI.

Thin: parse arguments, show progress, print figures; the work is in `detector.datasets`,
`detector.training`, `detector.evaluation` and `detector.calibration`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

DEFAULT_CACHE = Path("var") / "cache" / "models"  # like every default path, under the working folder (the repo root)

console = Console(stderr=True)
dataset_app = typer.Typer(help="Import labelled photos into immutable snapshots; inspect them.", no_args_is_help=True)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar for long CLI and bench work; the yielded `update(done, total)` moves it."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@dataset_app.command("import")
def import_command(
    src: Annotated[Path, typer.Argument(exists=True, help="Dataset folder or annotation file")],
    out: Annotated[Path, typer.Option("--out", help="Root folder of snapshots")],
    fmt: Annotated[str, typer.Option("--format", help="yolo | voc | coco | labelstudio")] = "yolo",
    split: Annotated[str, typer.Option(help="train | valid | auto (keep the source's split, else hash)")] = "auto",
    name: Annotated[str | None, typer.Option(help="Snapshot name (default: source folder name)")] = None,
) -> None:
    """Import a labelled dataset into `<out>/<name>-<digest12>/`."""
    from detector.datasets import build_snapshot, read_dataset

    if split not in {"train", "valid", "auto"}:
        raise typer.BadParameter("split must be train, valid or auto", param_hint="--split")
    dataset = read_dataset(fmt, src)
    snapshot_name = name or (src if src.is_dir() else src.parent).resolve().name or "dataset"
    with progress_bar(f"importing {len(dataset.samples)} images") as update:
        snap = build_snapshot(
            dataset.samples,
            class_names=dataset.class_names,
            root=out,
            name=snapshot_name,
            source=dataset.source,
            split=split,  # type: ignore[arg-type]
            exist_ok=True,
            progress=update,
        )
    counts = snap.manifest["counts"]
    console.print(
        f"snapshot [bold]{snap.path}[/] digest {snap.digest[:12]} train={counts['train']} valid={counts['valid']}"
    )
    typer.echo(str(snap.path))


@dataset_app.command("stats")
def stats_command(snapshot: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """Class counts, boxes per image, box-size histogram; saves `<snapshot>.stats.png` beside it."""
    from detector.datasets.snapshot import load_snapshot
    from detector.datasets.stats import compute_stats, save_histogram, stats_png_path

    snap = load_snapshot(snapshot)
    stats = compute_stats(snap)
    table = Table(title=f"{snap.path.name}: {sum(stats.images.values())} images {stats.images}")
    table.add_column("class")
    table.add_column("boxes", justify="right")
    for label, count in stats.class_counts.items():
        table.add_row(label, str(count))
    console.print(table)
    bpi = stats.boxes_per_image
    console.print(
        f"boxes per image: mean {bpi['mean']:.1f}, median {bpi['median']:.0f}, max {bpi['max']:.0f}, "
        f"empty images {bpi['empty_images']}"
    )
    sizes = Table(title="box side sqrt(w*h) [px]")
    sizes.add_column("bin")
    sizes.add_column("boxes", justify="right")
    for label, count in stats.size_histogram.items():
        sizes.add_row(label, str(count))
    console.print(sizes)
    png = save_histogram(stats, stats_png_path(snap), title=snap.path.name)
    console.print(f"histogram saved to {png}")


def _parse_extra(pairs: list[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        try:
            extra[key] = json.loads(raw)
        except ValueError:
            extra[key] = raw
    return extra


def train_command(
    snapshot: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Dataset snapshot")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (weights, recipe.json)")],
    from_checkpoint: Annotated[Path | None, typer.Option("--from", help="Checkpoint to fine-tune")] = None,
    epochs: int = 50,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
    workers: int = 2,
    extra: Annotated[list[str] | None, typer.Option("--set", help="Ultralytics override, key=value")] = None,
) -> None:
    """Train or fine-tune the detector on a snapshot (offline; small-lesion recipe)."""
    from detector.training import train

    def show(row: dict[str, Any]) -> None:
        shown = {k: round(v, 4) for k, v in row.items() if k != "epoch" and isinstance(v, float)}
        console.print(f"epoch {row['epoch']}/{epochs} {shown}")

    result = train(
        snapshot,
        from_checkpoint=from_checkpoint,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        workers=workers,
        out_dir=out,
        extra=_parse_extra(extra or []),
        on_epoch=show,
    )
    console.print(f"best weights: {result.best_weights}")
    typer.echo(str(result.best_weights))


def evaluate_command(
    data: Annotated[Path, typer.Option("--data", exists=True, help="Snapshot or YOLO folder")],
    model: Annotated[Path, typer.Option("--model", exists=True, file_okay=False, help="Folder with model.json")],
    split: Annotated[str, typer.Option(help="Split to evaluate; ignored for a YOLO folder without splits")] = "valid",
    out: Annotated[Path | None, typer.Option("--out", help="Report folder")] = None,
    cache: Annotated[Path, typer.Option(help="ONNX export cache")] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads")] = None,
    calibrate: Annotated[bool, typer.Option(help="Fit operating threshold + grade bands on this split")] = False,
    write_card: Annotated[
        bool, typer.Option(help="With --calibrate or --refit-grader: store the result in the model folder")
    ] = False,
    refit_grader: Annotated[
        bool,
        typer.Option(help="Fit bands + grader on the split's selection part, report on its report part"),
    ] = False,
    evidence: Annotated[
        Path | None, typer.Option(help="With --refit-grader: .npz cache of the serving calls (reused if present)")
    ] = None,
    train_evidence: Annotated[
        Path | None,
        typer.Option(
            help="With --refit-grader: .npz cache of serving calls on the train split (made if absent, every"
            " --train-every-th photo); fits the embedding OOD statistics stored with the model"
        ),
    ] = None,
    train_every: Annotated[int, typer.Option(help="With --train-evidence: serve every n-th train photo")] = 2,
) -> None:
    """Evaluate a model through the serving path: mAP, small-lesion recall, count MAE, grade accuracy."""
    import time

    import numpy as np

    from detector import calibration
    from detector.evaluation import evaluate_and_report, load_labelled_images
    from detector.onnx_runtime import Detector

    detector = Detector.load(model, cache, threads=threads)
    if refit_grader:
        train = None if train_evidence is None else _train_records(detector, data, train_evidence, train_every)
        _refit_grader(detector, model, data, split, out, evidence, write_card, train)
        return
    images, _ = load_labelled_images(data, split)
    if not images:
        raise typer.BadParameter(f"no images in {data} for split {split!r}", param_hint="--data")
    started = time.process_time()
    with progress_bar(f"evaluating {len(images)} photos") as update:
        result = evaluate_and_report(
            detector,
            images,
            class_names=detector.card.class_names,
            operating_conf=detector.card.operating_conf,
            out=out,
            progress=update,
            served_counts=detector.card.tta_flip,
        )
    summary = result.summary
    summary["cpu_s_per_photo"] = round((time.process_time() - started) / len(images), 3)
    summary["model_version"] = detector.version
    graded = [r for r in result.records if r["grade"] is not None]
    if calibrate and graded:
        scores = [np.asarray(r["scores"]) for r in graded]
        labelled = [r["labelled"] for r in graded]
        grades = [r["grade"] for r in graded]
        if detector.card.tta_flip:
            # Fused scores depend on the threshold the passes ran at, so a cut of the low-threshold
            # scores would not be what is served: fit the bands on the served counts, threshold kept.
            served = {detector.card.operating_conf: np.asarray([r["count"] for r in graded])}
            cal = calibration.calibrate_counts(served, labelled, grades)
            summary["calibration"] = {**cal.to_dict(), "threshold_searched": False}
        else:
            cal = calibration.calibrate(scores, labelled, grades)
            summary["calibration"] = {
                **cal.to_dict(),
                "threshold_searched": True,
                "cv5_grade_accuracy": calibration.cross_validated_accuracy(scores, labelled, grades),
            }
        if write_card:
            metrics = {f"{split}_mAP50": round(summary["mAP50"], 4), f"{split}_mAP50_95": round(summary["mAP50_95"], 4)}
            metrics[f"{split}_grade_accuracy"] = round(cal.grade_accuracy, 4)
            calibration.apply_to_card(model, cal, metrics)
            console.print(
                f"model.json updated: operating_conf={cal.operating_conf} grade_bands={list(cal.grade_bands)}"
            )
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {out}")
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "grade_confusion"}, indent=2))


def _train_records(detector: Any, data: Path, path: Path, every: int) -> list[Any]:
    """Serving calls on the train photos (cached in `path`): the embedding statistics' fitting photos."""
    from detector import grader_fit
    from detector.evaluation import load_labelled_images

    if path.is_file():
        records, meta = grader_fit.load_records(path)
        if meta.get("serving") != grader_fit.serving_fingerprint(detector.card):
            raise typer.BadParameter(f"{path} was made with other serving settings", param_hint="--train-evidence")
        console.print(f"train evidence read from {path} ({len(records)} photos)")
        return records
    images, _ = load_labelled_images(data, "train")
    images = sorted(images, key=lambda item: item.path.name)[::every]
    with progress_bar(f"serving calls on {len(images)} train photos") as update:
        records = grader_fit.collect(detector, images, update)
    meta = {"serving": grader_fit.serving_fingerprint(detector.card), "split": "train", "every": every}
    grader_fit.save_records(records, path, meta)
    return records


def _refit_grader(
    detector: Any,
    model: Path,
    data: Path,
    split: str,
    out: Path | None,
    evidence: Path | None,
    write: bool,
    train: list[Any] | None = None,
) -> None:
    """`evaluate --refit-grader`: one serving call per photo (cached), bands + grader on the selection part,
    figures on both parts, each printed with the protocol that produced it."""
    from detector import grader_fit
    from detector.evaluation import load_labelled_images

    if evidence is not None and evidence.is_file():
        records, meta = grader_fit.load_records(evidence)
        if meta.get("serving") != grader_fit.serving_fingerprint(detector.card):
            raise typer.BadParameter(
                f"{evidence} was made with other serving settings ({meta.get('serving', {}).get('version')}):"
                " delete it or name a new file",
                param_hint="--evidence",
            )
        console.print(f"evidence read from {evidence} ({len(records)} photos)")
    else:
        images, _ = load_labelled_images(data, split)
        if not images:
            raise typer.BadParameter(f"no images in {data} for split {split!r}", param_hint="--data")
        with progress_bar(f"serving calls on {len(images)} photos") as update:
            records = grader_fit.collect(detector, images, update)
        if evidence is not None:
            meta = {"serving": grader_fit.serving_fingerprint(detector.card), "split": split}
            grader_fit.save_records(records, evidence, meta)
    result = grader_fit.refit(records, detector.card, out, train_records=train)
    summary = result.summary
    for part in ("selection", "report"):
        console.print(f"[bold]{part}[/]: {summary['protocols'][part]}, {summary['photos'][part]} photos")
    if write:
        card = grader_fit.write_to_model(model, result)
        console.print(
            f"{model}: grader={card.grader} grade_bands={list(card.grade_bands)} embedding_ood={card.embedding_ood}"
        )
    if out is not None:
        console.print(f"report written to {out}")
    typer.echo(json.dumps(summary, indent=2))


def register(app: typer.Typer) -> None:
    """Add `dataset import|stats`, `train` and `evaluate` to the main CLI."""
    app.add_typer(dataset_app, name="dataset")
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
