"""The loss of `aqa train`: the MTL-AQA recipe (Parmar & Morris 2019, and its released code).

    loss = regression(score)                               MSE + L1 over the train split's score sd
         + execution_weight × regression(execution)        models with an execution head; known targets
         + cls_weight × Σ cross-entropy of the 5 dive heads  unknown labels (-1) left out
         + caption_weight × caption cross-entropy          tokens after <sos>, up to the first <eos>

The paper divides the score by 17, the sd of MTL-AQA's scores; aqa divides by the train split's sd (16.9
on MTL-AQA), and execution by its own sd. The weights are TrainConfig keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aqa_cli.config import TrainConfig
from aqa_cli.rules import HEADS


def regression_loss(pred: torch.Tensor, true: torch.Tensor, scale: float, mse_weight: float,
                    l1_weight: float) -> torch.Tensor:
    """MSE + L1 of a regressed value, both in units of `scale` (points per unit, so that a head in
    points and the cross-entropies weigh alike). pred, true (B,) → ()."""
    pred, true = pred.float() / scale, true / scale
    return mse_weight * F.mse_loss(pred, true) + l1_weight * F.l1_loss(pred, true)


def classification_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """The sum over the dive heads of their cross-entropies. logits {head: (B, K_head)}; labels (B, 5)
    long, columns in rules.HEADS order, -1 where unknown → (). A head with no known label in the batch
    adds 0, not NaN."""
    ces = []
    for head, head_logits in logits.items():
        target = labels[:, HEADS.index(head)]
        ces.append(F.cross_entropy(head_logits.float(), target, ignore_index=-1) if (target >= 0).any()
                   else head_logits.sum() * 0.0)
    return torch.stack(ces).sum()


def caption_loss(logits: torch.Tensor, caption: torch.Tensor, caption_len: torch.Tensor) -> torch.Tensor:
    """Teacher-forced captioning cross-entropy, averaged over the real tokens. logits (B, L-1, V)
    predicting caption[:, 1:]; caption (B, L) long ids `<sos> … <eos>` padded with `<eos>`; caption_len
    (B,) ids per caption before the padding → ()."""
    target = caption[:, 1:]
    steps = torch.arange(target.shape[1], device=target.device)
    mask = steps[None, :] < (caption_len[:, None] - 1)  # the words and the first <eos>
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    return (ce * mask.reshape(-1)).sum() / mask.sum().clamp(min=1)


def compute_loss(out: dict, batch: dict, weights: TrainConfig, score_scale: float,
                 exec_scale: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch and its terms as floats (for metrics.jsonl).

    out: the model's forward dict (score (B,), execution (B,), logits {head: (B, K)}, caption_logits
    (B, L-1, V), each where the model has it); batch: datasets/frames.py's collated batch (score (B,),
    execution (B,) NaN where unknown, labels (B, 5), caption (B, L), caption_len (B,)); score_scale and
    exec_scale: the train split's sd of each target, in points.
    """
    w = weights
    loss = regression_loss(out["score"], batch["score"], score_scale, w.score_mse, w.score_l1)
    parts = {"score": loss.item()}
    if "execution" in out:
        known = torch.isfinite(batch["execution"])
        if known.any():
            term = regression_loss(out["execution"][known], batch["execution"][known], exec_scale,
                                   w.score_mse, w.score_l1)
            loss = loss + w.execution_weight * term
            parts["execution"] = term.item()
    if out.get("logits"):
        term = classification_loss(out["logits"], batch["labels"])
        loss = loss + w.cls_weight * term
        parts["cls"] = term.item()
    if "caption_logits" in out:
        term = caption_loss(out["caption_logits"], batch["caption"], batch["caption_len"])
        loss = loss + w.caption_weight * term
        parts["caption"] = term.item()
    parts["loss"] = loss.item()
    return loss, parts
