"""hatchling build hook: the wheel holds a native binary, so it is not pure Python, and its platform tag says which
glibc that binary needs: manylinux_2_<N>_x86_64, N the newest GLIBC_2.N symbol version the binary asks for (read with
objdump), at least 28 because torch 2.11's own wheels are manylinux_2_28 and the binary runs on their libtorch.
libtorch, libc10 and the libstdc++ they need are not vendored: the torch wheel the package depends on provides them."""

import re
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def glibc_minor(binary: Path) -> int:
    out = subprocess.run(["objdump", "-T", str(binary)], check=True, capture_output=True, text=True).stdout
    minors = [int(m) for m in re.findall(r"GLIBC_2\.(\d+)", out)]
    return max(minors, default=17)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        binary = Path(self.root) / "vqclip" / "bin" / "vqclip"
        if not binary.is_file():
            raise RuntimeError(f"{binary} is missing: build the wheel with scripts/build-wheel")
        minor = max(glibc_minor(binary), 28)
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-manylinux_2_{minor}_x86_64"
