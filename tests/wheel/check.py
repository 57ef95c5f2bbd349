#!/usr/bin/env python3
"""The pip package, end to end (scripts/test runs it after the Rust tests):

1. scripts/build-wheel into a temporary directory;
2. the wheel as a zip (`python -m zipfile -l`): under 100 MB, no path of this machine in any file (the repository, the
   cargo home, the home directory, the .venv), the `vqclip` entry point, the torch==2.11.0 requirement, a manylinux
   tag, an executable binary and the demo models;
3. a fresh venv that sees the project's torch through a .pth file (no second download), the wheel installed with
   `pip install --no-deps`; then, from a directory outside the repository: `vqclip --version`, the demo command (an
   image), `vqclip doctor` (the package's demo models, the per-user weights cache), and the Python API: an image of
   the right size, a usage error raised with the command's message.

    .venv/bin/python tests/wheel/check.py
"""

import os
import re
import site
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 100 * 1000 * 1000


def say(msg):
    print(f"wheel: {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd=None, env=None, check=True):
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"wheel: FAILED: {' '.join(map(str, cmd))} (exit {p.returncode})\n{p.stdout}\n{p.stderr}")
    return p


def expect(cond, what):
    if not cond:
        raise SystemExit(f"wheel: FAILED: {what}")
    say(f"ok: {what}")


def inspect(whl: Path):
    size = whl.stat().st_size
    expect(size < MAX_BYTES, f"the wheel is {size / 1e6:.1f} MB (under 100 MB)")
    listing = run([sys.executable, "-m", "zipfile", "-l", whl]).stdout
    expect("vqclip/bin/vqclip" in listing, "python -m zipfile -l lists the binary")
    expect(re.search(r"-py3-none-manylinux_2_\d+_x86_64\.whl$", whl.name) is not None, f"a manylinux tag: {whl.name}")
    home = os.path.expanduser("~")
    cargo_home = os.environ.get("CARGO_HOME", os.path.join(home, ".cargo"))
    needles = {str(ROOT), cargo_home, str(ROOT / ".venv")}
    if home not in ("", "/"):
        needles.add(home + "/")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        for n in ("vqclip/__init__.py", "vqclip/_launcher.py", "vqclip/_api.py", "vqclip/weights/demo/demo_clip.pt",
                  "vqclip/weights/demo/demo_vqgan.ckpt", "vqclip/weights/demo/demo_vqgan.yaml"):
            expect(n in names, f"the wheel holds {n}")
        mode = z.getinfo("vqclip/bin/vqclip").external_attr >> 16
        expect(mode & 0o111 != 0, f"the binary is executable in the wheel (mode {oct(mode & 0o777)})")
        info = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        expect(len(info) == 1 and "vqclip = vqclip._launcher:main" in z.read(info[0]).decode(),
               "the console entry point vqclip = vqclip._launcher:main")
        meta = z.read([n for n in names if n.endswith(".dist-info/METADATA")][0]).decode()
        expect("Requires-Dist: torch==2.11.0" in meta, "it requires torch==2.11.0")
        found = []
        for n in names:
            data = z.read(n)
            found += [f"{n}: {s}" for s in needles if s.encode() in data]
        expect(not found, "no path of this machine in any file" + (f": {found[:5]}" if found else ""))


