"""Build `libstorage.so` (+ `libstorage.h`) from hoard with cffi's embedding mode.

The library is a real shared object that links libpython. Its exported `storage_*`
functions are small C wrappers generated from the prototypes in libstorage.h:

    int storage_x(void *ctx, ..., StorageCallback callback, void *userData) {
        if (callback == NULL) return RET_MISSING_CALLBACK;    -- no Python involved
        start the embedded interpreter once (pthread_once)
        return hoard_capi_x(ctx, ..., callback, userData);     -- extern "Python", exports.py
    }

`libstorageNimMain` and `NimMain` (the Nim runtime init every official binding calls once
before `storage_new`) start the interpreter: idempotent, and optional.

Two generations of the header can be built (`abi`): "seed" (libstorage.h, the default: every
call takes a callback) and "current" (libstorage_current.h, today's logos-storage-nim:
`char *storage_version(void *)`, `int storage_destroy(void *)`, `isPrivate` on downloads, ...).
A function returning `char *` is served by an internal `hoard_capi_x(ctx, buf, cap)` whose text
the wrapper copies with strdup (the caller frees it); one without a callback returns the status.

The interpreter is started with `program_name` = the Python executable that built the
library (for a venv, its bin/python), so it finds the same stdlib, the venv's site-packages
and the editable install as that interpreter; the build-time `sys.path` is appended as a
fallback. libpython is found through an rpath to its directory. If the host process is
already a Python interpreter, it is used as is.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hoard.errors import HoardError, InvalidArgumentError, StateError

HEADER = Path(__file__).with_name("libstorage.h")
HEADERS = {"seed": HEADER, "current": Path(__file__).with_name("libstorage_current.h")}
ABIS = tuple(HEADERS)
MODULE_NAME = "_hoard_libstorage"
LIBRARY_NAME = "libstorage.so"

_PROTOTYPE = re.compile(r"^(int|void \*|char \*|void)\s*(storage_\w+)\(([^)]*)\);", re.MULTILINE)
RUNTIME_INIT = ("libstorageNimMain", "NimMain")  # exported besides the storage_* functions


@dataclass(frozen=True)
class Function:
    returns: str  # "int", "void *", "char *" or "void"
    name: str  # storage_xxx
    params: list[tuple[str, str]]  # (C type, name)

    @property
    def short(self) -> str:
        return self.name.removeprefix("storage_")

    @property
    def has_callback(self) -> bool:
        return any(ctype == "StorageCallback" for ctype, _ in self.params)

    def decl(self, name: str, returns: str | None = None) -> str:
        params = ", ".join(f"{ctype} {pname}" for ctype, pname in self.params) or "void"
        ret = returns or self.returns
        sep = "" if ret.endswith("*") else " "
        return f"{ret}{sep}{name}({params})"

    def internal_decl(self) -> str:
        """The extern "Python" function behind it (exports.py): `hoard_capi_<short>`."""
        name = f"hoard_capi_{self.short}"
        if self.returns == "char *":
            return f"int {name}({', '.join(f'{t} {n}' for t, n in self.params)}, char *buf, size_t cap)"
        return self.decl(name, "intptr_t" if self.name == "storage_new" else "int")


def functions(header: str | None = None, abi: str = "seed") -> list[Function]:
    """The storage_* prototypes of a header (default: the `abi` generation's), in header order."""
    text = header if header is not None else header_path(abi).read_text()
    out = []
    for returns, name, params in _PROTOTYPE.findall(text):
        parsed = []
        for param in " ".join(params.split()).split(","):
            if param.strip() in ("", "void"):
                continue
            match = re.match(r"^(.*?)(\w+)$", param.strip())
            assert match, param
            parsed.append((match.group(1).strip(), match.group(2)))
        out.append(Function(returns, name, parsed))
    return out


def _c_string(value: str) -> str:
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def header_path(abi: str) -> Path:
    """The header of an ABI generation ("seed" or "current")."""
    if abi not in HEADERS:
        raise InvalidArgumentError(f"unknown ABI {abi!r} (one of {', '.join(ABIS)})", abi=abi)
    return HEADERS[abi]


def _internal_cdef(funcs: list[Function]) -> str:
    lines = ["typedef void (*StorageCallback)(int callerRet, const char *msg, size_t len, void *userData);",
             'extern "Python" {']
    for fn in funcs:
        lines.append("    " + fn.internal_decl() + ";")
    lines.append("}")
    return "\n".join(lines)


_C_PRELUDE = r"""
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "libstorage.h"

#define HOARD_EXPORT __attribute__((visibility("default")))
#define HOARD_TAG 0x4800
#define HOARD_PYTHON_EXECUTABLE %(executable)s

static pthread_once_t hoard_py_once = PTHREAD_ONCE_INIT;
static char hoard_py_error[1024];

/* Start the interpreter as the build-time Python would start (same prefix, venv, paths),
   unless the host process already runs one. Signal handlers are left to the application. */
static void hoard_py_init(void)
{
    PyStatus status;
    PyConfig config;
    if (Py_IsInitialized())
        return;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    status = PyConfig_SetBytesString(&config, &config.program_name, HOARD_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        snprintf(hoard_py_error, sizeof hoard_py_error,
                 "libstorage error: cannot start the embedded Python %%s: %%s",
                 HOARD_PYTHON_EXECUTABLE, status.err_msg ? status.err_msg : "unknown error");
        return;
    }
    PyEval_SaveThread(); /* release the GIL; cffi takes it for each call */
}

/* The Nim runtime init of Logos's library, which every official binding calls once before
   storage_new: here it starts the embedded interpreter. Idempotent; calling it is optional. */
HOARD_EXPORT void libstorageNimMain(void)
{
    pthread_once(&hoard_py_once, hoard_py_init);
}

HOARD_EXPORT void NimMain(void)
{
    pthread_once(&hoard_py_once, hoard_py_init);
}

static int hoard_ready(StorageCallback callback, void *userData)
{
    pthread_once(&hoard_py_once, hoard_py_init);
    if (hoard_py_error[0] == '\0')
        return 1;
    if (callback != NULL)
        callback(RET_ERR, hoard_py_error, strlen(hoard_py_error), userData);
    return 0;
}

static int hoard_result(int tagged, StorageCallback callback, void *userData)
{
    static const char msg[] =
        "libstorage error: internal error in the embedded hoard runtime (details on stderr)";
    if ((tagged & ~0xff) == HOARD_TAG)
        return tagged & 0xff;
    callback(RET_ERR, msg, sizeof msg - 1, userData);
    return RET_ERR;
}
"""


def c_source(funcs: list[Function], executable: str) -> str:
    """The C wrappers (set_source preamble) for every storage_* function."""
    parts = [_C_PRELUDE % {"executable": _c_string(executable)}]
    parts.append("/* the extern \"Python\" functions (exports.py), defined by cffi below */")
    for fn in funcs:
        parts.append(f"static {fn.internal_decl()};")
    for fn in funcs:
        args = ", ".join(p for _, p in fn.params)
        internal = f"hoard_capi_{fn.short}({args})"
        if fn.returns == "char *":  # current ABI: version, revision; the caller frees the copy
            body = f"""    char buf[1024];
    int rc;
    if (!hoard_ready(NULL, NULL))
        return NULL;
    buf[0] = '\\0';
    rc = hoard_capi_{fn.short}({args + ', ' if args else ''}buf, sizeof buf);
    if ((rc & ~0xff) != HOARD_TAG || (rc & 0xff) != RET_OK)
        return NULL;
    buf[sizeof buf - 1] = '\\0';
    return strdup(buf);"""
        elif fn.returns == "int" and not fn.has_callback:  # current ABI: destroy
            body = f"""    int rc;
    if (!hoard_ready(NULL, NULL))
        return RET_ERR;
    rc = {internal};
    return (rc & ~0xff) == HOARD_TAG ? (rc & 0xff) : RET_ERR;"""
        elif fn.name == "storage_new":
            body = f"""    intptr_t handle;
    if (callback == NULL)
        return NULL;
    if (!hoard_ready(callback, userData))
        return NULL;
    handle = {internal};
    if (handle > 0)
        return (void *)handle;
    if (handle == 0)
        (void)hoard_result(0, callback, userData);
    return NULL;"""
        elif fn.returns == "void":
            body = f"""    if (!hoard_ready(NULL, NULL))
        return;
    (void){internal};"""
        else:
            body = f"""    if (callback == NULL)
        return RET_MISSING_CALLBACK;
    if (!hoard_ready(callback, userData))
        return RET_ERR;
    return hoard_result({internal}, callback, userData);"""
        parts.append(f"HOARD_EXPORT {fn.decl(fn.name)}\n{{\n{body}\n}}\n")
    return "\n".join(parts)


def init_code(paths: list[str], abi: str = "seed") -> str:
    """Python run once inside the library, before the first call is served."""
    bind_args = "ffi" if abi == "seed" else f"ffi, {abi!r}"
    return f"""
import sys
for _path in {paths!r}:
    if _path not in sys.path:
        sys.path.append(_path)
from {MODULE_NAME} import ffi
import hoard.capi.exports
hoard.capi.exports.bind({bind_args})
"""


def _libpython() -> tuple[str, str]:
    """(LIBDIR, library name) of a shared libpython; clear error if this Python has none."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlibrary = sysconfig.get_config_var("LDLIBRARY") or ""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not ldlibrary.endswith(".so"):
        raise StateError(f"cannot build libstorage: {sys.executable} has no shared libpython "
                         f"(LDLIBRARY={ldlibrary!r}); use a Python built with --enable-shared "
                         "(pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared)")
    if not (Path(libdir) / ldlibrary).exists():
        raise StateError(f"cannot build libstorage: {Path(libdir) / ldlibrary} does not exist")
    return libdir, ldlibrary


@dataclass(frozen=True)
class Built:
    header: Path
    library: Path


def build(outdir: str | os.PathLike[str], verbose: bool = False, abi: str = "seed") -> Built:
    """Write OUTDIR/libstorage.h and OUTDIR/libstorage.so of the `abi` generation ("seed", the
    default, or "current")."""
    source_header = header_path(abi)
    try:
        import cffi  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:  # pragma: no cover - cffi is a dependency
        raise StateError("cannot build libstorage: cffi is not installed") from exc
    out = Path(outdir).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot create {out}: {exc.strerror}", path=str(out)) from exc
    _libpython()  # a clear error before anything is compiled
    funcs = functions(abi=abi)
    ffi = cffi.FFI()
    ffi.embedding_api("")  # the exported API is the C wrappers; this marks the module as embedding
    ffi.cdef(_internal_cdef(funcs))
    with tempfile.TemporaryDirectory(prefix="hoard-capi-include-") as include:
        shutil.copyfile(source_header, Path(include) / "libstorage.h")
        return _compile(ffi, funcs, include, out, source_header, abi, verbose)


def _compile(ffi: Any, funcs: list[Function], include: str, out: Path, source_header: Path, abi: str,
             verbose: bool) -> Built:
    libdir, _ = _libpython()
    ffi.set_source(MODULE_NAME, c_source(funcs, sys.executable),
                   include_dirs=[include],
                   library_dirs=[libdir],
                   libraries=["pthread", "dl", "m"],
                   extra_compile_args=["-fvisibility=hidden", "-O2"],
                   extra_link_args=[f"-Wl,-rpath,{libdir}", f"-Wl,-soname,{LIBRARY_NAME}"])
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    ffi.embedding_init_code(init_code(paths, abi))
    with tempfile.TemporaryDirectory(prefix="hoard-capi-") as tmp:
        try:
            built = ffi.compile(tmpdir=tmp, target=LIBRARY_NAME, verbose=verbose)
        except Exception as exc:  # distutils/setuptools compile or link errors
            raise HoardError(f"cannot build libstorage: {exc}") from exc
        library = out / LIBRARY_NAME
        tmp_library = out / (LIBRARY_NAME + ".tmp")
        shutil.copyfile(built, tmp_library)
        os.chmod(tmp_library, 0o755)
        os.replace(tmp_library, library)  # a running program keeps its mapped copy
    header = out / "libstorage.h"
    shutil.copyfile(source_header, header)
    return Built(header, library)
