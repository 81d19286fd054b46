"""System libraries: ELF ``NEEDED`` of compiled extensions → Debian packages.

A library is skipped when the wheel bundles it (any shared object of the closure's
distributions, or a file in an ``$ORIGIN`` RPATH/RUNPATH folder) or when the
``python:X-slim-bookworm`` base already has it. The rest map to Debian packages:
first ``dpkg -S`` on the host (when the library resolves to a system path), then a
table of well-known sonames; a library neither finds is reported in a warning.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .distributions import InstalledDistribution

# Sonames shipped by python:3.X-slim-bookworm (debian:bookworm-slim + Python's runtime deps).
BASE_SONAMES = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libcrypt.so.1",
    "libresolv.so.2", "libanl.so.1", "libmvec.so.1", "libnsl.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    "ld-linux.so.2", "linux-vdso.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1", "libssl.so.3",
    "libcrypto.so.3", "libffi.so.8", "libsqlite3.so.0", "libbz2.so.1.0", "libbz2.so.1", "liblzma.so.5",
    "libexpat.so.1", "libuuid.so.1", "libncursesw.so.6", "libncurses.so.6", "libtinfo.so.6", "libreadline.so.8",
    "libhistory.so.8", "libzstd.so.1", "liblz4.so.1", "libgmp.so.10", "libselinux.so.1", "libpcre2-8.so.0",
    "libacl.so.1", "libattr.so.1", "libblkid.so.1", "libmount.so.1", "libsmartcols.so.1", "libudev.so.1",
    "libsystemd.so.0", "libgcrypt.so.20", "libgpg-error.so.0", "libcap.so.2", "libdb-5.3.so", "libgdbm.so.6",
    "libgdbm_compat.so.4", "libgnutls.so.30", "libnettle.so.8", "libhogweed.so.6", "libidn2.so.0",
    "libunistring.so.2", "libtasn1.so.6", "libp11-kit.so.0", "libxxhash.so.0", "libaudit.so.1", "libcap-ng.so.0",
    "libpam.so.0",
})

# Well-known sonames → bookworm packages, for libraries that don't resolve on the host.
KNOWN_SONAMES = {
    "libgomp.so.1": "libgomp1", "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0", "libGLdispatch.so.0": "libglvnd0", "libGLU.so.1": "libglu1-mesa",
    "libglib-2.0.so.0": "libglib2.0-0", "libgobject-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0", "libgmodule-2.0.so.0": "libglib2.0-0", "libsndfile.so.1": "libsndfile1",
    "libgfortran.so.5": "libgfortran5", "libquadmath.so.0": "libquadmath0", "libopenblas.so.0": "libopenblas0",
    "libblas.so.3": "libblas3", "liblapack.so.3": "liblapack3", "libatlas.so.3": "libatlas3-base",
    "libSM.so.6": "libsm6", "libICE.so.6": "libice6", "libX11.so.6": "libx11-6", "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1", "libxcb.so.1": "libxcb1", "libXau.so.6": "libxau6",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6", "libpng16.so.16": "libpng16-16",
    "libjpeg.so.62": "libjpeg62-turbo", "libtiff.so.6": "libtiff6", "libwebp.so.7": "libwebp7",
    "libgeos_c.so.1": "libgeos-c1v5", "libproj.so.25": "libproj25", "libgdal.so.32": "libgdal32",
    "libhdf5_serial.so.103": "libhdf5-103-1", "libpq.so.5": "libpq5", "libmariadb.so.3": "libmariadb3",
    "libaio.so.1": "libaio1", "libnuma.so.1": "libnuma1", "libportaudio.so.2": "libportaudio2",
    "libasound.so.2": "libasound2", "libcairo.so.2": "libcairo2", "libpango-1.0.so.0": "libpango-1.0-0",
    "libxml2.so.2": "libxml2", "libxslt.so.1": "libxslt1.1", "libcurl.so.4": "libcurl4",
    "libgssapi_krb5.so.2": "libgssapi-krb5-2", "libkrb5.so.3": "libkrb5-3", "libldap-2.5.so.0": "libldap-2.5-0",
    "libodbc.so.2": "libodbc2", "libmagic.so.1": "libmagic1", "libzmq.so.5": "libzmq5",
    "libsodium.so.23": "libsodium23", "libavcodec.so.59": "libavcodec59", "libavformat.so.59": "libavformat59",
    "libavutil.so.57": "libavutil57", "libswscale.so.6": "libswscale6", "libswresample.so.4": "libswresample4",
    "libgdk_pixbuf-2.0.so.0": "libgdk-pixbuf-2.0-0", "libgtk-3.so.0": "libgtk-3-0", "libdbus-1.so.3": "libdbus-1-3",
    "libusb-1.0.so.0": "libusb-1.0-0", "libtbb.so.12": "libtbb12", "libomp.so.5": "libomp5-14",
    "libtirpc.so.3": "libtirpc3", "libnsl.so.2": "libnsl2", "libgraphviz.so.6": "libgvc6",
    "libcgraph.so.6": "libcgraph6", "libgvc.so.6": "libgvc6", "libspatialindex_c.so.6": "libspatialindex-c6",
    "libsnappy.so.1": "libsnappy1v5", "libarchive.so.13": "libarchive13", "libpcre.so.3": "libpcre3",
    "libfftw3.so.3": "libfftw3-double3", "libfftw3f.so.3": "libfftw3-single3", "libopenjp2.so.7": "libopenjp2-7",
    "liblcms2.so.2": "liblcms2-2", "libharfbuzz.so.0": "libharfbuzz0b", "libfribidi.so.0": "libfribidi0",
    "libxkbcommon.so.0": "libxkbcommon0", "libmpfr.so.6": "libmpfr6", "libmpc.so.3": "libmpc3",
}

DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 1, 5, 15, 29
PT_LOAD, PT_DYNAMIC = 1, 2


@dataclass(frozen=True)
class ElfDynamic:
    """The parts of an ELF dynamic section that decide what a library needs."""

    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()  # RPATH and RUNPATH entries, unexpanded


def read_elf_dynamic(path: Path | str) -> ElfDynamic | None:
    """``NEEDED`` and ``RPATH``/``RUNPATH`` of an ELF file; ``None`` if it is not a dynamic ELF."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return None
            is64, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(end + "Q", ident, 0x20)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x36)
                ph_fmt, dyn_fmt = end + "IIQQQQQQ", end + "qQ"
            else:
                phoff, = struct.unpack_from(end + "I", ident, 0x1C)
                phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x2A)
                ph_fmt, dyn_fmt = end + "IIIIIIII", end + "iI"
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
            dynamic: tuple[int, int] | None = None
            for i in range(phnum):
                fields = struct.unpack_from(ph_fmt, table, i * phentsize)
                if is64:
                    p_type, _, p_offset, p_vaddr, _, p_filesz = fields[:6]
                else:
                    p_type, p_offset, p_vaddr, _, p_filesz = fields[:5]
                if p_type == PT_LOAD:
                    loads.append((p_vaddr, p_filesz, p_offset))
                elif p_type == PT_DYNAMIC:
                    dynamic = (p_offset, p_filesz)
            if dynamic is None:
                return None
            f.seek(dynamic[0])
            raw = f.read(dynamic[1])
            size = struct.calcsize(dyn_fmt)
            entries: list[tuple[int, int]] = []
            for off in range(0, len(raw) - size + 1, size):
                tag, val = struct.unpack_from(dyn_fmt, raw, off)
                if tag == 0:
                    break
                entries.append((tag, val))
            strtab = next((v for t, v in entries if t == DT_STRTAB), None)
            if strtab is None:
                return ElfDynamic()
            base = next((o + strtab - va for va, sz, o in loads if va <= strtab < va + sz), strtab)

            def string(offset: int) -> str:
                f.seek(base + offset)
                chunk = f.read(256)
                while b"\0" not in chunk and len(chunk) % 256 == 0 and chunk:
                    more = f.read(256)
                    if not more:
                        break
                    chunk += more
                return chunk.split(b"\0", 1)[0].decode("utf-8", "replace")

            needed = tuple(string(v) for t, v in entries if t == DT_NEEDED)
            rpath = tuple(p for t, v in entries if t in (DT_RPATH, DT_RUNPATH) for p in string(v).split(":") if p)
            return ElfDynamic(needed, rpath)
    except (OSError, struct.error):
        return None


