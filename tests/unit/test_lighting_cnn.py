"""The gate's lighting CNN (quality_gate/lighting_cnn.py): its input, the shipped network's view of light on
code-made skin, the gate's use of it, and the training script's parts (bench/lighting_cnn.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import gate_data as gd
from bench import lighting_cnn as train
from quality_gate import lighting_cnn
from quality_gate.measures import working_copies
from quality_gate.policy import Thresholds, assess
from tests.conftest import skin_photo


def served(image: np.ndarray) -> float:
    """The logit as the gate computes it: on the half-size working copy."""
    return lighting_cnn.lighting_logit(working_copies(image, Thresholds().analysis_side)[1])


def test_model_input_is_a_scaled_square_whatever_the_aspect() -> None:
    grey = np.full((300, 400, 3), 160, np.uint8)  # exposed inside the band: only scaled
    x = lighting_cnn.model_input(grey)
    assert x.shape == (1, 3, lighting_cnn.INPUT_SIDE, lighting_cnn.INPUT_SIDE) and x.dtype == np.float32
    assert np.allclose(x, (160 / 255 - lighting_cnn.MEAN) / lighting_cnn.SCALE)


def input_level(x: np.ndarray) -> float:
    """log2 of the input's 95th percentile of linear luma (what the band is about)."""
    srgb = np.clip(x[0].transpose(1, 2, 0) * lighting_cnn.SCALE + lighting_cnn.MEAN, 0, 1)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return float(np.log2(np.quantile(linear @ np.array([0.299, 0.587, 0.114]), 0.95)))


@pytest.mark.parametrize("stops", [-5.0, -3.0, 3.0])
def test_a_photo_exposed_outside_the_band_is_brought_to_its_edge(stops: float) -> None:
    skin = skin_photo(320, 240, seed=3)
    low, high = lighting_cnn.EXPOSURE_BAND
    assert low < input_level(lighting_cnn.model_input(skin)) < high  # the photo itself is left alone
    edge = low if stops < 0 else high
    assert input_level(lighting_cnn.model_input(gd.exposure(stops)(skin))) == pytest.approx(edge, abs=0.15)


@pytest.mark.parametrize("angle", [0.0, 90.0, 180.0, 270.0])
def test_the_shipped_network_sees_side_light_and_shadows_but_not_exposure(angle: float) -> None:
    skin = skin_photo(640, 480, seed=1)
    assert served(skin) < -2.0  # even light: well below any threshold the selection part chose
    assert served(gd.exposure(-2.0)(skin)) < -2.0  # dark all over is too_dark's business, not uneven light
    assert served(gd.side_light(5.0, angle)(skin)) > 2.0
    assert served(gd.cast_shadow(4.0, angle, cover=0.45, soft=0.1)(skin)) > 2.0


def test_the_gate_refuses_a_shadow_only_the_network_sees_as_uneven_lighting() -> None:
    skin = skin_photo(640, 480, seed=1)
    shadowed = gd.cast_shadow(4.0, 90.0, cover=0.45, soft=0.1)(skin)
    without = Thresholds(max_lighting_logit=float("inf"))
    assert assess(skin).accepted
    report = assess(shadowed)
    assert "uneven_lighting" in report.retake_codes and report.measures["lighting_logit"] > 2.0
    assert "uneven_lighting" not in assess(shadowed, without).retake_codes  # the hand measures miss this one
    lenient = Thresholds(learned_offset=report.measures["lighting_logit"])  # an operator's "more lenient" moves it too
    assert "uneven_lighting" not in assess(shadowed, lenient).retake_codes
    assert "uneven_lighting" not in assess(shadowed, Thresholds(learned_verdict=False)).retake_codes  # hand rules only


def test_no_skin_no_lighting_logit() -> None:
    wall = np.full((480, 640, 3), (40, 120, 200), np.uint8)  # blue: not skin
    assert assess(wall).measures["lighting_logit"] == 0.0


