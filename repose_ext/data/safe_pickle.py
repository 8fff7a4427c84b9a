"""Reading the pickled dataset files without running code from them.

The H36M pickle of MotionBERT and the VideoPose3D / MPI-INF-3DHP npz files hold pickled Python objects (dicts of
NumPy arrays). A plain ``pickle.load`` runs whatever a file asks for; here the unpickler may only build NumPy arrays,
dtypes and scalars and plain containers (dict, list, tuple, set, str, numbers, bytes). Anything else is refused
with :class:`UnsafePickleError` naming the file and the object it asked for.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any, Dict

import numpy as np

from .errors import DataFormatError

_ALLOWED = {
    "builtins": {"dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool", "bytes", "bytearray",
                 "complex", "slice"},
    "collections": {"OrderedDict", "defaultdict"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
}
_DTYPE_CLASSES = "numpy.dtypes"  # numpy >= 1.25 pickles dtypes as numpy.dtypes.Float32DType etc.


class UnsafePickleError(DataFormatError):
    """A pickled dataset file asked for an object outside the allow-list."""


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if name in _ALLOWED.get(module, ()) or (module == _DTYPE_CLASSES and name.endswith("DType")):
            return super().find_class(module, name)
        raise UnsafePickleError(f"{self.source}: refused to unpickle {module}.{name} (only NumPy arrays and plain "
                                f"containers are allowed in a dataset file); is this the right file?")


def load_pickle(path: str) -> Any:
    """Unpickle a dataset file with the allow-list."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        try:
            return _AllowListUnpickler(f, name).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            raise DataFormatError(f"{name}: not a readable pickle ({exc})") from None


def load_npz(path: str) -> Dict[str, Any]:
    """Every array of an npz file; object arrays are unpickled with the allow-list."""
    name = os.fspath(path)
    out: Dict[str, Any] = {}
    try:
        with zipfile.ZipFile(name) as archive:
            for member in archive.namelist():
                key = member[:-4] if member.endswith(".npy") else member
                raw = archive.read(member)
                stream = io.BytesIO(raw)
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    _, _, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    _, _, dtype = np.lib.format.read_array_header_2_0(stream)
                if dtype.hasobject:  # the array itself was pickled after the header
                    out[key] = _AllowListUnpickler(stream, f"{name}[{key!r}]").load()
                else:
                    out[key] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except UnsafePickleError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise DataFormatError(f"{name}: not a readable npz file ({exc})") from None
    return out
