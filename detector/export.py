"""Export a YOLO `.pt` to ONNX once and cache it, without torch in the calling process.

`ensure_onnx` is what serving calls: it returns a cached file keyed by the checkpoint's sha256,
the export size and the Ultralytics version, and only when that file is missing does it run
`python -m detector.export` in a subprocess (the only place torch/ultralytics get imported).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from detector.datasets.snapshot import sha256_of

ONNX_OPSET = 17  # supported by every onnxruntime >= 1.14 and by the torch exporter we pin
EXPORT_TIMEOUT_S = 900
EMBEDDING_OUTPUT = "embedding"
# Pooled maps: the SPPF output (end of the backbone, stride 32, image-level content) and the P3 neck map
# (stride 8, the scale of most lesions). Names are those the Ultralytics exporter gives YOLOv8 layers.
EMBEDDING_SOURCES: tuple[str, ...] = ("/model.9/cv2/act/Mul_output_0", "/model.15/cv2/act/Mul_output_0")
EXPORT_FORMAT = "emb1"  # part of the cache key: exports made before the embedding output are not reused as such


def ultralytics_version() -> str:
    """Read from package metadata: importing ultralytics would import torch."""
    try:
        return metadata.version("ultralytics")
    except metadata.PackageNotFoundError:
        return "none"


def cached_onnx_path(weights: Path, cache_dir: Path, imgsz: int) -> Path:
    """Where the export of these exact weights at this size by this Ultralytics version lives."""
    key = f"{sha256_of(weights)[:16]}-{imgsz}-ul{ultralytics_version()}"
    return Path(cache_dir) / f"{Path(weights).stem}-{key}-{EXPORT_FORMAT}.onnx"


def _legacy_onnx_path(target: Path) -> Path:
    """The cache name of the same export before the embedding output existed."""
    return target.with_name(target.name.replace(f"-{EXPORT_FORMAT}.onnx", ".onnx"))


def ensure_onnx(weights: Path, cache_dir: Path, imgsz: int) -> Path:
    """Return the cached ONNX export of `weights`, exporting in a subprocess the first time."""
    weights = Path(weights).resolve()
    if not weights.is_file():
        raise FileNotFoundError(f"weights not found: {weights}")
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cached_onnx_path(weights, cache_dir, imgsz)
    if target.is_file():
        return target
    # Two workers starting together must not both export (or read a half-written file).
    with (cache_dir / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            legacy = _legacy_onnx_path(target)
            if legacy.is_file():  # same network, exported before: add the output instead of exporting again
                partial = target.with_suffix(".onnx.partial")
                add_embedding_output(legacy, partial)
                os.replace(partial, target)
            else:
                _export_in_subprocess(weights, target, imgsz)
    return target


def _export_in_subprocess(weights: Path, target: Path, imgsz: int) -> None:
    repo_root = Path(__file__).resolve().parents[1]
    python_path = os.pathsep.join(filter(None, [str(repo_root), os.getenv("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    command = [
        sys.executable,
        "-m",
        "detector.export",
        "--weights",
        str(weights),
        "--output",
        str(target),
        "--imgsz",
        str(imgsz),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False)
    if result.returncode != 0 or not target.is_file():
        log = f"{result.stdout[-2000:]}{result.stderr[-4000:]}"
        raise RuntimeError(f"ONNX export of {weights.name} failed:\n{log}")


def export_onnx(weights: Path, output: Path, imgsz: int) -> Path:
    """Export with a dynamic batch/height/width input so one file serves any tile size.

    Runs in a scratch folder because Ultralytics writes the .onnx next to the .pt it loads,
    and the weights folder is part of the repository.
    """
    from detector.ultralytics_offline import configure_offline

    output = Path(output).resolve()
    configure_offline(output.parent / "ultralytics-settings")
    from ultralytics import YOLO  # lazy: only the export subprocess pays for torch

    with tempfile.TemporaryDirectory(prefix="onnx-export-", dir=output.parent) as scratch:
        local_pt = Path(scratch) / Path(weights).name
        shutil.copy2(weights, local_pt)
        exported = YOLO(str(local_pt), task="detect").export(
            format="onnx", imgsz=imgsz, dynamic=True, simplify=True, opset=ONNX_OPSET, device="cpu"
        )
        partial = output.with_suffix(".onnx.partial")
        add_embedding_output(Path(exported), partial)
        os.replace(partial, output)  # atomic: readers never see a half-written model
    return output


def add_embedding_output(
    source: Path, target: Path | None = None, sources: tuple[str, ...] = EMBEDDING_SOURCES
) -> Path:
    """Append a graph output `embedding` (batch x C): global-average-pooled backbone/neck maps, concatenated.

    Graph surgery, not a re-export: the nodes that compute `output0` are untouched (the new ones only read
    existing tensors), so detections stay bit-identical, and an old export gains the output without torch.
    The embedding feeds the grader's linear probe and the out-of-distribution check (issues 11 and 12).
    A model that already has the output is written unchanged; a graph without the source tensors is refused.
    """
    import onnx
    from onnx import TensorProto, helper

    source = Path(source)
    target = source if target is None else Path(target)
    model = onnx.load(str(source))
    graph = model.graph
    if any(o.name == EMBEDDING_OUTPUT for o in graph.output):
        if target != source:
            onnx.save(model, str(target))
        return target
    produced = {name for node in graph.node for name in node.output}
    missing = [name for name in sources if name not in produced]
    if missing:
        raise ValueError(f"{source.name}: no tensor {missing} to pool an embedding from")
    pooled: list[str] = []
    for index, name in enumerate(sources):
        gap, flat = f"/embedding/gap{index}", f"/embedding/flat{index}"
        graph.node.append(helper.make_node("GlobalAveragePool", [name], [f"{gap}_output"], name=gap))
        graph.node.append(helper.make_node("Flatten", [f"{gap}_output"], [f"{flat}_output"], name=flat, axis=1))
        pooled.append(f"{flat}_output")
    graph.node.append(helper.make_node("Concat", pooled, [EMBEDDING_OUTPUT], name="/embedding/concat", axis=1))
    graph.output.append(helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT, ["batch", None]))
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument(
        "--add-embedding", type=Path, metavar="ONNX", help="add the embedding output to an existing export, in place"
    )
    args = parser.parse_args(argv)
    if args.add_embedding is not None:
        print(add_embedding_output(args.add_embedding))
        return 0
    if args.weights is None or args.output is None:
        parser.error("--weights and --output are required to export")
    print(export_onnx(args.weights, args.output, args.imgsz))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