def test_extra_fault_families_darken_around_their_centre() -> None:
    image = np.full((128, 128, 3), 180, np.uint8)
    rng = np.random.default_rng(0)
    box = (0.4, 0.4, 0.6, 0.6)
    blob = train.blob_shadow(4.0, rng, box)(image).astype(float)
    spot = train.spot_light(4.0, rng, box)(image).astype(float)
    one_stop_down = float(gd.exposure(-1.0)(image)[0, 0, 0])
    assert blob[64, 64, 0] < one_stop_down and blob[0, 0, 0] > 170  # dark in the middle, untouched far away
    corners = [spot[0, 0, 0], spot[0, -1, 0], spot[-1, 0, 0], spot[-1, -1, 0]]
    assert spot[64, 64, 0] > 150 and min(corners) < 60  # lit near the lamp, 4 stops down at the far corner


def test_training_copies_are_labelled_inputs_from_their_own_seed() -> None:
    images = [skin_photo(128, 128, seed=s) for s in range(3)]
    data = train.Copies(images, [None, (0.2, 0.2, 0.8, 0.8), None], train.Config(epochs=2, per_photo=2), seed=7)
    assert len(data) == 3 * 2 * 2
    x, y = data[5]
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and y in (0.0, 1.0)
    again, _ = data[5]
    assert np.array_equal(x, again)  # reproducible: a worker makes the same copy


def test_colour_casts_change_only_the_colour_of_a_jittered_copy() -> None:
    """The cast is drawn after everything else: a configuration without casts keeps its copies, and with casts a
    copy keeps its framing and light and moves red against blue, warmer or cooler."""
    image = skin_photo(128, 128, seed=4)
    luma = np.array([0.2126, 0.7152, 0.0722])
    ratios = []
    for seed in range(40):
        plain = train.jitter(image, np.random.default_rng(seed)).astype(np.float64)
        cast = train.jitter(image, np.random.default_rng(seed), casts=True).astype(np.float64)
        assert plain.shape == cast.shape
        if np.array_equal(plain, cast):
            continue
        assert abs((cast @ luma).mean() - (plain @ luma).mean()) < 12  # the light stays (a few levels of clipping)
        ratios.append(
            np.log(cast[..., 0].mean() / cast[..., 2].mean()) - np.log(plain[..., 0].mean() / plain[..., 2].mean())
        )
    assert 8 <= len(ratios) <= 28  # 40% of copies are cast
    assert min(ratios) < -0.2 and max(ratios) > 0.2  # cooler and warmer


@pytest.mark.parametrize("gains", [(1.35, 0.7), (0.8, 1.3)])
def test_grey_world_undoes_a_white_balance(gains: tuple[float, float]) -> None:
    image = skin_photo(128, 128, seed=2)
    reference = train.grey_world(image).astype(np.float64)
    cast = gd.white_balance(*gains)(image)
    assert np.abs(cast.astype(np.float64) - image).mean() > 8  # the cast is large
    assert np.abs(train.grey_world(cast).astype(np.float64) - reference).mean() < 3  # and gone but for clipping
    linear = gd.srgb_to_linear(train.grey_world(cast)).reshape(-1, 3).mean(axis=0)
    assert np.log(linear[[0, 2]] / linear[1]) == pytest.approx(train.CHROMA_REFERENCE, abs=0.02)


