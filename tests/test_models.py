"""Models: C3D size, output shapes of every variant, gradients, decoding, config round trip, weights files.

Full-size networks are checked on the meta device (shapes without arithmetic); the arithmetic is
checked on the small widths with small inputs, to keep the file fast on 2 CPU cores.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from aqa_cli.config import DEFAULT_CLASSES, ModelConfig, to_dict
from aqa_cli.errors import ConfigError, WeightsError
from aqa_cli.models import AQAModel, build_model, load_backbone_weights, save_backbone_weights
from aqa_cli.models.c3d import C3D
from aqa_cli.text import EOS_ID

VOCAB = 23

# Small but real variants: (name, config). Inputs are (B, N, 3, clip_len, crop, crop).
SMALL = {
    "c3d-small": dict(backbone="c3d", width_divisor=8, feature_dim=64, crop_size=32),
    "c3d-small-bn": dict(backbone="c3d", width_divisor=8, feature_dim=64, crop_size=32, batchnorm=True),
    "mscadc-small": dict(backbone="mscadc", width_divisor=4, crop_size=32),
}


def small_cfg(name: str, task: str = "mtl", **kw) -> ModelConfig:
    return ModelConfig(**{**SMALL[name], "task": task, "vocab_size": VOCAB, "caption_hidden": 32,
                          "caption_embed": 16, **kw})


def clips_for(cfg: ModelConfig, b: int = 2, n: int = 2) -> torch.Tensor:
    return torch.randn(b, n, 3, cfg.clip_len, cfg.crop_size, cfg.crop_size)


def shapes(out: dict) -> dict:
    return {k: (tuple(v.shape) if torch.is_tensor(v) else {h: tuple(x.shape) for h, x in v.items()})
            for k, v in out.items()}


def param_shapes(model: torch.nn.Module) -> dict:
    return {k: v.shape for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_c3d_convolutions_hold_the_published_parameter_count():
    with torch.device("meta"):
        c3d = C3D()
    convs = {n: p.numel() for n, p in c3d.named_parameters()}
    assert sum(convs.values()) == 27_655_936
    assert list(convs)[:2] == ["conv1.weight", "conv1.bias"] and list(convs)[-1] == "conv5b.bias"


def test_c3d_pool5_gives_8192_features_per_16x112x112_clip():
    with torch.device("meta"):
        maps = C3D()(torch.empty(3, 3, 16, 112, 112))
    assert tuple(maps.shape) == (3, 512, 1, 4, 4)
    assert C3D().out_features(16, 112) == 8192
    small = C3D(width_divisor=8).eval()
    with torch.no_grad():
        feats = small(torch.randn(1, 3, 16, 112, 112)).flatten(1)
    assert feats.shape == (1, 1024) and feats.abs().sum() > 0


@pytest.mark.parametrize("task", ["stl", "mtl"])
def test_full_size_models_have_the_papers_shapes(task):
    with torch.device("meta"):
        c3d = build_model(ModelConfig(task=task, vocab_size=VOCAB))
        out = c3d(torch.empty(2, 6, 3, 16, 112, 112),
                  torch.zeros(2, 7, dtype=torch.long) if task == "mtl" else None)
        mscadc = build_model(ModelConfig(backbone="mscadc", task=task, crop_size=180, vocab_size=VOCAB))
        trunk = mscadc.backbone(torch.empty(1, 3, 16, 180, 180))
        out2 = mscadc(torch.empty(2, 1, 3, 16, 180, 180))
    assert tuple(trunk.shape) == (1, 256, 2, 20, 20)
    for o in (out, out2):
        assert tuple(o["score"].shape) == (2,)
    assert tuple(c3d.heads.fc6[0].weight.shape) == (4096, 8192)
    if task == "mtl":
        assert {k: v.shape[1] for k, v in out["logits"].items()} == DEFAULT_CLASSES
        assert tuple(out["caption_logits"].shape) == (2, 6, VOCAB)
        assert c3d.captioner.feature_dim == 8192 and mscadc.captioner.feature_dim == 1200
        assert tuple(out2["execution"].shape) == (2,)
    else:
        assert set(out) == set(out2) == {"score"}
        assert c3d.captioner is None and mscadc.captioner is None


@pytest.mark.parametrize("name,task", list(itertools.product(SMALL, ["stl", "mtl"])))
def test_small_models_output_shapes_and_gradients_reach_the_first_conv(name, task):
    cfg = small_cfg(name, task)
    model = build_model(cfg)
    captions = torch.randint(0, VOCAB, (2, 9)) if task == "mtl" else None
    # MSCADC's context heads cost ~0.5 GFLOP per clip each whatever the input size (their padding of 9
    # sets the map size): one clip per video keeps the test fast.
    out = model(clips_for(cfg, n=1 if cfg.backbone == "mscadc" else 2), captions)
    expected = {"score": (2,)}
    if task == "mtl":
        expected |= {"execution": (2,), "logits": {k: (2, v) for k, v in DEFAULT_CLASSES.items()},
                     "caption_logits": (2, 8, VOCAB)}
    assert shapes(out) == expected
    loss = out["score"].sum()
    if task == "mtl":
        loss = loss + out["execution"].sum() + out["caption_logits"].logsumexp(-1).sum()
        loss = loss + sum(v.logsumexp(-1).sum() for v in out["logits"].values())
    loss.backward()
    grad = model.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_batchnorm_option_adds_one_norm_per_conv_and_keeps_the_conv_names():
    plain, bn = build_model(small_cfg("c3d-small")), build_model(small_cfg("c3d-small-bn"))
    norms = [m for m in bn.backbone.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert [n.num_features for n in norms] == list(bn.backbone.widths)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in plain.backbone.modules())
    conv_keys = {k for k in bn.backbone.state_dict() if k.startswith("conv")}
    assert conv_keys == set(plain.backbone.state_dict())


def test_stem_time_stride_2_maps_a_clip_of_twice_the_frames_to_the_same_shapes():
    half = build_model(small_cfg("c3d-small-bn"))
    full = build_model(small_cfg("c3d-small-bn", clip_len=32, stem_time_stride=2))
    assert full.backbone.conv1.stride == (2, 1, 1)
    assert param_shapes(full) == param_shapes(half)
    assert shapes(full(clips_for(full.config))) == shapes(half(clips_for(half.config)))
    full.eval()
    clips = clips_for(full.config, b=1, n=1)
    moved = clips.clone()
    moved[..., 13, 9, 9] += 5.0  # an odd frame, which taking every second frame alone would skip
    with torch.no_grad():
        assert not torch.equal(full(clips)["score"], full(moved)["score"])


def test_temporal_head_keeps_time_in_order_and_sums_what_fires_over_the_steps():
    plain = build_model(small_cfg("c3d-small-bn"))
    temporal = build_model(small_cfg("c3d-small-bn", head="temporal")).eval()
    clips = clips_for(temporal.config)  # 2 clips of 16 frames: 4 pool5 steps each instead of 1
    assert temporal._maps(clips).shape[3] == 4 and plain._maps(clips).shape[3] == 1
    out = temporal(clips, torch.randint(0, VOCAB, (2, 5)))
    assert shapes(out) == {**shapes(plain(clips, torch.randint(0, VOCAB, (2, 5)))), "caption_logits": (2, 4, VOCAB)}
    # The steps reach fc6 in time order: clip 0's 4 steps, then clip 1's (maps of 3 channels, 1x1).
    heads, seen = temporal.heads, []
    heads.fc6 = torch.nn.Sequential(torch.nn.Conv1d(3, 1, 3, padding=1)).requires_grad_(False)
    heads.fc6.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    maps = torch.arange(2 * 2 * 3 * 4 * 1.0).reshape(2, 2, 3, 4, 1, 1)
    heads.video_feature(maps)
    assert torch.equal(seen[0][0, :, 5], maps[0, 1, :, 1, 0, 0])  # step 5 = clip 1, step 1
    # A feature on in two steps counts twice what it does in one: the mean over steps is a sum.
    torch.nn.init.constant_(heads.fc6[0].weight, 1.0), torch.nn.init.zeros_(heads.fc6[0].bias)
    once, twice = torch.zeros(1, 2, 3, 4, 1, 1), torch.zeros(1, 2, 3, 4, 1, 1)
    once[0, 0, 0, 1] = 1.0
    twice[0, :, 0, 1] = 1.0  # steps 1 and 5: inside the sequence (no padding) and 4 steps apart
    base = heads.video_feature(torch.zeros_like(once))
    assert torch.allclose(heads.video_feature(twice) - base, 2 * (heads.video_feature(once) - base))


def test_options_switch_heads_off_and_classes_come_from_the_config():
    cfg = small_cfg("c3d-small", execution=False, caption=False, classes={"position": 3, "odd": 5})
    out = build_model(cfg).eval()(clips_for(cfg))
    assert shapes(out) == {"score": (2,), "logits": {"position": (2, 3), "odd": (2, 5)}}


def test_clips_run_as_one_batch_and_match_clip_by_clip():
    cfg = small_cfg("c3d-small")
    model = build_model(cfg).eval()
    clips = clips_for(cfg, b=2, n=3)
    with torch.no_grad():
        batched = model.clip_features(clips)
        one_by_one = torch.stack([torch.stack([model.backbone(clips[b, i:i + 1]).flatten(1)[0]
                                               for i in range(3)]) for b in range(2)])
    assert batched.shape == (2, 3, 256)
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)


def test_c3d_avg_averages_clips_so_their_order_does_not_matter():
    cfg = small_cfg("c3d-small", task="stl")
    model = build_model(cfg).eval()
    clips = clips_for(cfg, b=1, n=4)
    with torch.no_grad():
        a = model(clips)["score"]
        b = model(clips[:, [2, 0, 3, 1]])["score"]
        c = model(clips[:, :1])["score"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a, c)


def test_mscadc_averages_per_clip_outputs_over_clips():
    cfg = small_cfg("mscadc-small", execution=False, caption=False)
    model = build_model(cfg).eval()
    clips = clips_for(cfg, b=1, n=2)
    with torch.no_grad():
        both = model(clips)
        each = [model(clips[:, i:i + 1]) for i in range(2)]
    torch.testing.assert_close(both["score"], (each[0]["score"] + each[1]["score"]) / 2)
    torch.testing.assert_close(both["logits"]["ss_no"],
                               (each[0]["logits"]["ss_no"] + each[1]["logits"]["ss_no"]) / 2)
    assert model.clip_features(clips).shape == (1, 2, 64)


def _valid(ids: torch.Tensor, max_len: int) -> None:
    assert ids.dtype == torch.long and ids.dim() == 2 and ids.shape[1] <= max_len - 1
    assert ((ids >= 0) & (ids < VOCAB)).all()
    for row in ids.tolist():  # after the first <eos>, only <eos> (padding)
        if EOS_ID in row:
            assert set(row[row.index(EOS_ID):]) == {EOS_ID}


@pytest.mark.parametrize("name", list(SMALL))
def test_greedy_and_beam_decoding_give_valid_sequences(name):
    cfg = small_cfg(name)
    model = build_model(cfg).eval()
    clips = clips_for(cfg, b=2, n=1)
    greedy = model.generate(clips, max_len=12)
    beam4 = model.generate(clips, max_len=12, beam=4)
    with torch.no_grad():
        feats = model.heads.caption_features(model._maps(clips))
    for ids in (greedy, beam4):
        _valid(ids, 12)
    assert torch.equal(model.captioner.beam_search(feats, beam=1, max_len=12), greedy)
    _valid(model.captioner.greedy(feats), cfg.caption_max_len)  # default length: the config's


@pytest.mark.parametrize("name", list(SMALL))
def test_predict_equals_forward_plus_generate(name):
    cfg = small_cfg(name)
    model = build_model(cfg).eval()
    clips = clips_for(cfg, b=2, n=1)
    with torch.no_grad():
        out = model(clips)
    for beam in (1, 3):
        got = model.predict(clips, max_len=10, beam=beam)
        assert set(got) == set(out) | {"caption"}
        torch.testing.assert_close(got["score"], out["score"])
        torch.testing.assert_close(got["execution"], out["execution"])
        for head, logits in out["logits"].items():
            torch.testing.assert_close(got["logits"][head], logits)
        assert torch.equal(got["caption"], model.generate(clips, max_len=10, beam=beam))
    stl = build_model(small_cfg(name, task="stl")).eval()
    assert set(stl.predict(clips)) == {"score"}


def _logprob_sums(model: AQAModel, feats: torch.Tensor, sequences: list[list[int]]) -> torch.Tensor:
    """Summed log-probability of each sequence of ids (after <sos>) for one video, by teacher forcing."""
    width = max(map(len, sequences))
    ids = torch.tensor([[1, *w] + [EOS_ID] * (width - len(w)) for w in sequences])
    with torch.no_grad():
        logp = model.captioner(feats.expand(len(sequences), -1, -1), ids).log_softmax(-1)
    per_word = logp.gather(2, ids[:, 1:, None])[..., 0]
    lengths = torch.tensor([len(w) for w in sequences])
    return (per_word * (torch.arange(width) < lengths[:, None])).sum(1)


def test_wide_beam_finds_the_best_caption_of_an_exhaustive_search():
    # 5 words, at most 3 emitted ids: few enough hypotheses (5³ = 125) to enumerate them all.
    cfg = small_cfg("c3d-small", vocab_size=5)
    model = build_model(cfg).eval()
    with torch.no_grad():  # make <eos> less likely, so that ranking by sum or by mean differ
        model.captioner.out.bias[EOS_ID] -= 1.5
    clips = clips_for(cfg, b=4, n=2)
    with torch.no_grad():
        feats = model.heads.caption_features(model._maps(clips))
    sequences = [list(w) for n in range(1, 4) for w in itertools.product(range(5), repeat=n)
                 if EOS_ID not in w[:-1] and (n == 3 or w[-1] == EOS_ID)]  # what decoding can emit
    lengths = torch.tensor([len(w) for w in sequences])
    found = model.captioner.beam_search(feats, beam=125, max_len=4).tolist()
    differs = False
    for row in range(4):
        sums = _logprob_sums(model, feats[row:row + 1], sequences)
        best = sequences[int((sums / lengths).argmax())]
        differs |= best != sequences[int(sums.argmax())]
        assert found[row][: len(best)] == best and set(found[row][len(best):]) <= {EOS_ID}
    assert differs, "the test data should tell the mean-log-probability choice from the summed one"


def test_build_model_from_a_config_dict_round_trip():
    cfg = small_cfg("mscadc-small", classes={"position": 3, "armstand": 2})
    a, b = build_model(cfg), build_model(to_dict(cfg))
    assert b.config == cfg
    assert param_shapes(a) == param_shapes(b)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    clips = clips_for(cfg, b=1, n=1)
    with torch.no_grad():
        torch.testing.assert_close(a(clips)["score"], b(clips)["score"])


@pytest.mark.parametrize("bad,needle", [
    (dict(backbone="resnet"), "backbone"), (dict(task="both"), "task"), (dict(width_divisor=3), "width_divisor"),
    (dict(vocab_size=0), "vocab_size"), (dict(crop_size=8), "crop_size"), (dict(classes={"position": 1}), "classes"),
    (dict(stem_time_stride=3), "stem_time_stride"),
    (dict(backbone="mscadc", width_divisor=4, stem_time_stride=2), "stem_time_stride"),
    (dict(stem_time_stride=2), "after the stem's time stride"),
    (dict(head="lstm"), "head"), (dict(backbone="mscadc", width_divisor=4, head="temporal"), "head"),
])
def test_build_model_rejects_impossible_configs(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        build_model(small_cfg("c3d-small", **bad))


def test_backbone_weights_file_round_trip_and_pretrained_config(tmp_path):
    source = build_model(small_cfg("c3d-small"))
    path = tmp_path / "c3d.pt"
    save_backbone_weights(source.backbone.state_dict(), path, arch="c3d")
    target = build_model(small_cfg("c3d-small"))
    assert not torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)
    load_backbone_weights(target, path)
    for k, v in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[k], v)
    via_config = build_model(small_cfg("c3d-small", pretrained=str(path)))
    assert torch.equal(via_config.backbone.conv5b.bias, source.backbone.conv5b.bias)
    skipped = build_model(small_cfg("c3d-small", pretrained=str(tmp_path / "gone.pt")), load_pretrained=False)
    assert isinstance(skipped, AQAModel)


def test_backbone_weights_errors_name_the_mismatch(tmp_path):
    small = build_model(small_cfg("c3d-small")).backbone.state_dict()
    path = tmp_path / "small.pt"
    save_backbone_weights(small, path, arch="c3d")
    wider = build_model(small_cfg("c3d-small", width_divisor=4))
    with pytest.raises(WeightsError, match=r"conv1\.weight \(8, 3, 3, 3, 3\) vs \(16, 3, 3, 3, 3\)"):
        load_backbone_weights(wider, path)
    partial = tmp_path / "partial.pt"
    save_backbone_weights({k: v for k, v in small.items() if k != "conv5b.bias"}, partial, arch="c3d")
    with pytest.raises(WeightsError, match=r"missing: conv5b\.bias"):
        load_backbone_weights(build_model(small_cfg("c3d-small")), partial)
    with pytest.raises(WeightsError, match="'c3d', the model is 'mscadc'"):
        load_backbone_weights(build_model(small_cfg("mscadc-small")), path)
    with pytest.raises(WeightsError, match="not found"):
        build_model(small_cfg("c3d-small", pretrained=str(tmp_path / "gone.pt")))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="not a readable"):
        load_backbone_weights(C3D(8), junk)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(WeightsError, match="not an aqa backbone file"):
        load_backbone_weights(C3D(8), tmp_path / "plain.pt")


def test_clips_of_the_wrong_size_are_refused_with_the_expected_shape():
    cfg = small_cfg("c3d-small", task="stl")
    with pytest.raises(ValueError, match=r"\(B, N, 3, 16, 32, 32\)"):
        build_model(cfg)(torch.randn(1, 2, 3, 16, 48, 48))


def test_i3d_backbone_carries_the_mtl_heads_and_loads_an_imported_kinetics_file(tmp_path):
    """`model.backbone: i3d`: the C3D-AVG heads and captioner read the 1024-d I3D feature of each clip;
    `model.pretrained` takes the file `aqa weights import-i3d` writes (the I3D's own state dict)."""
    import torch

    from aqa_cli.config import load_config
    from aqa_cli.models import build_model
    from aqa_cli.models.c3d import save_backbone_weights
    from aqa_cli.models.i3d import I3D

    torch.manual_seed(0)
    kinetics = I3D().eval()
    save_backbone_weights(kinetics.state_dict(), tmp_path / "i3d.pt", arch="i3d")
    cfg = load_config("i3d-mtl", ["model.crop_size=32", "model.vocab_size=10", f"model.pretrained={tmp_path / 'i3d.pt'}"])
    model = build_model(cfg.model).eval()
    first = "body.Conv3d_1a_7x7.conv.weight"
    assert torch.equal(model.backbone.state_dict()[first], kinetics.state_dict()[first])
    clips = torch.rand(2, 3, 3, 16, 32, 32) * 2 - 1
    out = model(clips, torch.randint(0, 10, (2, 5)))
    assert out["score"].shape == (2,) and out["logits"]["tw_no"].shape == (2, 8)
    assert out["caption_logits"].shape == (2, 4, 10)
    with torch.no_grad():  # the clip feature is the I3D's own, averaged over the clips by the heads
        assert torch.allclose(model.clip_features(clips)[0, 1], kinetics.features(clips[0, 1:2])[0], atol=1e-5)
