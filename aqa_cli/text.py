"""Commentary text: tokenizer and vocabulary.

Captions are lists of word tokens, like the MTL-AQA release's (`['<sos>', 'and', 'a', 'half', ...]`).
aqa lower-cases and keeps words with inner apostrophes or hyphens ("that's", "rip-entry") and numbers
("3.2"), dropping other punctuation, so that "Tuck," and "tuck" are one word to the captioner.

Token ids: 0 `<eos>` (also used as padding; losses mask by length), 1 `<sos>`, 2 `<unk>`, as in the
MTL-AQA vocabulary where `<eos>` is 0 and `<sos>` is 1.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

EOS, SOS, UNK = "<eos>", "<sos>", "<unk>"
SPECIALS = (EOS, SOS, UNK)
EOS_ID, SOS_ID, UNK_ID = 0, 1, 2

_WORD = re.compile(r"<[a-z]+>|\d+(?:[.,/]\d+)*|[a-z]+(?:['’-][a-z]+)*")


def tokenize(text: str) -> list[str]:
    """Split a sentence into lower-case word tokens (no `<sos>`/`<eos>`)."""
    return [t.replace("’", "'") for t in _WORD.findall(text.lower()) if t not in (EOS, SOS)]


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into a readable sentence: capitalised, ending with a full stop."""
    words = [t for t in tokens if t not in SPECIALS]
    if not words:
        return ""
    text = " ".join(words)
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


@dataclass
class Vocabulary:
    """Word ↔ id mapping; `words[i]` is the token with id i. Stored in checkpoints as a list."""

    words: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.words[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[str | list[str]], min_count: int = 1) -> Vocabulary:
        """Vocabulary of every token seen at least `min_count` times, most frequent first."""
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(tokenize(caption) if isinstance(caption, str) else caption)
        ranked = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                        key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + ranked)

    def encode(self, caption: str | list[str], max_len: int | None = None) -> list[int]:
        """Ids `<sos> w1 ... wn <eos>`, cut so the whole sequence has at most `max_len` ids."""
        tokens = tokenize(caption) if isinstance(caption, str) else list(caption)
        ids = [self._index.get(t, UNK_ID) for t in tokens if t not in (SOS, EOS)]
        if max_len is not None:
            ids = ids[: max(0, max_len - 2)]
        return [SOS_ID, *ids, EOS_ID]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to (not including) the first `<eos>`, skipping `<sos>`."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i != SOS_ID:
                out.append(self.words[i] if 0 <= i < len(self.words) else UNK)
        return out
