"""S2VT-style commentary generator (Venugopalan et al. 2015), as MTL-AQA uses it.

Two stacked GRUs (each `layers` deep, dropout between layers):

- encoding: the video GRU reads the per-clip features (B, N, D) one clip per step; the word GRU reads
  its outputs next to a zero word embedding.
- decoding: the video GRU reads zero features; the word GRU reads its outputs next to the embedding of
  the previous word, and a linear layer turns its output into vocabulary logits.

Token ids follow `aqa_cli.text`: 0 `<eos>` (also padding), 1 `<sos>`. A caption of the training data is
`<sos> w1 … wn <eos>` (at most `max_len` ids); teacher forcing feeds ids[:-1] and predicts ids[1:].
Decoding emits at most `max_len - 1` ids after `<sos>`, so generated and training captions have the
same maximum length.
"""

from __future__ import annotations

import torch
from torch import nn

from aqa_cli.text import EOS_ID, SOS_ID


class Captioner(nn.Module):
    """Per-clip features (B, N, D) → caption logits (teacher forcing) or caption ids (decoding)."""

    def __init__(self, feature_dim: int, vocab_size: int, hidden: int = 512, embed: int = 512,
                 layers: int = 2, dropout: float = 0.5, max_len: int = 100):
        super().__init__()
        self.feature_dim, self.max_len = feature_dim, max_len
        # nn.GRU warns when dropout is set on a single layer (there is nowhere to apply it).
        rnn_dropout = dropout if layers > 1 else 0.0
        self.video_rnn = nn.GRU(feature_dim, hidden, layers, batch_first=True, dropout=rnn_dropout)
        self.word_rnn = nn.GRU(hidden + embed, hidden, layers, batch_first=True, dropout=rnn_dropout)
        self.embed = nn.Embedding(vocab_size, embed)
        self.out = nn.Linear(hidden, vocab_size)

    def _encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the clips: feats (B, N, D) → GRU states (layers, B, hidden) × 2."""
        video_out, h_video = self.video_rnn(feats)
        no_words = feats.new_zeros(*feats.shape[:2], self.embed.embedding_dim)
        _, h_word = self.word_rnn(torch.cat([video_out, no_words], dim=2))
        return h_video, h_word

    def _decode(self, words: torch.Tensor, h_video: torch.Tensor, h_word: torch.Tensor):
        """Decoding steps for given input words (M, S) → logits (M, S, V) and the new states."""
        no_video = h_video.new_zeros(*words.shape, self.feature_dim)
        video_out, h_video = self.video_rnn(no_video, h_video)
        word_out, h_word = self.word_rnn(torch.cat([video_out, self.embed(words)], dim=2), h_word)
        return self.out(word_out), h_video, h_word

    def forward(self, feats: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: feats (B, N, D), captions (B, L) long ids → logits (B, L-1, V) for ids[1:]."""
        h_video, h_word = self._encode(feats)
        logits, _, _ = self._decode(captions[:, :-1], h_video, h_word)
        return logits

    @torch.no_grad()
    def greedy(self, feats: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
        """Most likely word at each step: feats (B, N, D) → ids (B, L), L <= max_len - 1, 0-padded."""
        steps = (max_len or self.max_len) - 1
        h_video, h_word = self._encode(feats)
        words = torch.full((feats.shape[0], 1), SOS_ID, dtype=torch.long, device=feats.device)
        done = torch.zeros(feats.shape[0], dtype=torch.bool, device=feats.device)
        out = []
        for _ in range(steps):
            logits, h_video, h_word = self._decode(words, h_video, h_word)
            words = logits[:, -1].argmax(-1, keepdim=True).masked_fill(done[:, None], EOS_ID)
            out.append(words)
            done |= words[:, 0] == EOS_ID
            if done.all():
                break
        return torch.cat(out, dim=1) if out else words.new_zeros(feats.shape[0], 0)

    @torch.no_grad()
    def beam_search(self, feats: torch.Tensor, beam: int = 5, max_len: int | None = None) -> torch.Tensor:
        """Beam search over summed log-probabilities: feats (B, N, D) → ids (B, L), 0-padded.

        Each video keeps `beam` hypotheses; a finished one (it emitted `<eos>`) keeps its score and
        only extends with `<eos>`. The hypothesis returned has the best mean log-probability per
        emitted word (counting its `<eos>`), so longer captions are not penalised for their length.
        With beam=1 this is exactly `greedy`.
        """
        steps = (max_len or self.max_len) - 1
        b, k = feats.shape[0], beam
        h_video, h_word = self._encode(feats)
        h_video, h_word = h_video.repeat_interleave(k, dim=1), h_word.repeat_interleave(k, dim=1)
        scores = feats.new_full((b, k), float("-inf"))
        scores[:, 0] = 0.0  # all beams start identical: expand only the first at step one
        words = torch.full((b * k, 1), SOS_ID, dtype=torch.long, device=feats.device)
        done = torch.zeros(b, k, dtype=torch.bool, device=feats.device)
        lengths = torch.zeros(b, k, device=feats.device)
        history = words.new_zeros(b, k, 0)
        for _ in range(steps):
            logits, h_video, h_word = self._decode(words, h_video, h_word)
            logp = logits[:, -1].log_softmax(-1).view(b, k, -1)
            vocab = logp.shape[-1]
            finished = torch.full_like(logp, float("-inf"))
            finished[..., EOS_ID] = 0.0
            logp = torch.where(done[..., None], finished, logp)
            scores, flat = (scores[..., None] + logp).view(b, -1).topk(k, dim=1)
            origin, token = flat // vocab, flat % vocab
            lengths = lengths.gather(1, origin) + (~done.gather(1, origin)).float()
            done = done.gather(1, origin) | (token == EOS_ID)
            history = torch.cat([history.gather(1, origin[..., None].expand_as(history)),
                                 token[..., None]], dim=2)
            rows = (origin + torch.arange(b, device=feats.device)[:, None] * k).view(-1)
            h_video, h_word = h_video[:, rows], h_word[:, rows]
            words = token.view(-1, 1)
            if done.all():
                break
        best = (scores / lengths.clamp(min=1)).argmax(1)
        ids = history[torch.arange(b, device=feats.device), best]
        # Trim columns that are padding in every row (all hypotheses ended earlier).
        keep = int((ids != EOS_ID).sum(1).max().item()) + 1 if ids.numel() else 0
        return ids[:, : min(keep, ids.shape[1])]
