"""The ground floor for files: atomic writes, writability checks, and loading untrusted files safely.

Every layer may import this module; it imports nothing of aqa but `errors`.

**Writes** go to a temporary file in the same folder, are fsynced and renamed over the target, so a
crash never leaves a half-written checkpoint, frames file or CSV.

**Untrusted pickles** (the MTL-AQA annotations, the I3D release, imported weights): a pickle is a small
program, and `pickle.load` may import and call anything, e.g. `os.system`. `safe_load` uses an
`Unpickler` whose `find_class` admits only the globals in an allow-list: the builtin containers and
scalars and what numpy needs to rebuild arrays, scalars and dtypes. Any other global raises
`UnsafePickleError` naming it, before anything is imported or called. Code that must read other objects
passes `DEFAULT_ALLOW | {...}`. Torch files are read with `load_tensors` (`weights_only=True`).
"""


from __future__ import annotations

import importlib
import io
import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from aqa_cli.errors import DataError, UnsafePickleError, UsageError, WeightsError

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


def check_writable(path: Path, flag: str) -> None:
    """UsageError naming `flag` unless a file can be written at `path`: not a folder, and its nearest
    existing parent a writable folder. For outputs checked before minutes of work, not after."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write there ({parent} is not a writable folder)")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`. The file gets
    the mode open() would give it (0666 less the umask), not mkstemp's private 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask. os.umask() can only read it by setting it, which races with threads that
    create files meanwhile, so Linux's /proc/self/status is read first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_tensors(path: Path, what: str, map_location: str = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never code.

    Any failure is a one-line WeightsError saying why, in place of torch's advice to retry with
    `weights_only=False` (which would run whatever the file holds).
    """
    import warnings
    import zipfile

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or non-torch files
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        # torch words a refused global two ways: "Unsupported global: GLOBAL x.y" and, for a module on its
        # block list (os, posix, subprocess...), "Trying to load unsupported GLOBAL x.y whose module ...".
        refused = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", text)
        # Past torch's preamble, which suggests weights_only=False: the reason follows it.
        text = text.partition("WeightsUnpickler error:")[2] or text.partition("from a trusted source.")[2] or text
        first = (text.strip().splitlines() or [type(exc).__name__])[0][:200]
        if refused:
            why = f"it holds a Python object ({refused.group(1)}), refused since loading it could run code"
        elif zipfile.is_zipfile(path):  # torch.save writes a zip holding .../data.pkl
            with zipfile.ZipFile(path) as z:
                torch_zip = any(name.endswith("data.pkl") for name in z.namelist())
            why = first if torch_zip else "a zip archive, not a PyTorch file"
        else:  # the legacy format is a pickle: protocol 2+ starts with 0x80
            with open(path, "rb") as f:
                head = f.read(4)
            if head == b"PK\x03\x04":  # a zip's start without its end
                why = "a damaged or incomplete zip archive: an interrupted download or copy?"
            else:
                why = first if head[:1] == b"\x80" else "not a PyTorch file"
        raise WeightsError(f"{path}: not a readable {what} ({why})") from None
