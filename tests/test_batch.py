"""Batch inputs and options: what a folder scan scores and reports, and how lenient the options are."""

from __future__ import annotations

import pytest

from aqa_cli.inputs import expand_inputs
from aqa_cli.errors import UsageError
from aqa_cli.scoring import check_options


def test_a_folder_scan_scores_videos_and_gifs_and_reports_every_other_file(tmp_path):
    for name in ("a.mp4", "b.GIF", "song.mp3", "notes.txt", "README", ".DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    skipped: list[tuple[str, str]] = []
    inputs = expand_inputs([tmp_path], skipped=skipped)
    assert [p for p, _ in inputs] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.GIF")]
    assert dict(skipped) == {str(tmp_path / "notes.txt"): "not a video (.txt)",
                             str(tmp_path / "README"): "not a video (no suffix)",
                             str(tmp_path / "song.mp3"): "audio only"}


@pytest.mark.parametrize("given, height", [("3", "3m"), ("3M", "3m"), ("3 m", "3m"), ("7.5", "7.5m"), ("10m", "10m")])
def test_heights_are_read_leniently(given, height):
    assert check_options(height=given)[0] == height


@pytest.mark.parametrize("given, dd", [("3,2", 3.2), (" 3.2 ", 3.2), (2.0, 2.0), ("1,95", 1.95)])
def test_a_dd_takes_a_decimal_comma(given, dd):
    assert check_options(dd=given)[1] == pytest.approx(dd)


@pytest.mark.parametrize("height, dd, match", [("4m", None, "expected one of"), (None, "3.2.1", "such as 3.2"),
                                               (None, "9", "from 0.1 to 5.0"), (None, "nan", "from 0.1")])
def test_bad_options_are_one_line_usage_errors(height, dd, match):
    with pytest.raises(UsageError, match=match):
        check_options(height=height, dd=dd)
