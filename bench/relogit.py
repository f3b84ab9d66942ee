"""A measures cache with one network's logit from another graph (a candidate), every other measure kept.

    .venv/bin/python bench/relogit.py --measure lighting_logit --measures var/gate/m-valid.json --graph cand.onnx \
        --out var/gate/m-valid-cand.json
    .venv/bin/python bench/relogit.py --measure content_logit --measures var/gate/m-valid.json --check   # shipped

Each cached row's image is made again exactly as `bench/gate_measure.py` made it (`gate_measure.set_images`, in the
cache's order: a row whose set, part, photo or kind differs stops the run) and put through the gate's serving path
for that network (`policy.trimmed`, the half-size working copy, the network's `model_input`; the lighting network is
read only on photos with skin, as `policy.image_measures` reads it). What the gate would say with a candidate
network, in minutes instead of a new measuring run (3.5 min for the valid grid here against 7-15). With the shipped
graph, `--check` must give every cached logit back (to 1e-4), else the cache was measured with other code.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from quality_gate import content_cnn, lighting_cnn
from quality_gate.measures import working_copies
from quality_gate.onnx_models import onnx_session
from quality_gate.policy import Thresholds, trimmed

GRAPHS = {"content_logit": content_cnn.MODEL_PATH, "lighting_logit": lighting_cnn.MODEL_PATH}  # the shipped ones


def served_half(image: np.ndarray) -> np.ndarray:
    """The half-size working copy of the photo inside any uniform frame: what the gate's networks read
    (`policy.image_measures`)."""
    t = Thresholds()
    _, half = working_copies(trimmed(image, t), t.analysis_side)
    return half


def network_input(measure: str, graph: Path, half: np.ndarray) -> np.ndarray:
    """(1, planes, side, side): `graph`'s input for the network that gives `measure`, as the gate makes it (a lighting
    graph with four input planes reads the log-light plane too)."""
    if measure == "content_logit":
        return content_cnn.model_input(half)
    return lighting_cnn.model_input(half, log_light=onnx_session(graph).get_inputs()[0].shape[1] == 4)


def graph_logits(graph: Path, inputs: np.ndarray) -> np.ndarray:
    """The logits of an exported graph (the shipped one or a candidate) on a stack of model inputs, one run each, as
    the gate runs it."""
    session = onnx_session(graph)
    name = session.get_inputs()[0].name
    return np.array([float(np.asarray(session.run(None, {name: x[None]})[0]).ravel()[0]) for x in inputs])


def read(measure: str, graph: Path, image: np.ndarray, measures: dict[str, float]) -> float:
    """`measure` of `image` through `graph`; the lighting network's 0.0 where the gate does not read it (no skin)."""
    if measure == "lighting_logit" and measures["skin_fraction"] < Thresholds().min_skin_fraction:
        return 0.0
    return float(graph_logits(graph, network_input(measure, graph, served_half(image)))[0])


def relogit_rows(rows: list[dict], measure: str, graph: Path) -> float:
    """Replace `measure` in every row (in place) by `graph`'s; returns the largest change (inf when a row had none)."""
    from bench.gate_measure import set_images

    sets = list(dict.fromkeys(r["set"] for r in rows))
    images = (image_row for set_ in sets for image_row in set_images(set_))
    worst = 0.0
    for r, image_row in zip(rows, images, strict=True):  # `strict`: a cache of other sets or photos stops here
        if (r["set"], r["part"], r["photo"], r["kind"]) != image_row[:4]:
            raise SystemExit(f"the cache does not hold what gate_measure makes now: {image_row[:4]} vs {r}")
        logit = read(measure, graph, image_row[5], r["measures"])
        worst = max(worst, abs(logit - r["measures"].get(measure, math.inf)))  # none cached: no match
        r["measures"][measure] = logit
    return worst


def relogit(measures: Path, measure: str, graph: Path, out: Path | None, check: bool) -> None:
    rows = json.loads(measures.read_text())
    worst = relogit_rows(rows, measure, graph)
    sets = ", ".join(dict.fromkeys(r["set"] for r in rows))
    print(f"{len(rows)} rows of {sets}: largest change of {measure} {worst:.2e} ({graph.name})")
    if check and not worst <= 1e-4:
        raise SystemExit("the cache and the graph disagree: it was measured with another network or other code")
    if out:
        out.write_text(json.dumps(rows))
        print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measure", choices=sorted(GRAPHS), required=True)
    parser.add_argument("--measures", type=Path, required=True, help="a cache of valid, holdout, nonskin or real rows")
    parser.add_argument("--graph", type=Path, help="default: the shipped graph of that network")
    parser.add_argument("--out", type=Path, help="the cache with the graph's logits (none: only compare)")
    parser.add_argument("--check", action="store_true", help="fail unless the graph gives the cache's logits back")
    args = parser.parse_args()
    relogit(args.measures, args.measure, args.graph or GRAPHS[args.measure], args.out, args.check)


if __name__ == "__main__":
    main()
