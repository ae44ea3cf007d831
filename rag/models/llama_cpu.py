"""Which build of llama.cpp's CPU kernels a process runs: the package's own (AVX2), or one built for AVX-512.

llama-cpp-python is installed built for AVX2 (the Makefile's ``LLAMA_CMAKE_ARGS``): llama.cpp built for the
CPU it is compiled on uses AMX where the CPU has it, and those kernels crash on virtual machines of this kind.
The CPUs this project runs on also have AVX-512 with VNNI, which the AVX2 build leaves unused. So a second
build of the same llama-cpp-python version, for AVX-512 (F, BW, VL, DQ, VBMI, VNNI, BF16) and never AMX, is
kept beside the user's models (``Config.cache_dir / "llama-cpu"``, never inside site-packages).

Only llama.cpp's CPU backend (``libggml-cpu.so`` and the ``libggml-base.so`` it is built against) differs
between builds. A process that is to run the AVX-512 build loads those two libraries before it imports
``llama_cpp``; when llama-cpp-python then loads ``libllama.so``, the dynamic linker finds its dependencies of
the same names already loaded and uses them. The choice is made once per process, at the first model load:
``auto`` (the default) takes the AVX-512 build where it is installed and the CPU has every flag it was built
for, and the package's AVX2 build everywhere else.

``python -m rag.models.llama_cpu build`` builds and installs the AVX-512 variant (about as long as the first
install of llama-cpp-python); ``python -m rag.models.llama_cpu smoke`` decodes with the small model and says
which variant ran. ``make install`` runs both.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rag.config import LLAMA_CPUS, Config, LlamaCpu
from rag.errors import SettingsError

BUILT_IN = "avx2"  # the variant the installed package itself carries (the Makefile builds it for AVX2)
_AVX2_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
_NO_AMX = "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"


@dataclass(frozen=True)
class Variant:
    name: str
    needs: frozenset[str]  # the /proc/cpuinfo flags every kernel of the build may use
    cmake_args: str


AVX512 = Variant(
    "avx512",
    frozenset({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512vbmi",
               "avx512_vnni", "avx512_bf16"}),
    f"{_AVX2_ARGS} -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON {_NO_AMX}",
)
BUILT = {AVX512.name: AVX512}  # the variants built beside the package
_LIBRARIES = ("libggml-base.so.0", "libggml-cpu.so.0")  # in load order: the CPU backend needs the base


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, as the kernel reports them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def llama_version() -> str:
    return importlib.metadata.version("llama_cpp_python")


def variant_dir(name: str, cache_dir: Path) -> Path:
    """Where variant ``name`` of the installed llama-cpp-python version is kept (whether or not it is there)."""
    return cache_dir / "llama-cpu" / f"{llama_version()}-{name}"


def installed(cache_dir: Path) -> list[str]:
    """The variants this process could load: the built-in one, then each built one that is complete."""
    return [BUILT_IN] + [name for name in BUILT
                         if all((variant_dir(name, cache_dir) / lib).is_file() for lib in _LIBRARIES)]


def runnable(cache_dir: Path, flags: frozenset[str] | None = None) -> list[str]:
    """The installed variants this CPU can run: the built-in one, then each built one whose flags it has."""
    flags = cpu_flags() if flags is None else flags
    return [name for name in installed(cache_dir) if name == BUILT_IN or BUILT[name].needs <= flags]


def choose(requested: LlamaCpu, cache_dir: Path, flags: frozenset[str] | None = None) -> str:
    """The variant to load for ``requested``: ``auto`` picks the first built variant that is installed and
    whose flags the CPU has, else the built-in one; a named variant must be installed and supported."""
    flags = cpu_flags() if flags is None else flags
    present = installed(cache_dir)
    if requested == "auto":
        return next((name for name in BUILT if name in present and BUILT[name].needs <= flags), BUILT_IN)
    if requested == BUILT_IN:
        return BUILT_IN
    if requested not in BUILT:
        raise SettingsError(f"llama_cpu must be one of {', '.join(LLAMA_CPUS)}, not {requested!r}")
    if requested not in present:
        raise SettingsError(f"llama.cpp's {requested} build is not installed in {variant_dir(requested, cache_dir)}:"
                            " run `python -m rag.models.llama_cpu build` (make install does)")
    missing = BUILT[requested].needs - flags
    if missing:
        raise SettingsError(f"llama.cpp's {requested} build needs CPU flags this CPU lacks: "
                            f"{', '.join(sorted(missing))}")
    return requested


def loaded() -> str | None:
    """The variant whose CPU backend this process has loaded, read from the process's own memory map (None
    before llama.cpp is loaded)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if Path(path).name.startswith("libggml-cpu.so"):
            parent = Path(path).parent.name
            return next((name for name in BUILT if parent.endswith(f"-{name}")), BUILT_IN)
    return None


