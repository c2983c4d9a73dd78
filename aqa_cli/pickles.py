"""Load untrusted pickles (dataset annotations, imported weights) without running their code.

A pickle is a small program: unpickling one with `pickle.load` may import and call anything, e.g.
`os.system`. The MTL-AQA release ships its annotations as pickles, so aqa reads them with an
`Unpickler` whose `find_class` admits only the globals in an allow-list: the builtin containers and
scalars (dicts, lists, tuples, strings and numbers need no global at all) and what numpy needs to
rebuild arrays, scalars and dtypes. Any other global raises `UnsafePickleError` naming it, before
anything is imported or called.

The allow-list is a parameter: code that must read other objects (say torch tensors in an imported
checkpoint) passes `DEFAULT_ALLOW | {("torch._utils", "_rebuild_tensor_v2"), ...}`.
"""

from __future__ import annotations

import importlib
import io
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from aqa_cli.errors import DataError, UnsafePickleError

# Builtins a plain-data pickle may name: containers without a pickle opcode of their own in old
# protocols (set, frozenset), numbers, and `_codecs.encode`, which protocol-2 pickles written by
# Python 3 use to rebuild `bytes`.
_BUILTIN_NAMES = ("set", "frozenset", "complex", "bytearray", "slice", "range")
BUILTINS_ALLOW: frozenset[tuple[str, str]] = frozenset(
    {(module, name) for module in ("builtins", "__builtin__") for name in _BUILTIN_NAMES}
    | {("_codecs", "encode")}
)  # "__builtin__": protocol 0-2 pickles name builtins the Python 2 way

# numpy moved `numpy.core` to `numpy._core` in 2.0; pickles name either, depending on who wrote them.
# `_frombuffer` rebuilds arrays in protocol 5 pickles.
NUMPY_ALLOW: frozenset[tuple[str, str]] = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")}
    | {(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")}
)

DEFAULT_ALLOW: frozenset[tuple[str, str]] = BUILTINS_ALLOW | NUMPY_ALLOW


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], allow: frozenset[tuple[str, str]], source: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._allow = allow
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allow:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global {module}.{name} (not on the allow-list; "
                "nothing was executed)",
                hint="only load pickles from sources you trust; aqa admits builtins and numpy only")
        if module.startswith("numpy.core."):
            # Resolve through numpy's current module so numpy>=2 does not warn about numpy.core.
            try:
                return getattr(importlib.import_module("numpy._core." + module[11:]), name)
            except ImportError:  # numpy < 2
                pass
        return super().find_class(module, name)


def safe_load(source: str | Path | IO[bytes] | bytes,
              allow: Iterable[tuple[str, str]] = DEFAULT_ALLOW,
              encoding: str = "ASCII") -> Any:
    """Unpickle `source` (a path, an open binary file or bytes), admitting only `allow` globals.

    `allow` holds `(module, name)` pairs. `encoding="latin1"` reads Python 2 pickles of numpy arrays.
    Raises `UnsafePickleError` for a global outside the list and `DataError` for a missing, truncated
    or malformed file; both name the source.
    """
    allowed = frozenset(allow)
    if isinstance(source, (bytes, bytearray)):
        return _load(io.BytesIO(source), allowed, "<bytes>", encoding)
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with path.open("rb") as f:
                return _load(f, allowed, str(path), encoding)
        except FileNotFoundError:
            raise DataError(f"pickle not found: {path}") from None
        except IsADirectoryError:
            raise DataError(f"{path} is a directory, expected a pickle file") from None
    return _load(source, allowed, getattr(source, "name", "<stream>"), encoding)


def _load(f: IO[bytes], allow: frozenset[tuple[str, str]], name: str, encoding: str) -> Any:
    try:
        return _RestrictedUnpickler(f, allow, name, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile or damaged pickle can raise anything (LookupError, OverflowError...)
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name}: not a readable pickle ({cause})") from None
