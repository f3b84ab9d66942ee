"""The detector's embedding (issues 11 and 12): the ONNX surgery that adds it, the grader's linear probe on it,
the out-of-distribution statistics stored with the model, and the pipeline's refusal of a far photo."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from detector.embedding import EmbeddingOod, fit_ood, ledoit_wolf
from detector.export import EMBEDDING_OUTPUT, add_embedding_output
from detector.grader import Evidence, Grader, fit_grader, fit_probe_basis, probe_features
from detector.model_card import ModelCard
from detector.onnx_runtime import Detector
from tests.unit.test_detector_inference import FakeSession
from tests.unit.test_grader import LEVELS, OP, evidence, synthetic_set

SOURCES = ("/model.9/cv2/act/Mul_output_0", "/model.15/cv2/act/Mul_output_0")


def tiny_yolo_like(path: Path) -> Path:
    """A 2-conv graph whose intermediate tensors carry the names the Ultralytics export gives YOLOv8 layers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(5, 4, 3, 3)).astype(np.float32), "w2")
    shape = numpy_helper.from_array(np.array([0, 5, -1], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c1"], ["s1"]),
        helper.make_node("Mul", ["c1", "s1"], [SOURCES[0]]),
        helper.make_node("Conv", [SOURCES[0], "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c2"], ["s2"]),
        helper.make_node("Mul", ["c2", "s2"], [SOURCES[1]]),
        helper.make_node("Reshape", [SOURCES[1], "shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 5, None])],
        initializer=[w1, w2, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _session(path: Path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def test_the_surgery_adds_a_pooled_embedding_and_leaves_the_detections_bit_identical(tmp_path: Path) -> None:
    before = tiny_yolo_like(tmp_path / "tiny.onnx")
    after = add_embedding_output(before, tmp_path / "tiny-emb.onnx")
    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 32, 48)).astype(np.float32)
    old = _session(before).run(None, {"images": x})
    new_session = _session(after)
    assert [o.name for o in new_session.get_outputs()] == ["output0", EMBEDDING_OUTPUT]
    detections, embedding = new_session.run(None, {"images": x})
    assert len(old) == 1 and np.array_equal(old[0], detections)
    assert embedding.shape == (2, 4 + 5)
    import onnx

    # the pooled maps, read back by name: the embedding is their spatial mean
    model = onnx.load(str(before))
    for name in SOURCES:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(tmp_path / "maps.onnx"))
    maps = _session(tmp_path / "maps.onnx")
    _, m9, m15 = maps.run(None, {"images": x})
    expected = np.concatenate([m9.mean(axis=(2, 3)), m15.mean(axis=(2, 3))], axis=1)
    assert np.allclose(embedding, expected, atol=1e-5)
    # applying it again changes nothing; a graph without the source tensors is refused
    assert add_embedding_output(after) == after and len(_session(after).get_outputs()) == 2
    with pytest.raises(ValueError, match="no tensor"):
        add_embedding_output(before, tmp_path / "x.onnx", sources=("/model.99/missing",))


class EmbeddingSession(FakeSession):
    """The fake detector session with an embedding output that depends on the input (its mean brightness)."""

    def run(self, names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = super().run(names, feed)
        batch = next(iter(feed.values()))
        level = batch.mean(axis=(1, 2, 3))[:, None]
        return [*out, np.hstack([level, 2 * level, np.ones_like(level)]).astype(np.float32)]


def _card(**extra: object) -> ModelCard:
    base = {"version": "fake-1", "weights": "none.pt", "class_names": ["lesion"], "operating_conf": 0.25}
    return ModelCard(**{**base, **extra})  # type: ignore[arg-type]


def test_predict_puts_the_embedding_in_the_evidence_and_the_distance_in_extras() -> None:
    ood = EmbeddingOod(np.zeros(3), np.eye(3), limit=2.0)
    image = np.full((640, 640, 3), 51, np.uint8)  # 0.2 after scaling
    detection = Detector(_card(), EmbeddingSession((100.0, 120.0, 20.0, 20.0), 0.9), ood=ood).predict(image)
    embedding = detection.evidence.embedding
    assert embedding is not None and np.allclose(embedding, [0.2, 0.4, 1.0], atol=1e-3)
    assert detection.extras["embedding_distance"] == pytest.approx(np.sqrt(0.04 + 0.16 + 1.0), abs=1e-3)
    assert detection.extras["embedding_limit"] == 2.0
    # an export made before the output: no embedding, no distance, the same findings
    plain = Detector(_card(), FakeSession((100.0, 120.0, 20.0, 20.0), 0.9), ood=ood).predict(image)
    assert plain.evidence.embedding is None and plain.extras["embedding_distance"] is None
    assert plain.findings == detection.findings


def _probe_grader() -> tuple[Grader, list[Evidence]]:
    x, grades, counts = synthetic_set(120)
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(len(grades), 6)) + grades[:, None] * np.array([1.0, 0, 0, 0, 0, 0.5])
    probe = fit_probe_basis(embeddings, 2)
    xp = np.hstack([x, np.vstack([probe_features(e, *probe) for e in embeddings])])
    grader = fit_grader(xp, grades, counts, operating_conf=OP, levels=LEVELS, l2_grid=(0.1,), probe=probe).grader
    photos = [replace(evidence(10 * g + 2, seed=i), embedding=embeddings[i]) for i, g in enumerate(grades[:8])]
    return grader, photos


def test_probe_features_are_deterministic_and_probabilities_sum_to_one(tmp_path: Path) -> None:
    grader, photos = _probe_grader()
    assert grader.has_probe and grader.feature_names[-2:] == ["probe_0", "probe_1"]
    again, _ = _probe_grader()
    assert again == grader  # the same photos give the same probe and the same grader
    for ev in photos:
        assert np.array_equal(grader.features(ev), grader.features(ev))
        estimate = grader.estimate(ev)
        assert sum(estimate.probabilities) == pytest.approx(1.0, abs=1e-3)
    grader.save(tmp_path)
    assert Grader.load(tmp_path) == grader


def test_without_an_embedding_the_probe_moves_nothing_and_old_graders_still_load() -> None:
    grader, photos = _probe_grader()
    d = len(grader.feature_names)
    silent = replace(grader, weights=[*grader.weights[: d - 2], 0.0, 0.0])
    for ev in photos:
        bare = replace(ev, embedding=None)
        assert np.allclose(grader.predict_proba(grader.features(bare)), silent.predict_proba(silent.features(ev)))
    old = grader.to_dict()
    for key in ("probe_mean", "probe_components"):
        old.pop(key)
    old |= {"format": 1, "feature_names": grader.feature_names[:-2]}
    for key in ("mean", "scale", "weights", "count_weights"):
        old[key] = old[key][:-2]
    legacy = Grader.from_dict(old)
    assert not legacy.has_probe and sum(legacy.estimate(photos[0]).probabilities) == pytest.approx(1.0, abs=1e-3)


def test_ledoit_wolf_matches_sklearn_and_the_statistics_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 20)) @ rng.normal(size=(20, 20))
    cov, shrinkage = ledoit_wolf(train)
    sklearn = pytest.importorskip("sklearn.covariance")
    reference = sklearn.LedoitWolf().fit(train)
    assert shrinkage == pytest.approx(reference.shrinkage_, rel=1e-6)
    assert np.allclose(cov, reference.covariance_)
    selection = rng.normal(size=(40, 20)) @ rng.normal(size=(20, 20))
    ood = fit_ood(train, selection, fitted_on={"model_version": "fake-1"})
    assert not (ood.distances(selection) > ood.limit).any()  # the 0.995 quantile refuses none of 40
    ood.save(tmp_path)
    back = EmbeddingOod.load(tmp_path)
    assert back.limit == ood.limit and back.fitted_on == ood.fitted_on
    assert np.allclose(back.distances(selection), ood.distances(selection), rtol=1e-4)
    far = train.mean(axis=0) + 50 * train.std(axis=0)
    assert back.is_out(far) and not back.is_out(train.mean(axis=0))


def test_a_far_embedding_is_refused_by_the_pipeline_like_a_gate_refusal() -> None:
    from pipelines.cases.analysis import analyze
    from pipelines.cases.photos import Pixels
    from quality_gate import Thresholds
    from quality_gate.policy import RETAKE_CODES
    from tests.conftest import routing_policy, skin_photo

    rgb = skin_photo(640, 640, seed=3)
    pixels = Pixels(rgb=rgb, scale=(1.0, 1.0))
    session = EmbeddingSession((100.0, 120.0, 20.0, 20.0), 0.9)
    options = {
        "photo_size": (640, 640),
        "case_id": "c",
        "thresholds": Thresholds(),
        "policy": routing_policy(),
        "embedding_check": True,
    }
    near = Detector(_card(), session, ood=EmbeddingOod(np.zeros(3), np.eye(3), limit=100.0))
    accepted = analyze(pixels, detector=near, **options)  # type: ignore[arg-type]
    assert not accepted.rejected and accepted.quality.accepted
    far = Detector(_card(), session, ood=EmbeddingOod(np.full(3, 40.0), np.eye(3), limit=5.0))
    refused = analyze(pixels, detector=far, **options)  # type: ignore[arg-type]
    assert refused.rejected and refused.detection is None and not refused.quality.accepted
    assert refused.quality.retake_codes == ["not_skin_photo"]
    assert refused.quality.hints == [RETAKE_CODES["not_skin_photo"]]
    assert refused.quality.measures["embedding_distance"] > refused.quality.measures["embedding_limit"] == 5.0


def test_a_train_fitted_probe_in_the_grade_head_only_leaves_the_count_head_alone() -> None:
    from detector.grader import fit_probe_map

    x, grades, counts = synthetic_set(120)
    rng = np.random.default_rng(4)
    embeddings = rng.normal(size=(len(grades), 6)) + np.log1p(counts)[:, None] * np.array([1.0, 0, 0, 0, 0, 0.3])
    probe = fit_probe_map(embeddings, np.log1p(counts), 0.1)
    assert probe[1].shape == (1, 6) and np.array_equal(probe[1], fit_probe_map(embeddings, np.log1p(counts), 0.1)[1])
    xp = np.hstack([x, np.vstack([probe_features(e, *probe) for e in embeddings])])
    common = {"operating_conf": OP, "levels": LEVELS, "l2_grid": (0.1,), "probe": probe}
    grade_only = fit_grader(xp, grades, counts, count_probe=False, **common).grader  # type: ignore[arg-type]
    assert grade_only.count_weights[-1] == 0.0 and grade_only.weights[-1] != 0.0
    plain = fit_grader(x, grades, counts, operating_conf=OP, levels=LEVELS, l2_grid=(0.1,)).grader
    assert np.allclose(grade_only.count_weights[:-1], plain.count_weights)


def test_refit_with_train_photos_stores_the_probe_and_the_ood_statistics_with_the_model(tmp_path: Path) -> None:
    from detector.embedding import OOD_FILE
    from detector.grader_fit import PhotoRecord, refit, write_to_model
    from detector.grading import grade_from_count

    rng = np.random.default_rng(6)

    def records(n: int, prefix: str) -> list[PhotoRecord]:
        out = []
        for i in range(n):
            true = int(np.exp(rng.uniform(0, np.log(90))))
            grade = grade_from_count(true, (5, 20, 50)).grade
            ev = replace(evidence(int(rng.binomial(true, 0.7)), seed=i), embedding=rng.normal(size=8) + np.log1p(true))
            name = f"levle{grade}_{prefix}{i}_jpg.rf.{i:04x}.jpg"
            count = int(np.count_nonzero(ev.scores >= OP))
            out.append(PhotoRecord(name, grade, true, count, ev, ev.boxes, ev.scores, ev.boxes[:0]))
        return out

    model = tmp_path / "model"
    model.mkdir()
    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=OP, tta_flip=True)
    card.save(model)
    result = refit(records(120, "v"), card, None, cross_validate=False, train_records=records(80, "t"))
    assert result.grader.has_probe and result.ood is not None
    figures = result.summary["embedding OOD (limit chosen on selection)"]
    assert figures["selection_refused"] == 0 and figures["train_photos"] == 80
    stored = write_to_model(model, result)
    assert stored.embedding_ood == OOD_FILE and EmbeddingOod.load(model / OOD_FILE).limit == result.ood.limit
    assert Grader.load(model) == result.grader
