"""The coach's HTML report: one page per dive, and the session index of a folder of dives.

    write_dive_report(result, frames, path, ...)  one self-contained page: the final score and how the
                                                  rules computed it, the dive and each head's
                                                  probability, the commentary, a strip of frames
    write_index(entries, path, sort=...)          the session: a table of dives, a score histogram,
                                                  relative links to each page, the failed videos
    ReportFolder(out_dir, settings, ...)          `aqa score DIR --report OUT/`: a page per dive and
                                                  index.html, resumable like the score CSV

Every page opens from a USB stick with no network: the frames are JPEGs inside `data:` URIs (encoded
with PyAV, which aqa already needs to read video), styles are inline, the bars are HTML/CSS and the
histogram an SVG written as text; there is no script. Every string from a result or a file name is
escaped. A viewport tag and a fluid layout make it readable on a phone.

Size: each strip frame is fitted into FRAME_BOX and encoded as JPEG at JPEG_QSCALE, coarser where a
frame would still exceed FRAME_BUDGET bytes, so a dive's page stays under about 8 × 40 KB × 4/3
(base64) + 10 KB ≈ 440 KB whatever the video, and typically far less (see benchmarks/bench_report.py).
"""

from aqa_cli.report.page import (FRAME_BOX, STRIP_FRAMES, encode_jpeg, model_card, pick_strip, render_dive,
                                 strip_size, write_dive_report)
from aqa_cli.report.session import IndexEntry, ReportFolder, histogram_svg, render_index, write_index

__all__ = ["FRAME_BOX", "STRIP_FRAMES", "IndexEntry", "ReportFolder", "encode_jpeg", "histogram_svg", "model_card",
           "pick_strip", "render_dive", "render_index", "strip_size", "write_dive_report", "write_index"]
