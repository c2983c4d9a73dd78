"""S4AQA: semi-supervised action quality assessment with self-supervised segment feature recovery
(Zhang, Pan, Gao, Zheng, IEEE TCSVT 2022), on precomputed segment features.

    labelled   V (B, T, D) --E--> tokens (B, T, H) --mean over T--> f (B, H) --regressor--> score (B,)
    unlabelled V (B, T, D) --E--> f;   V with segment k masked --E--> tokens --token k--> Φ --> v_k (B, D)
    f of both paths --gradient reversal--> D --> labelled (1) or unlabelled (0)

    L = L_reg + λ1 · L_rcvr + λ2 · L_adv

No code of the paper is public; the choices below are ours and documented where they are made:

- E, the encoder, keeps one token per segment (a pre-norm transformer over the T segments with learned
  position embeddings), so the decoder can be told which segment it recovers: Φ reads the masked
  sequence's token at position k. The paper writes Φ(f̈) on the pooled feature; a pooled feature of a
  position-agnostic decoder cannot know which of the T segments is asked for, so we read the token.
- The mask is a learned token that replaces segment k after the input projection (as in masked
  autoencoders), so the position embedding still says where the hole is.
- L_reg is the MSE on the standardised score (the score minus the labelled subset's mean, over its sd);
  L_rcvr the mean absolute error over the D feature values; L_adv the binary cross-entropy of D with
  labelled features as class 1 and unlabelled ones, unmasked and masked, as class 0.
- The gradient-reversal layer passes features unchanged forward and multiplies D's gradient by -coeff
  on the way back into E, so E learns to make labelled and unlabelled features alike while D learns to
  tell them apart.

The supervised baseline (`semi=False`) is the same encoder and regressor without Φ and D.

The frozen-feature MTL variant (task "mtl-features") is that baseline with the MTL heads of aqa's video
models on the pooled feature f: an execution regressor (the sum of the counted judges' marks) and one
classifier per dive label group (rules.HEADS: position, armstand, rotation_type, ss_no, tw_no), so
scoring can apply the rules (expected DD × execution, the dive number) as it does for tiny-mtl.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GradientReversal(torch.autograd.Function):
    """Identity forward; the incoming gradient times -coeff backward (Ganin & Lempitsky, ICML 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """x (any shape) unchanged; its gradient reaches the layers below as -coeff times what it was."""
    return GradientReversal.apply(x, coeff)


class SegmentEncoder(nn.Module):
    """E: segment features (B, T, D) → one token per segment (B, T, H).

    LayerNorm over D (backbone features vary in scale), a linear projection to H, the mask token in
    place of the masked segments, learned position embeddings (up to `segments` positions), `layers`
    pre-norm transformer blocks (`heads` heads, feed-forward 2H, `dropout`) and a final LayerNorm.
    """

    def __init__(self, in_dim: int, segments: int, width: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.randn(width) * 0.02)
        self.position = nn.Parameter(torch.randn(segments, width) * 0.02)
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(width)

    def forward(self, v: torch.Tensor, masked: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        """v (B, T, D) with T ≤ segments; masked (B,) long: the segment of each video replaced by the
        mask token, or None; lengths (B,) long: video b's real segments are v[b, :lengths[b]], the rest
        padding that attention ignores (None: all T are real) → tokens (B, T, H)."""
        t = v.shape[1]
        x = self.proj(self.norm(v))
        if masked is not None:
            hole = F.one_hot(masked, t).unsqueeze(-1).bool()  # (B, T, 1): True at the masked segment
            x = torch.where(hole, self.mask_token.to(x.dtype), x)
        padding = padding_mask(lengths, t)
        return self.out_norm(self.blocks(x + self.position[:t], src_key_padding_mask=padding))


def padding_mask(lengths: torch.Tensor | None, t: int) -> torch.Tensor | None:
    """(B, T) bool, True at padded positions (index ≥ length); None when nothing is padded, so
    equal-length batches take the same computation as without lengths."""
    if lengths is None or bool((lengths >= t).all()):
        return None
    return torch.arange(t, device=lengths.device) >= lengths[:, None]


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given widths with ReLU (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout else [nn.ReLU()]
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class S4AQA(nn.Module):
    """The S4AQA model (see the module docstring), or with `semi=False` the supervised baseline.

    forward(v) → {"score": (B,)} in points (the regressor's standardised output times `score_std` plus
    `score_mean`, buffers set from the labelled subset and saved with the weights), so a checkpoint
    scores without its training data. With `execution` it adds "execution" (B,) in points (likewise
    through `exec_mean`, `exec_std`), with `classes` ({head: K}) "logits" {head: (B, K)}: the outputs
    aqa's MTL video models give. Training reads the parts: `encode`, `pool`, `regress`, `execute`,
    `classify`, `recover`, `discriminate`.
    """

    def __init__(self, in_dim: int, segments: int, width: int = 256, layers: int = 2, heads: int = 4,
                 dropout: float = 0.1, semi: bool = True, execution: bool = False,
                 classes: dict[str, int] | None = None):
        super().__init__()
        self.encoder = SegmentEncoder(in_dim, segments, width, layers, heads, dropout)
        self.regressor = mlp([width, width // 2, 1], dropout)
        # Φ: two fully connected layers with ReLU between them, H → H → D (the paper's decoder).
        self.decoder = mlp([width, width, in_dim]) if semi else None
        self.discriminator = mlp([width, width // 2, 1]) if semi else None
        # The MTL heads read the same pooled f as the score regressor, each its own two-layer MLP.
        self.executor = mlp([width, width // 2, 1], dropout) if execution else None
        self.classifiers = nn.ModuleDict({h: mlp([width, width // 2, k], dropout) for h, k in (classes or {}).items()})
        self.register_buffer("score_mean", torch.zeros(()))
        self.register_buffer("score_std", torch.ones(()))
        if execution:
            self.register_buffer("exec_mean", torch.zeros(()))
            self.register_buffer("exec_std", torch.ones(()))

    def encode(self, v: torch.Tensor, masked: torch.Tensor | None = None,
               lengths: torch.Tensor | None = None) -> torch.Tensor:
        """v (B, T, D), masked (B,) long or None, lengths (B,) long or None → tokens (B, T, H)."""
        return self.encoder(v, masked, lengths)

    @staticmethod
    def pool(tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T, H) → f (B, H), their mean over each video's real segments (all T when
        lengths is None)."""
        padding = padding_mask(lengths, tokens.shape[1])
        if padding is None:
            return tokens.mean(1)
        keep = (~padding).unsqueeze(-1).to(tokens.dtype)
        return (tokens * keep).sum(1) / keep.sum(1)

    def regress(self, f: torch.Tensor) -> torch.Tensor:
        """f (B, H) → the standardised score (B,)."""
        return self.regressor(f).squeeze(-1)

    def execute(self, f: torch.Tensor) -> torch.Tensor:
        """f (B, H) → the standardised execution (B,) (models with the execution head)."""
        return self.executor(f).squeeze(-1)

    def classify(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """f (B, H) → {head: logits (B, K_head)} ({} without class heads)."""
        return {h: fc(f) for h, fc in self.classifiers.items()}

    def recover(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Φ on each video's token at its masked position: tokens (B, T, H), masked (B,) → v̂_k (B, D)."""
        return self.decoder(tokens[torch.arange(len(masked), device=tokens.device), masked])

    def discriminate(self, f: torch.Tensor, coeff: float) -> torch.Tensor:
        """D behind the gradient-reversal layer: f (B, H) → logits (B,) of "labelled"."""
        return self.discriminator(reverse_gradient(f, coeff)).squeeze(-1)

    def forward(self, v: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """v (B, T, D), lengths (B,) long or None (see SegmentEncoder) → {"score": (B,)} in points, and
        "execution" (B,) in points and "logits" {head: (B, K)} where the model has those heads."""
        f = self.pool(self.encode(v, lengths=lengths), lengths)
        out: dict = {"score": self.regress(f) * self.score_std + self.score_mean}
        if self.executor is not None:
            out["execution"] = self.execute(f) * self.exec_std + self.exec_mean
        if len(self.classifiers):
            out["logits"] = self.classify(f)
        return out


TASKS = ("s4aqa", "regress", "mtl-features")  # checkpoints' model_config.task for models on segment features
MTL_TASK = "mtl-features"  # the regress baseline with the execution and dive-class heads


def build_s4aqa(task: str, in_dim: int, segments: int, width: int = 256, layers: int = 2, heads: int = 4,
                dropout: float = 0.1, classes: dict[str, int] | None = None) -> S4AQA:
    """The model of `task`: "s4aqa" with decoder Φ and discriminator D, "regress" (the supervised
    baseline) without them, "mtl-features" the baseline with an execution head and a classifier per
    entry of `classes` ({head: K}; required for it); `segments` is the number of positions (the
    longest sequence it reads)."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if task == MTL_TASK and not classes:
        raise ValueError("task mtl-features needs its dive heads' classes")
    mtl = task == MTL_TASK
    return S4AQA(in_dim, segments, width, layers, heads, dropout, semi=task == "s4aqa", execution=mtl,
                 classes=classes if mtl else None)


def regression_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """L_reg: MSE between standardised scores, pred and true (B,) → ()."""
    return F.mse_loss(pred, true)


def recovery_loss(recovered: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_rcvr: mean absolute difference between Φ's output and the masked segments' features,
    recovered and target (B, D) → ()."""
    return F.l1_loss(recovered, target)


def alignment_loss(labelled: torch.Tensor, unlabelled: torch.Tensor) -> torch.Tensor:
    """L_adv: binary cross-entropy of D's logits, labelled (B_l,) as class 1 and unlabelled (B_u,) as
    class 0, averaged over all B_l + B_u features → ()."""
    logits = torch.cat([labelled, unlabelled])
    target = torch.cat([torch.ones_like(labelled), torch.zeros_like(unlabelled)])
    return F.binary_cross_entropy_with_logits(logits, target)