@lru_cache(maxsize=8192)
def _cached_dynamic(path: str, mtime_ns: int, size: int) -> ElfDynamic | None:
    return read_elf_dynamic(path)


def _dynamic(path: str) -> ElfDynamic | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _cached_dynamic(path, st.st_mtime_ns, st.st_size)


def _host_library_dirs(machine: str) -> list[str]:
    triplet = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu", "arm64": "aarch64-linux-gnu"}.get(
        machine, f"{machine}-linux-gnu")
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
             "/usr/local/lib", f"/usr/local/lib/{triplet}"]
    conf_d = Path("/etc/ld.so.conf.d")
    if conf_d.is_dir():
        for conf in sorted(conf_d.glob("*.conf")):
            try:
                dirs += [ln.strip() for ln in conf.read_text().splitlines() if ln.strip().startswith("/")]
            except OSError:
                continue
    return list(dict.fromkeys(dirs))


_DPKG_CACHE: dict[str, str | None] = {}


def dpkg_owner(path: str) -> str | None:
    """The Debian package that owns ``path`` on this host (``dpkg -S``), cached; ``None`` if none."""
    if path in _DPKG_CACHE:
        return _DPKG_CACHE[path]
    owner: str | None = None
    dpkg = shutil.which("dpkg")
    if dpkg:
        real = os.path.realpath(path)
        candidates = list(dict.fromkeys([path, real] + [("/usr" + p) for p in (path, real) if not p.startswith("/usr/")]))
        for cand in candidates:
            try:
                proc = subprocess.run([dpkg, "-S", cand], check=False, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                break
            if proc.returncode == 0 and proc.stdout:
                owner = proc.stdout.splitlines()[0].split(":", 1)[0].split(",")[0].strip()
                break
    _DPKG_CACHE[path] = owner
    return owner


def _expand_origin(entry: str, origin: str) -> str:
    return entry.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)