def main():
    tmp = Path(tempfile.mkdtemp(prefix="vqclip-wheel-"))
    say(f"building into {tmp}/dist")
    run([ROOT / "scripts" / "build-wheel", "--out", tmp / "dist"])
    wheels = sorted((tmp / "dist").glob("vqclip-*.whl"))
    expect(len(wheels) == 1, f"one wheel: {[w.name for w in wheels]}")
    whl = wheels[0]
    inspect(whl)
    with zipfile.ZipFile(whl) as z:
        z.extract("vqclip/bin/vqclip", tmp / "x")
    runpath = run(["readelf", "-d", tmp / "x" / "vqclip" / "bin" / "vqclip"]).stdout
    rp = re.findall(r"R(?:UN)?PATH.*\[(.*)\]", runpath)
    expect(rp == ["$ORIGIN/../../torch/lib"], f"the binary's only rpath is relative: {rp}")

    # A fresh venv that sees the project's torch (no second download).
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv])
    vpy = venv / "bin" / "python"
    vsite = Path(run([vpy, "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip())
    (vsite / "project_torch.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([vpy, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", whl])
    has_pil = run([vpy, "-c", "import PIL"], check=False).returncode == 0
    if not has_pil:
        has_pil = run([vpy, "-m", "pip", "install", "--quiet", "pillow"], check=False).returncode == 0
    outside = tmp / "outside"
    outside.mkdir()
    env = dict(os.environ)
    for k in ("VQCLIP_WEIGHTS", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(k, None)
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    exe = venv / "bin" / "vqclip"
    version = run([exe, "--version"], cwd=outside, env=env).stdout.strip()
    cargo_version = re.search(r'^version = "(.*)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    expect(version == f"vqclip {cargo_version}", f"vqclip --version from outside the repository: {version}")
    demo = run([exe, "generate", "a red circle on a blue background", "--preset", "demo", "--steps", "5", "--seed",
                "1", "--save-every", "2", "--quiet", "--out", "run1"], cwd=outside, env=env)
    final = outside / "run1" / "final.png"
    expect(demo.stdout.strip().endswith("final.png") and final.is_file(), "the demo command makes an image")
    doctor = run([exe, "doctor"], cwd=outside, env=env).stdout
    demo_clip = vsite / "vqclip" / "weights" / "demo" / "demo_clip.pt"
    expect(f"present: {demo_clip}" in doctor, f"vqclip doctor names the package's demo models ({demo_clip})")
    cache = tmp / "cache" / "vqclip" / "weights"
    expect(f"weights directory: {cache}" in doctor, "the weights directory is the per-user cache")
    api = f"""
import vqclip, struct
r = vqclip.generate("a red circle on a blue background", preset="demo", steps=3, seed=2, out="run2", quiet=True,
                    cut_pow=1.0)
assert r.run_dir.name == "run2", r.run_dir
assert len(r.log) == 3 and r.settings["steps"] == 3, (r.log, r.settings)
png = r.image_path.read_bytes()
w, h = struct.unpack(">II", png[16:24])
assert (w, h) == (128, 128), (w, h)
if {has_pil}:
    assert r.image.size == (128, 128), r.image.size
assert r._repr_png_() == png
try:
    vqclip.generate("x", preset="demo", steps=-3, out="run3", quiet=True)
except vqclip.UsageError as e:
    assert e.exit_code == 2 and e.kind == "usage" and "steps" in e.message, (e.exit_code, e.message)
    print("usage error:", e.message)
else:
    raise AssertionError("no exception for steps=-3")
try:
    vqclip.generate("x", preset="demo", no_such_setting=1, out="run4", quiet=True)
except vqclip.UsageError as e:
    print("usage error:", e.message)
else:
    raise AssertionError("no exception for an unknown setting")
rows = vqclip.classify(["run1/final.png"], labels="a red circle on a blue background|a green square on a white background",
                       clip="demo-clip", device="cpu")
assert isinstance(rows, (list, dict)) and "run1/final.png" in str(rows), rows
hits = vqclip.search("run1/frames", query="a red circle on a blue background", clip="demo-clip", top=1,
                     device="cpu")
assert isinstance(hits, (list, dict)) and ".png" in str(hits), hits
print("api ok", w, h)
"""
    p = run([vpy, "-c", api], cwd=outside, env=env)
    say(p.stdout.strip().replace("\n", "; "))
    expect("api ok 128 128" in p.stdout, "vqclip.generate returns the run, its 128x128 image, log and settings"
           + ("" if has_pil else " (PIL missing: size read from the PNG header)"))
    expect(p.stdout.count("usage error:") == 2, "bad settings raise UsageError with the command's message")
    say("ok: vqclip.classify and vqclip.search return the rows of --json (demo CLIP)")
    run(["rm", "-rf", tmp])
    say("all checks passed")


if __name__ == "__main__":
    main()
