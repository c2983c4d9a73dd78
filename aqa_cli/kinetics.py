"""The Kinetics-400 I3D at scoring time, beside the scoring model: `DiveCheck` (does this video look like
a dive to it?) and `FeatureInput` (a video as the segment features that S4AQA, regress and mtl-features
models were trained on). Both read the imported I3D (`aqa weights import-i3d`); the Scorer owns one of
each when it needs it.
"""

from __future__ import annotations

from pathlib import Path

from aqa_cli.checkpoint import Checkpoint
from aqa_cli.errors import WeightsError


class FeatureInput:
    """How a model on segment features (`aqa train --task s4aqa|regress`) reads a video: the Kinetics I3D
    features of its clips, made as its training features were (the index in data["features"]): a dive's
    `preprocess.frames` frames in `segments` clips, or clips every `stride` frames over a whole routine."""

    def __init__(self, checkpoint: Checkpoint, device):
        from aqa_cli.datasets.features import FeatureIndex
        from aqa_cli.weights import file_sha256, load_i3d

        self.index = FeatureIndex(**checkpoint.data["features"])
        backbone, path = load_i3d()
        if file_sha256(path) != self.index.weights_sha256:
            raise WeightsError(f"this model reads features of the I3D weights with sha256 {self.index.weights_sha256[:12]}…; "
                               f"{path} is another file", hint="aqa weights import-i3d the weights it was trained on")
        self.backbone, self.device = backbone.to(device), device
        self.frames, self.positions = checkpoint.preprocess.frames, checkpoint.feature_positions()

    def prepare(self, path: str | Path, window: tuple[float, float] | None = None) -> list:
        """The clips, in batches of (B, 3, clip_len, size, size) in [-1, 1] (thread-safe)."""
        from aqa_cli.datasets.features import segment_starts, video_batches, window_batches
        from aqa_cli.video import probe, read_even

        index = self.index
        if not index.segments:
            return list(video_batches(Path(path), index, 8))  # a routine: the whole video
        info = probe(path)
        scale = round(index.size * 256 / 224) / min(info.width, info.height)  # the short side I3D's crop wants
        start, end = window or (None, None)
        frames = read_even(path, n=self.frames, size=(round(info.width * scale), round(info.height * scale)),
                           clip_len=index.clip_len, start=start, end=end)
        return window_batches(frames, index, segment_starts(len(frames), index.clip_len, index.segments), 8)

    def __call__(self, batches: list):
        """(features float (1, T, dim), lengths (1,)) for the model, from `prepare`'s batches."""
        from aqa_cli.datasets.features import encode_clips, stack_features

        feats = encode_clips(self.backbone, batches, self.device, autocast=self.device.type == "cuda")
        return stack_features([feats], *self.positions)


class DiveCheck:
    """Does this look like a dive? DeepMind's Kinetics-400 I3D on one 32-frame clip of the video.

    `looks_like_dive` is the probability Kinetics gives its diving classes (models.i3d.DIVING_CLASSES).
    A warning is raised only when both say no: the best diving class ranks below `RANK` and the diving
    classes hold less than `MASS`. Real dives that are short, slow or oddly framed can read as their
    aerial neighbours (somersaulting, trampolining, pole vault) with diving second or third, so neither
    the top class nor the mass alone decides. Calibrated on what is at hand here: the five SynDive
    examples (diving ranked 1-3, mass 0.14-0.94), the Kinetics release's cricket sample (diving ranked
    211, mass < 0.001) and test patterns; not yet on real poolside footage.
    """

    RANK, MASS = 5, 0.10
    FRAMES, SIZE = 32, 224  # 1.3 s at 25 fps spread over the whole video; the release's crop

    def __init__(self, model, device):
        from importlib import resources

        from aqa_cli.models.i3d import DIVING_CLASSES

        self.model = model.to(device).eval()
        self.device = device
        self.labels = resources.files("aqa_cli").joinpath("data/kinetics400_labels.txt").read_text().splitlines()
        self.diving = [self.labels.index(name) for name in DIVING_CLASSES]

    def prepare(self, path: str | Path, window: tuple[float, float] | None = None):
        """float (3, FRAMES, SIZE, SIZE) in [-1, 1]: frames spread evenly over the video (or its `window`,
        s), short side resized and the centre cropped as the release did (thread-safe)."""
        from aqa_cli.transforms import i3d_input
        from aqa_cli.video import probe, read_even

        info = probe(path)
        scale = self.SIZE * 256 / 224 / min(info.width, info.height)
        size = (max(self.SIZE, round(info.width * scale)), max(self.SIZE, round(info.height * scale)))
        start, end = window or (None, None)
        return i3d_input(read_even(path, n=self.FRAMES, size=size, clip_len=self.FRAMES, start=start, end=end),
                         self.SIZE)

    def read(self, clip) -> tuple[float, list[tuple[str, float]], str | None]:
        """(diving probability, the top 3 classes with their probabilities, a warning or None)."""
        import torch

        with torch.inference_mode():
            p = self.model(clip.unsqueeze(0).to(self.device)).float().softmax(-1)[0].cpu()
        mass = float(p[self.diving].sum())
        rank = int((p > p[self.diving].max()).sum()) + 1
        top = [(self.labels[int(i)], float(p[i])) for i in p.topk(3).indices]
        warning = None
        if rank > self.RANK and mass < self.MASS:
            seen = ", ".join(f"{name} {prob:.2f}" for name, prob in top)
            warning = f"does not look like a dive to Kinetics I3D (diving p={mass:.3f}; it sees {seen})"
        return mass, top, warning
