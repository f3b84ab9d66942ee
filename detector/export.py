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


def ultralytics_version() -> str:
    """Read from package metadata: importing ultralytics would import torch."""
    try:
        return metadata.version("ultralytics")
    except metadata.PackageNotFoundError:
        return "none"


def cached_onnx_path(weights: Path, cache_dir: Path, imgsz: int) -> Path:
    """Where the export of these exact weights at this size by this Ultralytics version lives."""
    key = f"{sha256_of(weights)[:16]}-{imgsz}-ul{ultralytics_version()}"
    return Path(cache_dir) / f"{Path(weights).stem}-{key}.onnx"


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
        shutil.move(str(exported), partial)
        os.replace(partial, output)  # atomic: readers never see a half-written model
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args(argv)
    print(export_onnx(args.weights, args.output, args.imgsz))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
