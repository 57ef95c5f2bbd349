"""The notebook API: each function runs the binary (through _launcher's environment) and reads its results."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ._launcher import binary, environment

_PROGRESS = re.compile(r"^step (\d+)/(\d+)(?: loss (\S+))?$")


class VqclipError(Exception):
    """A run that failed: `message` is the command's one line (without `vqclip: error: `), `exit_code` its status,
    `kind` "usage" (exit 2: a bad setting or argument), "runtime" (exit 1) or "interrupted" (130)."""

    def __init__(self, message, exit_code, stderr=""):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.kind = {2: "usage", 130: "interrupted"}.get(exit_code, "runtime")
        self.stderr = stderr


class UsageError(VqclipError, ValueError):
    """Exit 2: a bad setting, argument or file name (fix the call)."""


class RunError(VqclipError, RuntimeError):
    """Exit 1 (or 130): the run failed or was interrupted."""


def command(*args):
    """The command line of the `vqclip` command with `args` (for subprocess), and its environment."""
    return [str(binary()), *map(str, args)], environment()


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (str, os.PathLike)):
        return json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"a setting value must be a string, number, bool or list of them, not {type(v).__name__}")


def _settings_toml(settings):
    return "".join(f"{key.replace('_', '-')} = {_toml_value(value)}\n" for key, value in settings.items())


class _Progress:
    """tqdm.auto (a widget in Jupyter, a bar elsewhere) when it is installed, else the lines as they come."""

    def __init__(self, show):
        self.show = show
        self.bar = None
        self.tqdm = None
        if show:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                pass

    def update(self, step, total, loss):
        if not self.show:
            return
        if self.tqdm is None:
            print(f"step {step}/{total}" + (f" loss {loss}" if loss else ""), file=sys.stderr, flush=True)
            return
        if self.bar is None:
            self.bar = self.tqdm(total=total, unit="step", desc="vqclip")
        self.bar.update(step - self.bar.n)
        if loss:
            self.bar.set_postfix(loss=loss)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _run(args, quiet=False, progress=False):
    """Runs the binary with `args`; returns its stdout. Its stderr goes on to ours (progress lines to the bar)."""
    cmd, env = command(*args)
    if progress:
        env["VQCLIP_PROGRESS"] = "lines"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    bar = _Progress(progress and not quiet)
    lines = []

    def pump():
        for line in proc.stderr:
            line = line.rstrip("\n")
            m = _PROGRESS.match(line)
            if m:
                bar.update(int(m.group(1)), int(m.group(2)), m.group(3))
                continue
            lines.append(line)
            if not quiet:
                print(line, file=sys.stderr, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        out = proc.stdout.read()
        code = proc.wait()
    except KeyboardInterrupt:
        # The binary saves a checkpoint on Ctrl-C (exit 130): let it finish that.
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    finally:
        reader.join(timeout=5)
        bar.close()
    if code != 0:
        errors = [line for line in lines if line.startswith("vqclip: error: ")]
        message = errors[-1][len("vqclip: error: "):] if errors else (lines[-1] if lines else f"exit status {code}")
        cls = UsageError if code == 2 else RunError
        raise cls(message, code, "\n".join(lines))
    return out


class Result:
    """One finished run: `run_dir`, `image_path` (final.png), `image` (PIL), `settings` (run.toml as a dict) and
    `log` (log.jsonl's rows). In Jupyter a Result shows its image."""

    def __init__(self, image_path):
        self.image_path = Path(image_path)
        self.run_dir = self.image_path.parent

    @property
    def image(self):
        from PIL import Image  # pillow: pip install vqclip[notebook]

        with Image.open(self.image_path) as im:
            im.load()
            return im.copy()

    @property
    def settings(self):
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib

        with open(self.run_dir / "run.toml", "rb") as f:
            return tomllib.load(f)

    @property
    def log(self):
        path = self.run_dir / "log.jsonl"
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def _repr_png_(self):
        return self.image_path.read_bytes()

    def __repr__(self):
        return f"vqclip.Result({str(self.image_path)!r})"


def generate(prompt=None, *, out=None, preset=None, force=False, fetch=False, quiet=False, **settings):
    """`vqclip generate PROMPT` with `settings` named like the command line's TOML keys (`cut_pow=1.5`,
    `clip=["ViT-B/32"]`, `steps=100`); `preset` a name or a list of them, `out` the run directory. Returns a Result
    (a list of them with `count`), shows progress on the way, raises UsageError / RunError with the command's message."""
    args = ["generate"]
    if prompt is not None:
        args.append("|".join(prompt) if isinstance(prompt, (list, tuple)) else str(prompt))
    for p in [preset] if isinstance(preset, (str, os.PathLike)) else (preset or []):
        args += ["--preset", str(p)]
    if out is not None:
        args += ["--out", str(out)]
    if force:
        args.append("--force")
    if fetch:
        args.append("--fetch")
    if quiet:
        args.append("--quiet")
    with tempfile.TemporaryDirectory(prefix="vqclip-") as tmp:
        if settings:
            config = Path(tmp) / "settings.toml"
            config.write_text(_settings_toml(settings), encoding="utf-8")
            args += ["--config", str(config)]
        stdout = _run(args, quiet=quiet, progress=True)
    images = [line for line in stdout.splitlines() if line.strip()]
    results = [Result(p) for p in images]
    if not results:
        raise RunError("the run printed no final image", 1)
    return results[0] if len(results) == 1 else results


def classify(images, labels=None, *, labels_file=None, template=None, templates=None, clip=None, top=None,
             device=None, precision=None):
    """`vqclip classify --json`: one row per image with its labels' probabilities."""
    args = ["classify", *(map(str, [images] if isinstance(images, (str, os.PathLike)) else images)), "--json"]
    if labels is not None:
        args += ["--labels", "|".join(labels) if isinstance(labels, (list, tuple)) else labels]
    for flag, value in (("--labels-file", labels_file), ("--templates", templates), ("--clip", clip),
                        ("--top", top), ("--device", device), ("--precision", precision)):
        if value is not None:
            args += [flag, str(value)]
    for t in [template] if isinstance(template, str) else (template or []):
        args += ["--template", t]
    return json.loads(_run(args))


def search(directory, query=None, *, image_query=None, top=None, clip=None, device=None, reindex=False,
           precision=None):
    """`vqclip search DIR --json`: the best matches of a text (or image) query, best first."""
    args = ["search", str(directory), "--json"]
    for flag, value in (("--query", query), ("--image-query", image_query), ("--top", top), ("--clip", clip),
                        ("--device", device), ("--precision", precision)):
        if value is not None:
            args += [flag, str(value)]
    if reindex:
        args.append("--reindex")
    return json.loads(_run(args))
