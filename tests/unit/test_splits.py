"""The selection/report split: by source photo, stratified by grade, stable."""

from detector.datasets.splits import select_part, source_id, split_names


def test_source_id_strips_the_export_suffix() -> None:
    assert source_id("levle2_102_jpg.rf.e763012b3018207a9ed07e61deedff9d.jpg") == "levle2_102"
    assert source_id("/x/y/levle0_7.jpg") == "levle0_7"


def test_variants_of_one_source_stay_together_and_grades_are_balanced() -> None:
    names = [f"levle{g}_{i}_jpg.rf.{v:032x}.jpg" for g in range(4) for i in range(40) for v in (1, 2)]
    parts = split_names(names)
    assert len(parts["selection"]) + len(parts["report"]) == len(names)
    sel = {source_id(n) for n in parts["selection"]}
    rep = {source_id(n) for n in parts["report"]}
    assert not sel & rep
    for grade in range(4):
        assert sum(s.startswith(f"levle{grade}_") for s in sel) == 20


def test_split_is_a_pure_function_of_the_names() -> None:
    names = [f"levle1_{i}.jpg" for i in range(30)]
    assert select_part(names, "report") == select_part(list(reversed(names)), "report")[::-1]
    assert select_part(names, None) == names