def load(requested: LlamaCpu, cache_dir: Path) -> str:
    """Make the chosen variant the one ``llama_cpp`` will use, before it is imported; returns its name.
    A process runs one variant: asking for another after llama.cpp is loaded is an error."""
    already = loaded()
    if already is not None:
        if requested not in ("auto", already):
            raise SettingsError(f"this process already runs llama.cpp's {already} build; "
                                f"llama_cpu={requested} takes a new process")
        return already
    name = choose(requested, cache_dir)
    if name != BUILT_IN:
        folder = variant_dir(name, cache_dir)
        for library in _LIBRARIES:
            # Global, so that libllama.so's own dependencies of these names resolve to them.
            ctypes.CDLL(str(folder / library), mode=ctypes.RTLD_GLOBAL)
    return name


def system_info() -> str:
    """llama.cpp's own account of the kernels it was built with (after :func:`load`)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()


def build(variant: Variant, cache_dir: Path, log=print) -> Path:
    """Build the installed llama-cpp-python version for ``variant`` (pip, from its source, never from pip's
    wheel cache, which holds the AVX2 build under the same name) and keep its libraries in the variant's
    folder. Does nothing when they are already there."""
    target = variant_dir(variant.name, cache_dir)
    if all((target / lib).is_file() for lib in _LIBRARIES):
        log(f"llama.cpp {variant.name} build: already in {target}")
        return target
    version = llama_version()
    log(f"llama.cpp {variant.name} build: compiling llama-cpp-python {version} (about ten minutes on two cores)")
    with tempfile.TemporaryDirectory(prefix="rag-llama-build-") as scratch:
        environ = {**os.environ, "CMAKE_ARGS": variant.cmake_args}
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--no-cache-dir", "--wheel-dir", scratch, f"llama-cpp-python=={version}"],
                       env=environ, check=True)
        wheel = next(Path(scratch).glob("llama_cpp_python-*.whl"))
        staging = Path(tempfile.mkdtemp(prefix=f".{variant.name}-", dir=_ensure(target.parent)))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("llama_cpp/lib/") and ".so" in member:
                    (staging / Path(member).name).write_bytes(archive.read(member))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)  # whole or not at all: a half-copied folder is never taken for a build
    # A decode in a process of its own: a build whose kernels crash on this CPU must not be kept.
    check = subprocess.run([sys.executable, "-m", "rag.models.llama_cpu", "smoke", variant.name],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        shutil.rmtree(target)
        log(f"llama.cpp {variant.name} build: its test decode failed (exit {check.returncode}), so it is not kept "
            f"and the {BUILT_IN} build runs")
        return target
    log(f"llama.cpp {variant.name} build: kept in {target}")
    return target


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def smoke(requested: LlamaCpu, cache_dir: Path) -> str:
    """One real decode with the small model on the chosen variant; returns a line that names it."""
    name = load(requested, cache_dir)
    from llama_cpp import Llama

    from rag.models.weights import SMALL_MODEL, resolve

    model = Llama(model_path=str(resolve(SMALL_MODEL).path), n_ctx=256, verbose=False)
    model.eval(model.tokenize(b"The harbour reopened on Tuesday after the storm."))
    return f"llama.cpp runs its {loaded() or name} build: {kernels()}"


def kernels() -> str:
    """The vector instruction sets the loaded CPU backend was built to use, e.g. ``AVX2 | AVX512 | ...``."""
    parts = [part.strip().removesuffix("= 1").strip() for part in system_info().split("|")]
    return " | ".join(part.removeprefix("CPU :").strip() for part in parts
                      if ("AVX" in part or "AMX" in part) and not part.endswith("= 0"))


def main(argv: list[str] | None = None) -> int:
    """``build`` (the AVX-512 variant, where the CPU has its flags) or ``smoke [variant]``."""
    args = sys.argv[1:] if argv is None else argv
    config = Config.from_env()
    if args[:1] == ["build"]:
        missing = AVX512.needs - cpu_flags()
        if missing:
            print(f"llama.cpp avx512 build: skipped, this CPU lacks {', '.join(sorted(missing))}")
            return 0
        try:
            build(AVX512, config.cache_dir)
        except (subprocess.CalledProcessError, OSError, StopIteration) as exc:
            # The AVX2 build the package carries works on its own: a failed second build costs speed, not use.
            print(f"llama.cpp avx512 build: failed ({exc}); the avx2 build runs", file=sys.stderr)
        return 0
    if args[:1] == ["smoke"]:
        requested = args[1] if len(args) > 1 else config.llama_cpu
        if requested not in LLAMA_CPUS:
            print(f"llama_cpu must be one of {', '.join(LLAMA_CPUS)}, not {requested!r}", file=sys.stderr)
            return 2
        print(smoke(requested, config.cache_dir))
        return 0
    print("usage: python -m rag.models.llama_cpu build | smoke [auto|avx2|avx512]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
