"""The `vqclip` command of the pip package: the native binary beside this file (bin/vqclip), run on the libtorch of
the torch installed in this Python environment, found without importing torch."""

import importlib.util
import os
import sys
from pathlib import Path


class TorchMissing(RuntimeError):
    pass


def binary() -> Path:
    return Path(__file__).resolve().parent / "bin" / "vqclip"


def torch_lib() -> Path:
    """torch's lib/ (libtorch_cpu.so and the rest), wherever pip put torch."""
    spec = importlib.util.find_spec("torch")
    for location in (spec.submodule_search_locations or []) if spec else []:
        lib = Path(location) / "lib"
        if (lib / "libtorch_cpu.so").exists():
            return lib
    raise TorchMissing(
        "torch is not installed in this Python environment (vqclip runs on its libtorch): pip install torch==2.11.0"
    )


def environment(base=None) -> dict:
    """`base` (default: this process's environment) with torch's lib/ first on the library path."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(torch_lib()), *rest])
    return env


def main() -> None:
    try:
        env = environment()
    except TorchMissing as e:
        print(f"vqclip: error: {e}", file=sys.stderr)
        sys.exit(1)
    exe = binary()
    if not os.access(exe, os.X_OK):
        print(f"vqclip: error: {exe} is not executable (a broken install?): pip install --force-reinstall vqclip",
              file=sys.stderr)
        sys.exit(1)
    os.execve(exe, [str(exe), *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
