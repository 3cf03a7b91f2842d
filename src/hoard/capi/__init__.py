"""The Logos Storage C ABI: `libstorage.h` and a shared library built from hoard.

`build(outdir)` (or `hoard capi build OUTDIR`) writes `libstorage.h` and `libstorage.so`.
The library embeds CPython with cffi's embedding mode and serves each `storage_*` call by
dispatching to a hoard `Node` (exports.py, context.py); see docs/capi.md.
"""

from hoard.capi.build import HEADER, Built, build, functions

__all__ = ["HEADER", "Built", "build", "functions"]
