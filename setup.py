"""Build step for dbsight's compiled hot path (everything else is in pyproject.toml).

The modules in `HOT_MODULES` are plain Python (importable and tested as such). With Cython
available (pyproject's build requirements bring it) and a C compiler, each is also compiled
to an extension module next to its source, with the C types its ``.pxd`` file declares,
which Python imports in its place: the per-message work of ``dbsight proxy`` and the
per-statement observation of every instrument.
``DBSIGHT_BUILD_EXTENSIONS=0`` at install time builds none. No extension is ever required:
without a compiler or Cython the build ships the pure-Python modules alone, and
``DBSIGHT_PURE_PYTHON=1`` makes an installed build import the Python sources instead of its
extensions (see ``dbsight._compiled``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent


def hot_modules() -> tuple[str, ...]:
    """`dbsight._compiled.HOT_MODULES`, read from its file (not from the dbsight package,
    whose dependencies are not installed at build time)."""
    path = ROOT / "src" / "dbsight" / "_compiled.py"
    spec = importlib.util.spec_from_file_location("_dbsight_compiled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.HOT_MODULES)


def ext_modules() -> list:
    if os.environ.get("DBSIGHT_BUILD_EXTENSIONS", "1") == "0":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("dbsight: Cython not available, building pure Python only", file=sys.stderr)
        return []
    from setuptools import Extension

    extensions = []
    for name in hot_modules():
        path = ROOT / "src" / (name.replace(".", "/") + ".py")
        if path.exists():  # a module renamed or split away is skipped, not an error
            extensions.append(Extension(name, [str(path.relative_to(ROOT))]))
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            # the annotations are for readers and mypy; as C types they would reject
            # bytearray/memoryview where bytes is written, and None where it is allowed
            "annotation_typing": False,
            "binding": True,  # functions keep their signatures and docstrings
        },
        nthreads=os.cpu_count() or 1,
        quiet=True,
    )


setup(ext_modules=ext_modules())
