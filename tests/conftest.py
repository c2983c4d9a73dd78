"""Shared pytest fixtures. Test media helpers live in tests/media.py (import them directly)."""

from __future__ import annotations

import pytest

from media import make_video


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory):
    """A 40-frame 64x48 25 fps H.264 .mp4 whose frames carry their index (see media.frame_index)."""
    return make_video(tmp_path_factory.mktemp("video") / "tiny.mp4", 40)