def unbundled_libraries(dists: Iterable[InstalledDistribution]) -> dict[str, str]:
    """Sonames that extensions of ``dists`` need and neither they nor the slim base provide.

    Returns:
        ``{soname: name of the first distribution that needs it}``.
    """
    dists = list(dists)
    bundled = {os.path.basename(so) for d in dists for so in d.shared_objects}
    out: dict[str, str] = {}
    for dist in dists:
        for so in dist.shared_objects:
            if not so.endswith(".so") and ".so." not in so:
                continue
            dyn = _dynamic(so)
            if dyn is None:
                continue
            origin = os.path.dirname(so)
            for lib in dyn.needed:
                if lib in bundled or lib in BASE_SONAMES or lib.startswith("libpython") or lib in out:
                    continue
                if any(os.path.exists(os.path.join(_expand_origin(r, origin), lib)) for r in dyn.rpath if "ORIGIN" in r):
                    continue
                out[lib] = dist.name
    return out


def system_packages(dists: Iterable[InstalledDistribution], machine: str = "x86_64") -> tuple[list[str], list[str]]:
    """Debian packages the extensions of ``dists`` need beyond the slim base, and warnings.

    Args:
        dists: the closure's installed distributions.
        machine: the captured interpreter's CPU (for the host's multiarch library folders).

    Returns:
        Sorted package names and one warning per library that maps to no package.
    """
    libs = unbundled_libraries(dists)
    if not libs:
        return [], []
    dirs = _host_library_dirs(machine)
    packages: set[str] = set()
    warnings: list[str] = []
    for lib, needer in sorted(libs.items()):
        host = next((os.path.join(d, lib) for d in dirs if os.path.exists(os.path.join(d, lib))), None)
        package = (dpkg_owner(host) if host else None) or KNOWN_SONAMES.get(lib)
        if package:
            packages.add(package)
        else:
            warnings.append(f"{lib} (needed by {needer}) is not in the slim base and maps to no Debian package; "
                            "the job may fail to load it unless the image gets the package that provides it.")
    return sorted(packages), warnings
