"""Shared pytest fixtures. Test media helpers live in tests/media.py (import them directly)."""

from __future__ import annotations

import pytest

from media import make_video


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory):
    """A 40-frame 64x48 25 fps H.264 .mp4 whose frames carry their index (see media.frame_index)."""
    return make_video(tmp_path_factory.mktemp("video") / "tiny.mp4", 40)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty weights cache ($XDG_CACHE_HOME/aqa): what the user has imported
    (the Kinetics I3D turns on `aqa score`'s dive check) never changes what a test sees."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
