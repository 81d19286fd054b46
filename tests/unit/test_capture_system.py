"""ELF NEEDED → Debian packages, on real shared objects compiled here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from jupyter_containerize.capture.distributions import InstalledDistribution
from jupyter_containerize.capture.system import read_elf_dynamic, system_packages, unbundled_libraries


EXT = sysconfig.get_config_var("EXT_SUFFIX")  # this interpreter's extension-module suffix (gcc: scripts/test.sh installs it)


def _compile(out: Path, source: str, *flags: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *flags], check=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("elf")
    pkg = root / "site" / "fastpkg"
    libs = root / "site" / "fastpkg.libs"
    pkg.mkdir(parents=True)
    libs.mkdir()
    omp = _compile(pkg / f"_omp{EXT}",
                   "#include <omp.h>\nint f(void){return omp_get_max_threads();}\n", "-fopenmp")
    helper = _compile(libs / "libhelper-abc123.so", "int h(void){return 1;}\n")
    bundled = _compile(pkg / f"_bundled{EXT}", "int h(void);int g(void){return h();}\n",
                       f"-L{libs}", "-lhelper-abc123", "-Wl,-rpath,$ORIGIN/../fastpkg.libs")
    return {"omp": omp, "helper": helper, "bundled": bundled}


def test_reader_agrees_with_readelf(built: dict[str, Path]) -> None:
    for path in built.values():
        dyn = read_elf_dynamic(path)
        assert dyn is not None
        if shutil.which("readelf"):
            out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
            assert list(dyn.needed) == re.findall(r"\(NEEDED\).*\[(.*)\]", out)
    assert "libgomp.so.1" in read_elf_dynamic(built["omp"]).needed  # type: ignore[union-attr]
    assert read_elf_dynamic(built["bundled"]).rpath == ("$ORIGIN/../fastpkg.libs",)  # type: ignore[union-attr]
    assert read_elf_dynamic(Path(__file__)) is None


def test_unbundled_libgomp_maps_to_libgomp1(built: dict[str, Path]) -> None:
    dist = InstalledDistribution("fastpkg", "1.0", (), built["omp"].parent, shared_objects=(str(built["omp"]),))
    assert unbundled_libraries([dist]) == {"libgomp.so.1": "fastpkg"}
    assert system_packages([dist]) == (["libgomp1"], [])


def test_bundled_and_origin_rpath_libraries_are_skipped(built: dict[str, Path]) -> None:
    # listed in the distribution's files: bundled
    dist = InstalledDistribution("fastpkg", "1.0", (), built["bundled"].parent,
                                 shared_objects=(str(built["bundled"]), str(built["helper"])))
    assert unbundled_libraries([dist]) == {}
    # not listed, but found through the $ORIGIN RUNPATH: still bundled
    only_ext = InstalledDistribution("fastpkg", "1.0", (), built["bundled"].parent,
                                     shared_objects=(str(built["bundled"]),))
    assert unbundled_libraries([only_ext]) == {}


def test_unknown_library_is_a_warning(tmp_path: Path) -> None:
    lib = _compile(tmp_path / "libzzunknown.so", "int z(void){return 0;}\n")
    ext = _compile(tmp_path / "_ext.so", "int z(void);int y(void){return z();}\n", f"-L{tmp_path}", "-lzzunknown")
    dist = InstalledDistribution("weird", "1.0", (), tmp_path, shared_objects=(str(ext),))
    packages, warnings = system_packages([dist])
    assert packages == [] and len(warnings) == 1
    assert "libzzunknown.so" in warnings[0] and "weird" in warnings[0]
    assert lib.exists()
