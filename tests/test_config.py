"""Config dataclasses: YAML loading, --set overrides with type checks and close-key suggestions."""

import pytest

from aqa_cli.config import ModelConfig, RunConfig, apply_overrides, from_dict, load_config, to_dict
from aqa_cli.errors import ConfigError


def test_override_types_are_checked_and_applied():
    cfg = apply_overrides(RunConfig(), ["train.lr=3e-4", "train.epochs=7", "model.caption=false",
                                        "data.resize=[160, 120]"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.epochs == 7
    assert cfg.model.caption is False
    assert cfg.data.resize == (160, 120)


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert apply_overrides(RunConfig(), ["train.lr=1"]).train.lr == 1.0
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(RunConfig(), ["train.epochs=2.5"])
    with pytest.raises(ConfigError, match="expected bool"):
        apply_overrides(RunConfig(), ["model.caption=maybe"])


def test_tuple_and_dict_overrides_are_checked_element_by_element():
    cfg = apply_overrides(RunConfig(), ["data.mean=[0.5, 0.5, 0.5]", "model.classes={position: 3, armstand: 2}"])
    assert cfg.data.mean == (0.5, 0.5, 0.5) and cfg.model.classes == {"position": 3, "armstand": 2}
    with pytest.raises(ConfigError, match=r"expected tuple\[float, float, float\]"):
        apply_overrides(RunConfig(), ["data.mean=[0.5, 0.5]"])
    with pytest.raises(ConfigError, match="expected float"):
        apply_overrides(RunConfig(), ["data.std=[a, b, c]"])
    with pytest.raises(ConfigError, match=r"expected dict\[str, int\]"):
        apply_overrides(RunConfig(), ["model.classes=3"])
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(RunConfig(), ["model.classes={position: many}"])


def test_misspelled_key_names_the_closest_key():
    with pytest.raises(ConfigError, match="did you mean 'train.lr'"):
        apply_overrides(RunConfig(), ["train.lrr=0.1"])
    with pytest.raises(ConfigError, match="did you mean 'model.backbone'"):
        apply_overrides(RunConfig(), ["model.backbon=c3d"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(RunConfig(), ["train.lr"])


def test_yaml_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  backbone: mscadc\n  crop_size: 180\ntrain:\n  lr: 0.001\n")
    cfg = load_config(path, ["train.batch_size=4"])
    assert (cfg.model.backbone, cfg.model.crop_size, cfg.train.lr, cfg.train.batch_size) == ("mscadc", 180, 0.001, 4)
    assert from_dict(ModelConfig, to_dict(cfg.model)) == cfg.model

    path.write_text("model:\n  backbnoe: c3d\n")
    with pytest.raises(ConfigError, match="did you mean 'backbone'"):
        load_config(path)
    path.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no config named 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_file_errors_name_the_file_key_and_line(tmp_path, monkeypatch):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: one\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train\.epochs: expected int, got 'one'"):
        load_config(path)
    path.write_text("train:\n  epochs: 3\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"--set train\.epochs: expected int, got 'x'"):
        apply_overrides(RunConfig(), ["train.epochs=x"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").write_text("train:\n  epochs: 7\n")  # a file named like a shipped config
    assert load_config("./smoke").train.epochs == 7
    assert load_config("smoke").train.epochs != 7
