"""The one selection/report split of a labelled folder, by source photo.

Every choice (thresholds, bands, grader weights, scale references, gate thresholds, checkpoints) is made on
the *selection* part; figures that a note or a card reports come from the *report* part, which no choice saw.
The split is a pure function of file names, so every process, script and test draws the same line.

ACNE04 exports carry the source photo in the name (`levle2_102_jpg.rf.<hash>.jpg` comes from `levle2_102`):
photos of one source always land on the same side. Within each grade the sources are ordered by a hash and
alternated, so both parts hold every grade in the same proportion.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

Part = Literal["selection", "report"]
PARTS: tuple[Part, ...] = ("selection", "report")
_EXPORT_SUFFIX = re.compile(r"_(jpe?g|png|heic|webp)\.rf\.[0-9a-f]+$", re.IGNORECASE)
_GRADE = re.compile(r"^levle(\d)_", re.IGNORECASE)
_SALT = b"skintrouble-split-v1"

T = TypeVar("T", str, Path)


def source_id(name: str | Path) -> str:
    """The source photo a file was exported from: the stem without the export's `_jpg.rf.<hash>` tail."""
    stem = Path(name).stem
    return _EXPORT_SUFFIX.sub("", stem).lower()


def _stratum(source: str) -> str:
    match = _GRADE.match(source)
    return match.group(1) if match else "-"


def _rank(source: str) -> str:
    return hashlib.sha256(_SALT + source.encode()).hexdigest()


def part_of_sources(sources: Iterable[str]) -> dict[str, Part]:
    """Assign each source to a part: within each grade, hash order, alternating (selection first)."""
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for source in sorted(set(sources)):
        by_stratum[_stratum(source)].append(source)
    parts: dict[str, Part] = {}
    for members in by_stratum.values():
        for index, source in enumerate(sorted(members, key=_rank)):
            parts[source] = PARTS[index % 2]
    return parts


def split_names(names: Iterable[T]) -> dict[Part, list[T]]:
    """Split file names (or paths) into the selection and report parts, keeping the input order."""
    items = list(names)
    parts = part_of_sources(source_id(n) for n in items)
    out: dict[Part, list[T]] = {"selection": [], "report": []}
    for item in items:
        out[parts[source_id(item)]].append(item)
    return out


def select_part(names: Iterable[T], part: Part | None) -> list[T]:
    """The names in one part; `None` keeps them all."""
    items = list(names)
    return items if part is None else split_names(items)[part]
