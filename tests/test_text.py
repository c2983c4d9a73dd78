"""Commentary tokenizer and vocabulary."""

from aqa_cli.text import EOS_ID, SOS_ID, UNK_ID, Vocabulary, detokenize, tokenize


def test_tokenize_lowercases_and_keeps_inner_apostrophes_hyphens_numbers():
    assert tokenize("That's a RIP-entry, 3.5 somersaults!") == ["that's", "a", "rip-entry", "3.5", "somersaults"]
    assert tokenize("<sos> Tuck position <eos>") == ["tuck", "position"]


def test_vocabulary_encode_decode_round_trip_and_unknown_words():
    vocab = Vocabulary.build(["a tight tuck", "a big splash", "a rip"], min_count=1)
    assert vocab.words[:3] == ["<eos>", "<sos>", "<unk>"]
    assert vocab.words[3] == "a"  # most frequent first
    ids = vocab.encode("A tight splash")
    assert ids[0] == SOS_ID and ids[-1] == EOS_ID
    assert vocab.decode(ids) == ["a", "tight", "splash"]
    assert vocab.encode("a wobbly entry")[2:4] == [UNK_ID, UNK_ID]
    assert detokenize(vocab.decode(ids)) == "A tight splash."


def test_encode_respects_max_len_and_min_count():
    vocab = Vocabulary.build(["one two two three three three"], min_count=2)
    assert "one" not in vocab.words and "three" in vocab.words
    assert len(vocab.encode("three two three two three", max_len=4)) == 4
    assert Vocabulary(vocab.words).words == vocab.words
