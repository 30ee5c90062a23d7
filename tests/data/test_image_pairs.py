"""Pairs of image files: paired in order or listed in a CSV, each image read once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from data.errors import DataError
from data.image_pairs import pairs_in_csv, pairs_of_images, read_image_pairs


def digit(path: Path, shade: int) -> Path:
    image = Image.new("L", (28, 28), 0)
    image.paste(shade, (10, 6, 18, 22))  # a bar: a "1" for the reader
    image.save(path)
    return path


def test_each_image_is_read_once_however_many_pairs_it_is_in(tmp_path: Path) -> None:
    a, b = digit(tmp_path / "a.png", 255), digit(tmp_path / "b.png", 200)
    pairs = pairs_of_images([a, b, b, a, a, a, b, b])
    read_count = []
    read = read_image_pairs(pairs, skip_bad=False, advance=read_count.append)
    assert sum(read_count) == 2  # two files, four pairs
    assert read.inputs.shape == (4, 2, 14, 14) and not read.bad
    assert (read.inputs[0, 0] == read.inputs[1, 1]).all()
    assert [p.where for p in pairs][:2] == ["pair 1 (images 1 and 2)", "pair 2 (images 3 and 4)"]


def test_a_csv_is_read_with_or_without_a_header_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    digit(tmp_path / "scans" / "a.png", 255)
    digit(tmp_path / "scans" / "b.png", 255)
    body = "scans/a.png,scans/b.png\nscans/b.png , scans/a.png,3\n"
    for text, first_row in (("first,second\n" + body, 2), (body, 1), ("\ufeffx,y\n" + body, 2)):
        (tmp_path / "pairs.csv").write_text(text)
        pairs = pairs_in_csv(tmp_path / "pairs.csv")
        assert [p.names for p in pairs] == [
            ("scans/a.png", "scans/b.png"),
            ("scans/b.png", "scans/a.png"),
        ]
        assert pairs[0].first == tmp_path / "scans" / "a.png"
        assert pairs[0].where == f"row {first_row} of {tmp_path / 'pairs.csv'}"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("", "is empty"), ("first,second\n", "has a header and no pairs"),
     ("a.png\n", "row 1 of"), ("\n\n", "is empty")],
)  # fmt: skip
def test_a_csv_that_lists_no_pairs_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(DataError, match=needle):
        pairs_in_csv(tmp_path / "pairs.csv")
