"""The demo (`make demo`) runs offline end to end and finds the original as the earliest appearance."""

from __future__ import annotations

import re

import pytest

from monitor import demo


@pytest.mark.slow
def test_demo_finds_the_original_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "CLIP_SECONDS", 4.0)  # shorter clips, same story
    data_dir = tmp_path / "demo-data"

    report = demo.run_demo(data_dir)

    out = capsys.readouterr().out
    assert "5 listed, 5 new, 0 failed" in out
    assert re.search(r"earliest: http://127\.0\.0\.1:\d+/original\.mp4 \(Harbour fire, filmed from the pier\), "
                     r"published 2024-03-01 09:30 UTC", out)
    assert "mirror.mp4" in out and f"HTML report: {report}" in out
    assert report == data_dir / "report.html" and "original.mp4" in report.read_text()
    assert (data_dir / demo.MARKER).exists()


def test_demo_never_wipes_a_directory_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(SystemExit, match="was not made by the demo"):
        demo.fresh_data_dir(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"
