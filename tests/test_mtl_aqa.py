"""MTL-AQA adapter: the release as shipped → the common dataset root; xlsx reading; the val carve."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aqa_cli.datasets import mtl_aqa
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.datasets.xlsx import column_index, read_xlsx
from aqa_cli.errors import DataError

SHARED_MTL_AQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtl-aqa"


@pytest.fixture(scope="module")
def release():
    if not SHARED_MTL_AQA.is_dir():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    return mtl_aqa.load_release(SHARED_MTL_AQA)


def test_release_as_shipped(release):
    assert len(release.annotations) == 1412
    assert (len(release.train), len(release.test)) == (1059, 353)
    assert not set(release.train) & set(release.test)
    assert release.derived == "derived/final_annotations_dict_with_dive_number.pkl"
    assert sorted(release.videos) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 14, 17, 18, 22, 26]
    assert release.videos[1] == "https://www.youtube.com/watch?v=cYkUl8MrXgA"
    assert release.vocab_size == 5781
    assert release.notes == ["4 captions have no annotated dive (ignored)"]


def test_samples_use_0_based_frames_and_keep_every_label(release):
    samples = {s.id: s for s in mtl_aqa.to_samples(release)}
    first = samples["01_001"]  # release: start 7377, end 7462 (1-based JPEG numbers)
    assert (first.video, first.start_frame, first.end_frame) == ("01", 7376, 7461)
    assert (first.dive_number, first.difficulty, first.final_score) == ("407C", 3.2, 88.0)
    assert first.judge_scores == [9.5, 9.0, 9.5, 9.0, 8.5, 9.5, 8.5]
    assert (first.position, first.armstand, first.rotation_type, first.ss_no, first.tw_no) == (2, 0, 2, 7, 0)
    assert first.commentary.startswith("and a half somersault over the three point two")
    assert "<sos>" not in first.commentary and "<eos>" not in first.commentary
    assert all(len(s.judge_scores) == 7 for s in samples.values())
    assert {s.height for s in samples.values()} == {"3m", "10m"}
    assert samples["01_001"].height == "10m" and samples["17_001"].height == "3m"


def test_official_dict_alone_still_works(tmp_path, release):
    """Without derived/, the dive number comes from the labels and there are no judges' marks."""
    for name in (mtl_aqa.ANNOTATIONS, mtl_aqa.TRAIN_SPLIT, mtl_aqa.TEST_SPLIT):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((SHARED_MTL_AQA / name).read_bytes())
    plain = mtl_aqa.load_release(tmp_path)
    assert plain.derived == "" and plain.captions == {} and plain.videos == {}
    samples = {s.id: s for s in mtl_aqa.to_samples(plain)}
    assert samples["01_001"].dive_number == "407C" and samples["01_001"].judge_scores == []


def test_write_annotations_then_carve_val(tmp_path, release):
    mtl_aqa.write_annotations(tmp_path, release)
    root = DatasetRoot(tmp_path)
    assert root.info.counts == {"train": 1059, "val": 0, "test": 353, "total": 1412}
    assert (root.info.frames, root.info.pad) == (103, 3)
    mtl_aqa.write_annotations(tmp_path, release, val_fraction=0.1)
    root = DatasetRoot(tmp_path)
    assert root.info.counts == {"train": 953, "val": 106, "test": 353, "total": 1412}
    official_test = [mtl_aqa.sample_id(k) for k in release.test]
    assert [s.id for s in root.split("test")] == official_test
    train, val = {s.id for s in root.split("train")}, {s.id for s in root.split("val")}
    assert train | val == {mtl_aqa.sample_id(k) for k in release.train} and not train & val
    assert mtl_aqa.carve_val(sorted(train | val)) == mtl_aqa.carve_val(sorted(train | val))  # fixed seed


def test_not_a_release(tmp_path):
    with pytest.raises(DataError, match="not an MTL-AQA release"):
        mtl_aqa.load_release(tmp_path)


def _xlsx(path: Path, sheet_xml: str, strings: list[str]) -> Path:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", f'<workbook {ns} {rel_ns}><sheets><sheet name="Dives" sheetId="1" r:id="rId7"/>'
                                      "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId7" Target="worksheets/data.xml" Type="worksheet"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f"<sst {ns}>" + "".join(f"<si><t>{s}</t></si>" for s in strings)
                   + "<si><r><t>rich </t></r><r><t>text</t></r></si></sst>")
        z.writestr("xl/worksheets/data.xml", f"<worksheet {ns}><sheetData>{sheet_xml}</sheetData></worksheet>")
    return path


def test_xlsx_cells(tmp_path):
    sheet = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>2</v></c></row>'
             '<row r="3"><c r="B3"><v>7.5</v></c><c r="AA3" t="inlineStr"><is><t>inline</t></is></c>'
             '<c r="D3" t="b"><v>1</v></c></row>')
    rows = read_xlsx(_xlsx(tmp_path / "t.xlsx", sheet, ["head", "unused"]), sheet="Dives")
    assert rows[0] == ["head", None, "rich text"]
    assert rows[1] == []
    assert rows[2][1] == 7.5 and rows[2][3] is True and rows[2][26] == "inline"
    assert column_index("A") == 0 and column_index("AA") == 26


def test_xlsx_errors(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip")
    with pytest.raises(DataError, match=r"bad\.xlsx: not a readable \.xlsx"):
        read_xlsx(bad)
    with pytest.raises(DataError, match="not found"):
        read_xlsx(tmp_path / "missing.xlsx")
    with pytest.raises(DataError, match="no sheet named"):
        read_xlsx(_xlsx(tmp_path / "t.xlsx", "", []), sheet="Other")


def test_raw_annotation_sheet_has_the_judges_marks():
    sheet = SHARED_MTL_AQA / "Raw_Annotations" / "01.xlsx"
    if not sheet.is_file():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    rows = read_xlsx(sheet)
    assert rows[0][:4] == ["sr. no", "view", "start frame", "end frame"]
    # Dive 1 of video 1: the same frames and marks as the annotation dict (1-based frame numbers).
    assert rows[1][:4] == [1.0, "s", 7377.0, 7462.0]
    assert rows[1][11:] == [88.0, 9.5, 9.0, 9.5, 9.0, 8.5, 9.5, 8.5]
