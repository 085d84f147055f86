"""Let a CUDA-built torchvision wheel import next to a CPU-only torch.

Every torchvision wheel on PyPI for the torch versions we pin is a CUDA build. Next to the CPU torch its
compiled library (``_C*.so``) fails to load, torchvision then registers fake kernels for the ops
``torchvision::nms`` / ``torchvision::qnms`` that were never defined, and ``import torchvision`` dies with
``operator torchvision::nms does not exist``. transformers' Qwen-VL video processors need torchvision's
pure-Python transforms, so we define the two missing op schemas before torchvision's own import runs.
Compiled torchvision ops (nms, roi_align, ...) stay unavailable; nothing in this project uses them.

The hook is installed into the virtual environment by ``jobs/_bootstrap.py`` through a ``.pth`` file, so
it is active in every interpreter of the venv (subprocesses, vLLM's engine core, Slurm tasks). It imports
nothing until ``torchvision`` itself is imported, and it leaves a working torchvision untouched.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import os
import sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY = None  # keeps the torch.library.Library alive: dropping it would undefine the ops


def _define_missing_ops(package_dir: str) -> None:
    global _LIBRARY
    import torch

    for lib in glob.glob(os.path.join(package_dir, "_C*.so")):
        try:
            torch.ops.load_library(lib)
        except (OSError, RuntimeError):
            continue
    missing = [name for name in _SCHEMAS if not _op_exists(name)]
    if missing:
        _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _LIBRARY.define(_SCHEMAS[name])


def _op_exists(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.submodule_search_locations:
            _define_missing_ops(next(iter(spec.submodule_search_locations)))
        return spec


def install() -> None:
    """Register the import hook (idempotent)."""
    if "torchvision" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
