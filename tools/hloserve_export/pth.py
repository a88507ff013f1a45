"""Reads the tensor shapes of a torch.save'd state_dict without importing torch.

Why: the converter must reject a state_dict whose head does not match `num_classes` before any
work, in dry runs too, and a dry run must not pay torch's import. A .pth written by torch.save
(the zip format, torch >= 1.6) is a zip holding data.pkl; the pickle names each tensor through
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...). We unpickle it with an
allow-list Unpickler that turns those calls into TensorInfo records and refuses every other
global, so reading a file never runs code from it. Tensor data is never read.
"""
from __future__ import annotations

import dataclasses
import pickle
import zipfile
from pathlib import Path


class PthError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    shape: tuple
    dtype: str  # torch storage name, e.g. "FloatStorage"


@dataclasses.dataclass(frozen=True)
class _Storage:
    dtype: str


class _StorageType:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    dtype = storage.dtype if isinstance(storage, _Storage) else "?"
    return TensorInfo(tuple(int(d) for d in size), dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


def _ordered_dict(*args):
    import collections
    return collections.OrderedDict(*args)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "torch" and name in ("float32", "float16", "bfloat16", "float64", "int64",
                                           "int32", "uint8", "int8", "bool"):
            return name
        raise PthError(f"unsupported object {module}.{name} in the pickle")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel)
        if isinstance(pid, tuple) and pid and pid[0] == "storage":
            st = pid[1]
            return _Storage(st.name if isinstance(st, _StorageType) else str(st))
        raise PthError(f"unsupported persistent id {pid!r}")


def read_state_dict_shapes(path: Path) -> dict[str, TensorInfo]:
    """{key: TensorInfo} for a torch.save'd state_dict (or a dict holding one under 'model' or
    'state_dict'). Raises PthError with a readable message for anything else."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise PthError("is not a torch.save file in the zip format (torch >= 1.6 writes that "
                       "format; re-save it with torch.save(model.state_dict(), path))") from None
    except OSError as e:
        raise PthError(f"cannot be read: {e.strerror or e}") from None
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise PthError("is a zip file but not a torch.save file (no single data.pkl in it)")
        try:
            with zf.open(pkl[0]) as f:
                obj = _Unpickler(f).load()
        except PthError as e:
            raise PthError(f"holds something other than a plain state_dict: {e}") from None
        except Exception as e:  # a corrupt pickle can raise almost anything
            raise PthError(f"could not be unpickled: {type(e).__name__}: {e}") from None
    if isinstance(obj, dict):
        for wrap in ("model", "state_dict"):
            inner = obj.get(wrap)
            if isinstance(inner, dict) and inner:
                obj = inner
                break
    if not isinstance(obj, dict) or not all(isinstance(v, TensorInfo) for v in obj.values()):
        raise PthError("does not hold a state_dict (a dict of tensor names to tensors)")
    return dict(obj)


def unwrap_state_dict(obj):
    """Same unwrapping as read_state_dict_shapes, for the dict torch.load returned."""
    if isinstance(obj, dict):
        for wrap in ("model", "state_dict"):
            inner = obj.get(wrap)
            if isinstance(inner, dict) and inner:
                return inner
    return obj