def test_export_round_trip_matches_torch(tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = train.make_model(4).eval()
        path = tmp_path / f"m{seed}.pt"
        torch.save({"config": f"m{seed}", "width": 4, "state": model.state_dict()}, path)
        members.append((path, model))
    onnx = tmp_path / "mean.onnx"
    train.main(["export", "--weights", *(str(p) for p, _ in members), "--onnx", str(onnx)])
    x = lighting_cnn.model_input(skin_photo(200, 150, seed=2))
    with torch.no_grad():
        expected = float(np.mean([m(torch.from_numpy(x)).item() for _, m in members]))
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert float(session.run(None, {"image": x})[0].item()) == pytest.approx(expected, abs=1e-4)


def test_merged_graphs_answer_the_mean_of_their_logits(tmp_path: Path) -> None:
    """`merge` grows an ensemble from exported graphs alone (the shipped pair's weights are not kept), and with
    `--mirror` answers a photo and its mirror image alike."""
    import onnxruntime as ort
    import torch

    graphs = []
    for seed in (3, 4, 5):
        torch.manual_seed(seed)
        weights = tmp_path / f"m{seed}.pt"
        torch.save({"config": f"m{seed}", "width": 4, "state": train.make_model(4).eval().state_dict()}, weights)
        graphs.append(tmp_path / f"m{seed}.onnx")
        train.main(["export", "--weights", str(weights), "--onnx", str(graphs[-1])])
    merged = tmp_path / "merged.onnx"
    train.main(["merge", "--graphs", *(str(g) for g in graphs), "--onnx", str(merged)])
    x = lighting_cnn.model_input(skin_photo(200, 150, seed=2))

    def logit(path: Path, image: np.ndarray = x) -> float:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return float(session.run(None, {"image": image})[0].item())

    alone = [logit(g) for g in graphs]
    assert len(set(alone)) == 3  # different networks, so a mean that ignored one would show
    assert logit(merged) == pytest.approx(np.mean(alone), abs=1e-5)

    # --mirror: the mean over the input and its mirror image, so a photo and its mirror image get one answer
    mirrored = tmp_path / "mirrored.onnx"
    train.main(["merge", "--graphs", str(merged), "--mirror", "--onnx", str(mirrored)])
    lopsided = x.copy()
    lopsided[..., : x.shape[-1] // 3] -= 2.0  # a shadow on the left third
    mirror = np.ascontiguousarray(lopsided[..., ::-1])
    plain, flipped = logit(merged, lopsided), logit(merged, mirror)
    assert abs(plain - flipped) > 1e-4  # the networks alone are not mirror-symmetric
    assert logit(mirrored, lopsided) == pytest.approx((plain + flipped) / 2, abs=1e-5)
    assert logit(mirrored, mirror) == pytest.approx(logit(mirrored, lopsided), abs=1e-6)


def test_cross_validation_table_thresholds_on_the_fine_copies_only() -> None:
    """Catch per variant at the logits that hold 1% / 2% of the pooled fine copies (the CV's choice protocol)."""
    names = train.EVAL_NAMES
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 1.0, (400, len(names)))
    fault = names.index("lesion cast shadow 4 stops")
    scores[:, fault] = 10.0  # every copy far above any fine one
    scores[:, names.index("darker 1 stop")] = 50.0  # not a fine copy: must not move the thresholds
    result = train.table(scores)
    fine = [names.index(n) for n in train.FINE]
    for share, key in ((0.01, "1%"), (0.02, "2%")):
        assert result["_thresholds"][key] == pytest.approx(np.quantile(scores[:, fine], 1 - share))
        assert result["lesion cast shadow 4 stops"][key] == 1.0
        assert np.mean([result[n][key] for n in train.FINE]) == pytest.approx(share, abs=0.005)


def test_log_light_plane_adds_a_shadow_as_a_field_and_mixes_with_rgb_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fourth plane is log2 of the linear luma after the exposure step: the sRGB planes are those of the plain
    input, and a photo a stop darker all over moves every cell of the plane alike (in sRGB it would not).
    `merge` serves a 4-plane network beside 3-plane ones (those read the sRGB planes), and the gate feeds each graph
    the planes it takes."""
    import onnxruntime as ort
    import torch

    photo = skin_photo(200, 150, seed=2)
    x3, x4 = lighting_cnn.model_input(photo), lighting_cnn.model_input(photo, log_light=True)
    assert x4.shape == (1, 4, lighting_cnn.INPUT_SIDE, lighting_cnn.INPUT_SIDE) and x4.dtype == np.float32
    np.testing.assert_array_equal(x4[:, :3], x3)
    shaded = gd.exposure(-1)(photo)
    # one stop down: the exposure step may lift the whole copy back, so compare the plane's shape, not its level
    plane, plane_shaded = x4[0, 3], lighting_cnn.model_input(shaded, log_light=True)[0, 3]
    assert np.ptp(plane - plane_shaded) < 0.1  # a uniform change of light moves every cell alike

    paths = {}
    for planes in (3, 4):
        torch.manual_seed(planes)
        weights = tmp_path / f"p{planes}.pt"
        model = train.make_model(4, planes).eval()
        torch.save({"config": f"p{planes}", "width": 4, "planes": planes, "state": model.state_dict()}, weights)
        paths[planes] = tmp_path / f"p{planes}.onnx"
        train.main(["export", "--weights", str(weights), "--onnx", str(paths[planes])])
    merged = tmp_path / "mixed.onnx"
    train.main(["merge", "--graphs", str(paths[3]), str(paths[4]), "--onnx", str(merged)])

    def logit(path: Path, x: np.ndarray) -> float:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return float(session.run(None, {"image": x})[0].item())

    alone = (logit(paths[3], x3), logit(paths[4], x4))
    assert logit(merged, x4) == pytest.approx(np.mean(alone), abs=1e-5)
    monkeypatch.setattr(lighting_cnn, "MODEL_PATH", merged)
    assert lighting_cnn.lighting_logit(photo) == pytest.approx(logit(merged, x4), abs=1e-6)  # a session per graph


def test_min_reach_draws_faults_that_darken_the_lesions_and_frame_share_moves_them_off_the_box() -> None:
    """A shadow that leaves the labelled lesions lit is drawn again (`min_reach`); without it about half the shadows
    placed on the box miss them. `frame_share` lands the change on the whole frame instead of the lesions' box."""
    from dataclasses import replace

    from bench.lighting_reach import grey_frame, reached_share, stops_taken

    lesions = np.zeros((128, 128), bool)
    lesions[60:68, 5:13] = True
    box = (0.0, 0.25, 0.75, 1.0)

    def reaching(min_reach: float) -> float:
        config = replace(train.Config(families=("shadow",)), min_reach=min_reach)
        copies = train.Copies([grey_frame((128, 128))], [box], config, 0, [lesions])
        shares = [
            reached_share(lesions, stops_taken(copies.fault("shadow", grey_frame((128, 128)), rng, box, 0)))
            for rng in (np.random.default_rng([1, i]) for i in range(60))
        ]
        return float(np.mean(np.array(shares) >= 0.5))

    assert reaching(0.0) < 0.8 and reaching(0.5) == 1.0
    rng = np.random.default_rng(0)
    shipped = train.Copies([grey_frame((128, 128))], [box], train.CONFIGS["base"], 0)
    assert all(shipped.placement(rng, box) == box for _ in range(20))
    assert rng.bit_generator.state == np.random.default_rng(0).bit_generator.state  # nothing drawn
    framed = train.Copies([grey_frame((128, 128))], [box], train.CONFIGS["base-fo"], 0)
    landed = [framed.placement(rng, box) for _ in range(400)]
    assert 0.4 < landed.count(None) / 400 < 0.6 and set(landed) == {None, box}


def test_frame_families_put_only_side_light_on_the_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `-s` recipes land side light (fault or mild) on the whole frame for about half the copies and keep every
    shadow, blob and spot on the lesions' box; the shipped recipes keep everything on the box."""
    from bench.lighting_reach import grey_frame

    box = (0.1, 0.2, 0.7, 0.9)
    landed: list[tuple[str, object]] = []

    def fault(self, family, image, rng, where, k):  # records where a fault lands
        landed.append((family, where))
        return image

    def fine(image, rng, side_box, shadow_box, vignettes):
        landed.extend([("fine side", side_box), ("fine shadow", shadow_box)])
        return image

    monkeypatch.setattr(train.Copies, "fault", fault)
    monkeypatch.setattr(train, "fine_copy", fine)

    def places(config: str) -> dict[str, float]:
        landed.clear()
        copies = train.Copies([grey_frame((128, 128))], [box], train.CONFIGS[config], 0)
        for i in range(600):
            copies[i]
        kinds = {kind for kind, _ in landed}
        assert all(where in (None, box) for _, where in landed)
        return {k: float(np.mean([w is None for kind, w in landed if kind == k])) for k in kinds}

    side = places("base-s")
    assert 0.35 < side["side"] < 0.65 and 0.35 < side["fine side"] < 0.65
    assert side["shadow"] == side["blob"] == side["spot"] == side["fine shadow"] == 0.0
    assert set(places("base").values()) == {0.0}
    everywhere = places("base-fo")
    assert all(0.35 < share < 0.65 for share in everywhere.values())


def test_paired_catch_reads_a_gain_on_one_row_and_nothing_elsewhere() -> None:
    """`compare`'s paired difference: a configuration that scores one fault row higher gains there, with an interval
    above zero, and exactly nothing on the rows it scores alike; the same scores twice give zero everywhere."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, (300, len(train.EVAL_NAMES))).astype(np.float32)
    faults = [train.EVAL_NAMES.index(r) for r in train.GRID_FAULTS]
    base[:, faults] += 2.0
    other = base.copy()
    other[:, train.EVAL_NAMES.index("side light 4 stops")] += 1.5
    diff = train.paired_catch(base, other, train.GRID_FAULTS, draws=300)
    gain, low, high = diff["side light 4 stops"]
    assert gain > 5 and 0 < low < gain < high
    assert all(diff[row] == (0.0, 0.0, 0.0) for row in train.GRID_FAULTS if row != "side light 4 stops")
    assert 0 < diff["grid mean"][0] == pytest.approx(gain / len(train.GRID_FAULTS))
    assert set(train.paired_catch(base, base, train.GRID_FAULTS, draws=50).values()) == {(0.0, 0.0, 0.0)}


def test_compare_averages_each_side_as_the_graph_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compare --base A --other A B` judges the ensemble of A and B (the mean of their logits) against A; scores of
    other photos or variants stop it."""
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (120, len(train.EVAL_NAMES))).astype(np.float32)
    b = a.copy()
    b[:, train.EVAL_NAMES.index("cast shadow 3 stops")] += 4.0
    np.save(tmp_path / "oof-a.npy", a), np.save(tmp_path / "oof-b.npy", b)
    train.main(
        [
            "compare",
            "--base",
            str(tmp_path / "oof-a.npy"),
            "--other",
            *(str(tmp_path / f) for f in ("oof-a.npy", "oof-b.npy")),
        ]
    )
    out = capsys.readouterr().out
    assert "a+b" in out.splitlines()[0]
    rows = {line[:34].strip(): line for line in out.splitlines()[1:]}
    assert "+0.0 [+0.0, +0.0]" in rows["side light 4 stops"] and "+0.0" not in rows["cast shadow 3 stops"].split()[-3]
    np.save(tmp_path / "oof-c.npy", a[:50])
    with pytest.raises(SystemExit, match="different photos"):
        train.main(["compare", "--base", str(tmp_path / "oof-a.npy"), "--other", str(tmp_path / "oof-c.npy")])


