"""The restricted unpickler: loads every MTL-AQA pickle, refuses code, takes extra globals when asked."""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from aqa_cli.errors import DataError, UnsafePickleError
from aqa_cli.storage import DEFAULT_ALLOW, safe_load

SHARED_MTL_AQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtl-aqa"


class _Exploit:
    """Unpickling this calls os.system(command): exactly what a hostile annotation file would do."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_refuses_os_system_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"annotations": _Exploit(f"touch {marker}")}))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*(posix|os)\.system"):
        safe_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_and_builtin_data_round_trip(protocol):
    data = {(1, 2): {"scores": np.array([9.5, 9.0, 8.5]), "dd": np.float64(3.2), "n": np.int64(7)},
            "tags": {"a", "b"}, "frozen": frozenset({1}), "z": complex(1, 2), "raw": b"\x00\x01",
            "matrix": np.arange(12, dtype=np.uint8).reshape(3, 4), "dtype": np.dtype("<f4")}
    out = safe_load(pickle.dumps(data, protocol=protocol))
    assert out.keys() == data.keys()
    np.testing.assert_array_equal(out[(1, 2)]["scores"], data[(1, 2)]["scores"])
    assert out[(1, 2)]["dd"] == 3.2 and out[(1, 2)]["n"].dtype == np.int64
    assert out["matrix"].shape == (3, 4) and out["dtype"] == np.dtype("<f4")
    assert out["tags"] == {"a", "b"} and out["raw"] == b"\x00\x01"


def test_other_classes_are_refused_by_name():
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        safe_load(pickle.dumps(OrderedDict(a=1)))


def test_allow_list_is_extensible():
    blob = pickle.dumps(OrderedDict(a=np.zeros(2)))
    out = safe_load(blob, allow=DEFAULT_ALLOW | {("collections", "OrderedDict")})
    assert list(out) == ["a"]


def test_file_objects_and_broken_files(tmp_path):
    assert safe_load(io.BytesIO(pickle.dumps([1, 2]))) == [1, 2]
    with pytest.raises(DataError, match="not found"):
        safe_load(tmp_path / "missing.pkl")
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(pickle.dumps(list(range(100)))[:20])
    with pytest.raises(DataError, match=r"cut\.pkl: not a readable pickle"):
        safe_load(truncated)
    garbage = tmp_path / "text.pkl"
    garbage.write_text("hello, not a pickle")
    with pytest.raises(DataError, match="not a readable pickle"):
        safe_load(garbage)


def test_loads_every_mtl_aqa_pickle():
    if not SHARED_MTL_AQA.is_dir():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    paths = sorted(SHARED_MTL_AQA.rglob("*.pkl"))
    assert len(paths) == 21
    loaded = {p.relative_to(SHARED_MTL_AQA).as_posix(): safe_load(p) for p in paths}
    ready = "Ready_2_Use/MTL-AQA_split_0_data/"
    assert len(loaded[ready + "final_annotations_dict.pkl"]) == 1412
    assert len(loaded[ready + "train_split_0.pkl"]) == 1059
    assert len(loaded[ready + "test_split_0.pkl"]) == 353
    captions = loaded[ready + "final_captions_dict.pkl"]
    assert len(captions) == 1416 and next(iter(captions.values()))[0] == "<sos>"
    derived = loaded["derived/final_annotations_dict_with_dive_number.pkl"]
    assert all(len(rec["judge_scores"]) == 7 for rec in derived.values())


class _Call:
    """Unpickles as fn(*args): for globals on the allow-list called with hostile arguments."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("payload", [_Call(bytearray, 2**63),                     # OverflowError
                                     _Call(__import__("codecs").encode, "x", "no-such-codec")])  # LookupError
def test_allowed_globals_with_hostile_arguments_are_a_data_error(payload):
    with pytest.raises(DataError, match="not a readable pickle"):
        safe_load(pickle.dumps(payload, protocol=2))
