"""Build `libgdp.so` (+ `gdp.h`): the GDP programmatic API v0.8 in C, served by hoard's logs.

Built like libstorage.so (build.py), with cffi's embedding mode: gdp_lib.c is the C half
(buffers, datums, metadata, names, EP_STAT, the event queue) and calls the `extern "Python"`
functions of gdp_exports.py for everything that touches a log. The library starts the
build-time Python on its first call that needs it, as libstorage does, and exports only the
gdp.h API (plus cffi's module init, `PyInit__hoard_libgdp`).

`build(outdir)` writes OUTDIR/gdp.h, OUTDIR/libgdp.so, and OUTDIR/gdp/gdp.h and
OUTDIR/gdp/gdp_version.h, so the seed's `#include <gdp/gdp.h>` and `<gdp/gdp_version.h>` work
with `-IOUTDIR`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hoard.capi.build import Built, _c_string, _libpython
from hoard.errors import HoardError, InvalidArgumentError, StateError

HEADER = Path(__file__).with_name("gdp.h")
SOURCE = Path(__file__).with_name("gdp_lib.c")
MODULE_NAME = "_hoard_libgdp"
LIBRARY_NAME = "libgdp.so"

CDEF = """
typedef struct _ep_stat { uint32_t code; } EP_STAT;
typedef struct gdp_gcl gdp_gcl_t;
typedef struct gdp_datum gdp_datum_t;
typedef struct _gdp_event gdp_event_t;
typedef struct gdp_gclmd gdp_gclmd_t;
typedef struct gdp_gcl_open_info gdp_gcl_open_info_t;
typedef struct ep_crypto_key EP_CRYPTO_KEY;
typedef void (*gdp_event_cbfunc_t)(gdp_event_t *gev);