def test_compare_reads_the_casts_where_the_scores_have_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cast columns: a candidate that scores a white balance higher refuses more of it (a positive difference, which
    is worse there); scores made before the cast columns existed compare on the grid alone."""
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, (200, len(train.EVAL_NAMES))).astype(np.float32)
    b = a.copy()
    b[:, train.EVAL_NAMES.index("cool white balance, mild")] += 3.0
    for name, scores in (
        ("a", a),
        ("b", b),
        ("old-a", a[:, : -len(train.CASTS)]),
        ("old-b", b[:, : -len(train.CASTS)]),
    ):
        np.save(tmp_path / f"oof-{name}.npy", scores)

    def printed(base: str, other: str) -> dict[str, str]:
        train.main(["compare", "--base", str(tmp_path / base), "--other", str(tmp_path / other), "--draws", "200"])
        return {line[:34].strip(): line for line in capsys.readouterr().out.splitlines()[1:]}

    rows = printed("oof-a.npy", "oof-b.npy")
    assert set(train.CASTS) | {"casts' mean", "grid mean"} <= set(rows)
    gain, interval = rows["cool white balance, mild"].split()[-3], rows["cool white balance, mild"].split("[")[1]
    assert float(gain) > 5 and float(interval.split(",")[0]) > 0  # refused more, beyond doubt
    assert "+0.0 [+0.0, +0.0]" in rows["warm white balance, mild"] and "+0.0 [+0.0, +0.0]" in rows["grid mean"]
    old = printed("oof-old-a.npy", "oof-old-b.npy")
    assert "grid mean" in old and not set(train.CASTS) & set(old) and "casts' mean" not in old


def test_cast_copies_are_gate_captures_white_balances() -> None:
    """The cast columns are the very copies `gate_capture` judges the gate on (one home for the gains)."""
    from bench import gate_capture

    image = skin_photo(160, 120, seed=4)
    assert tuple(gd.WHITE_BALANCES) == train.CASTS and train.EVAL_NAMES[-len(train.CASTS) :] == train.CASTS
    for name in train.CASTS:
        made = train.variant(name, image, 0, None)
        assert np.array_equal(made, gate_capture.VARIANTS[name](image)) and not np.array_equal(made, image)


def test_cached_inputs_are_made_once_and_made_again_for_other_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[int] = []

    def make(photos: list[Path], processes: int) -> np.ndarray:
        made.append(len(photos))
        return np.full((len(photos), len(train.EVAL_NAMES), 1, 2, 2), len(made), np.float16)

    monkeypatch.setattr(train, "evaluation_inputs", make)
    cache = tmp_path / "cv" / "inputs.npy"
    photos = [Path(f"p{i}.jpg") for i in range(3)]
    first = train.cached_inputs(photos, cache, 1)
    again = train.cached_inputs(photos, cache, 1)
    assert made == [3] and np.array_equal(first, again)
    other = train.cached_inputs(photos[:2], cache, 1)  # a cache of other photos is not reused
    assert made == [3, 2] and other.shape[0] == 2 and np.all(other == 2)
    assert train.cached_inputs(photos, None, 1).shape[0] == 3 and made == [3, 2, 3]


def test_joint_folds_never_pass_a_folds_own_copies_through_its_network() -> None:
    import torch

    seen: dict[int, set[int]] = {}

    class Recorder(torch.nn.Module):
        """A logit per sample from one weight; records which folds' samples (x holds its fold) reached it."""

        def __init__(self, k: int) -> None:
            super().__init__()
            self.k, self.w = k, torch.nn.Parameter(torch.zeros(1))
            seen[k] = set()

        def forward(self, x):
            seen[self.k] |= {int(v) for v in x[:, 0, 0, 0]}
            return (x[:, :1, 0, 0] * self.w).reshape(-1, 1)

    folds = torch.arange(40) % 5
    batches = [(folds.float().reshape(-1, 1, 1, 1).repeat(1, 3, 2, 2), torch.rand(40), folds)] * 3
    models = train.optimise(
        [Recorder(k) for k in range(5)], batches, 1e-2, "cpu", keep=lambda k, f: f != k, subset=True
    )
    assert len(models) == 5 and all(seen[k] == set(range(5)) - {k} for k in range(5))
    seen.clear()
    train.optimise([Recorder(k) for k in range(2)], batches, 1e-2, "cpu", keep=lambda k, f: f != k)  # weighed, not cut
    assert seen == {0: set(range(5)), 1: set(range(5))}


