"""aqa: Action Quality Assessment of sports video (diving first).

Public API (imported lazily so `import aqa_cli` stays cheap and torch-free):

    from aqa_cli import load_model, score_video, score_videos
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "score_video", "score_videos", "ScoreResult"]


def __getattr__(name: str):
    # Lazy: importing torch costs ~2 s, which `aqa --help` and `aqa --version` should not pay.
    if name in ("load_model", "score_video", "ScoreResult"):
        from aqa_cli import scoring

        return getattr(scoring, name)
    if name == "score_videos":
        from aqa_cli import batch

        return batch.score_videos
    raise AttributeError(f"module 'aqa_cli' has no attribute {name!r}")