extern "Python" {
    int hoard_gdp_init(const char *addr, uint32_t *stat);
    int hoard_gdp_parse_name(const char *ext, uint8_t *out, uint32_t *stat);
    int hoard_gdp_create(const uint8_t *name, const uint8_t *md, size_t mdlen, uint8_t *name_out,
                         intptr_t *handle, int64_t *nrecs, uint32_t *stat);
    int hoard_gdp_open(const uint8_t *name, int mode, gdp_gcl_open_info_t *info, uint8_t *name_out,
                       intptr_t *handle, int64_t *nrecs, uint32_t *stat);
    int hoard_gdp_metadata(intptr_t handle, gdp_gclmd_t *gmd, uint32_t *stat);
    int hoard_gdp_close(intptr_t handle, uint32_t *stat);
    int hoard_gdp_append(intptr_t handle, const uint8_t *data, size_t len, gdp_datum_t *datum, uint32_t *stat);
    int hoard_gdp_append_async(intptr_t handle, gdp_gcl_t *gcl, const uint8_t *data, size_t len,
                               gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
    int hoard_gdp_read(intptr_t handle, int by_ts, int64_t recno, int64_t sec, uint32_t nsec,
                       gdp_datum_t *datum, uint32_t *stat);
    int hoard_gdp_request(intptr_t handle, gdp_gcl_t *gcl, int kind, int by_ts, int64_t start, int64_t sec,
                          uint32_t nsec, int32_t numrecs, gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
    int hoard_gdp_unsubscribe(intptr_t handle, gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
    int hoard_gdp_shutdown(void);
}

void hoard_gdp_fill(gdp_datum_t *d, int64_t recno, int64_t sec, uint32_t nsec, const uint8_t *data,
                    size_t len, const uint8_t *sig, size_t siglen, int mdalg);
void hoard_gdp_post(gdp_gcl_t *gcl, int type, uint32_t stat, int has_datum, int64_t recno, int64_t sec,
                    uint32_t nsec, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
                    int mdalg, gdp_event_cbfunc_t cb, void *udata);
const uint8_t *hoard_gdp_info_key(gdp_gcl_open_info_t *info, size_t *len, int *form);
int hoard_gdp_info_flags(gdp_gcl_open_info_t *info);
uint32_t hoard_gdp_call_signkey_cb(gdp_gcl_open_info_t *info, const uint8_t *name, EP_CRYPTO_KEY **skey);
const uint8_t *hoard_gdp_key_data(EP_CRYPTO_KEY *key, size_t *len, int *form);
void ep_crypto_key_free(EP_CRYPTO_KEY *key);
EP_STAT gdp_gclmd_add(gdp_gclmd_t *gmd, uint32_t id, size_t len, const void *data);
"""

VERSION_HEADER = """/* gdp_version.h: the version of the GDP API libgdp implements (hoard capi build). */
#ifndef HOARD_GDP_VERSION_H
#define HOARD_GDP_VERSION_H
#include "../gdp.h"
#endif
"""

FORWARD_HEADER = """/* gdp/gdp.h: the seed's include path, <gdp/gdp.h>, for OUTDIR/gdp.h (hoard capi build). */
#include "../gdp.h"
"""


def version_string() -> str:
    from hoard.node import info

    return f"hoard libgdp 0.8.0 (hoard {info.version()})"


def c_source(executable: str) -> str:
    """gdp_lib.c with the build's constants: the Python to start and the version string."""
    return (f"#define HOARD_PYTHON_EXECUTABLE {_c_string(executable)}\n"
            f"#define HOARD_GDP_VERSION_STRING {_c_string(version_string())}\n" + SOURCE.read_text())


def init_code(paths: list[str]) -> str:
    """Python run once inside the library, before the first call is served."""
    return f"""
import sys
for _path in {paths!r}:
    if _path not in sys.path:
        sys.path.append(_path)
from {MODULE_NAME} import ffi, lib
import hoard.capi.gdp_exports
hoard.capi.gdp_exports.bind(ffi, lib)
"""


def build(outdir: str | os.PathLike[str], verbose: bool = False) -> Built:
    """Write OUTDIR/gdp.h and OUTDIR/libgdp.so (and the <gdp/...> include forwards)."""
    try:
        import cffi  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:  # pragma: no cover - cffi is a dependency
        raise StateError("cannot build libgdp: cffi is not installed") from exc
    out = Path(outdir).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot create {out}: {exc.strerror}", path=str(out)) from exc
    libdir, _ = _libpython()
    ffi = cffi.FFI()
    ffi.embedding_api("")  # the exported API is gdp_lib.c's; this marks the module as embedding
    ffi.cdef(CDEF)
    with tempfile.TemporaryDirectory(prefix="hoard-gdp-include-") as include:
        shutil.copyfile(HEADER, Path(include) / "gdp.h")
        ffi.set_source(MODULE_NAME, c_source(sys.executable),
                       include_dirs=[include],
                       library_dirs=[libdir],
                       libraries=["pthread", "dl", "m"],
                       extra_compile_args=["-fvisibility=hidden", "-O2"],
                       extra_link_args=[f"-Wl,-rpath,{libdir}", f"-Wl,-soname,{LIBRARY_NAME}"])
        ffi.embedding_init_code(init_code([p for p in sys.path if p and os.path.isdir(p)]))
        library = _compile(ffi, out, verbose)
    header = out / "gdp.h"
    shutil.copyfile(HEADER, header)
    (out / "gdp").mkdir(exist_ok=True)
    (out / "gdp" / "gdp.h").write_text(FORWARD_HEADER)
    (out / "gdp" / "gdp_version.h").write_text(VERSION_HEADER)
    return Built(header, library)


def _compile(ffi: Any, out: Path, verbose: bool) -> Path:
    with tempfile.TemporaryDirectory(prefix="hoard-gdp-") as tmp:
        try:
            built = ffi.compile(tmpdir=tmp, target=LIBRARY_NAME, verbose=verbose)
        except Exception as exc:  # setuptools compile or link errors
            raise HoardError(f"cannot build libgdp: {exc}") from exc
        library = out / LIBRARY_NAME
        tmp_library = out / (LIBRARY_NAME + ".tmp")
        shutil.copyfile(built, tmp_library)
        os.chmod(tmp_library, 0o755)
        os.replace(tmp_library, library)  # a running program keeps its mapped copy
    return library