def test_folded_copies_are_the_copies_with_their_photos_fold() -> None:
    images = [skin_photo(seed=s)[:128, :128] for s in range(3)]
    config = train.Config(epochs=1, per_photo=2)
    plain, folded = (
        train.Copies(images, [None] * 3, config, seed=0),
        train.Copies(images, [None] * 3, config, 0, None, [4, 0, 2]),
    )
    for i in range(len(plain)):
        x, y, fold = folded[i]
        assert np.array_equal(x, plain[i][0]) and y == plain[i][1] and fold == [4, 0, 2][i % 3]


def test_kept_out_of_fold_scores_are_every_fit_photo_by_every_evaluation_copy() -> None:
    kept = sorted((Path(__file__).parents[2] / "docs" / "evidence" / "lighting-cv").glob("oof-*.npy"))
    recipes = [f"{name}{suffix}" for name in ("base", "no-extra", "long", "no-extra-long") for suffix in ("", "-s")]
    assert {f"oof-{name}.npy" for name in recipes} <= {path.name for path in kept}  # rule L8's judge, complete
    for path in kept:
        scores = np.load(path)
        assert scores.shape == (500, len(train.EVAL_NAMES)) and scores.dtype == np.float32, path.name
        assert np.isfinite(scores).all() and scores.std(axis=0).min() > 0, path.name  # every row scored, none blank
