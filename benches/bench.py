#!/usr/bin/env python3
"""Side-by-side speed and memory benchmark: the anchors' PyTorch loop (benches/reference_loop.py) against
`vqclip generate`, on the same random full-size weights. Driven by `scripts/bench`; see benches/README.md.

Every measured run is its own process (peak RSS = the child's ru_maxrss from wait4). For each configuration the
sides run alternately (reference, vqclip f32, vqclip bf16, rotating the order each round), `--runs` rounds, after one
warm-up run of each side. Seconds per iteration:
  cpu:  every iteration is timed (CPU ops are synchronous): the reference times each iteration, vqclip logs each
        step's "seconds" in log.jsonl. The first --discard iterations of every run are dropped; the median of the
        rest over all runs is reported.
  gpu:  both sides synchronize only every 10 iterations (the reference explicitly; vqclip when it flushes its log,
        which copies the losses to the host). The time between the synchronized points after iteration 10 and at
        the end, divided by the iterations between them, is one run's s/it (for vqclip: arrival times of the log
        lines, polled every 2 ms); the median over runs is reported. Peak GPU memory: nvidia-smi memory.used,
        polled every 20 ms, minus the value before the run (so it includes the CUDA context), for both sides.
  startup: `vqclip generate --steps 1` (64x64, 1 cutout) from the official .ckpt/.pt and from `vqclip weights
        convert`ed .safetensors: time from spawning the process to the start of step 1 (arrival of the first log
        line minus that step's own seconds), and to the first logged step.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "a photo of a red apple"
# The anchors' settings, pinned so a change of vqclip's defaults cannot change what is compared.
VQ_SETTINGS = ["--cut-method", "pooled", "--augments", "affine,perspective,jitter,erasing,noise", "--lr", "0.1",
               "--optimizer", "adam", "--init", "codes", "--seed", "1", "--save-every", "0", "--quiet", "--force"]
# The other drawers' settings as the reference loop runs them (pixray's fast_pixel, aphantasia's fft).
DRAWER_SETTINGS = {
    "fast_pixel": ["--lr", "0.2", "--optimizer", "adam", "--init", "random"],
    "fft": ["--lr", "0.05", "--optimizer", "adamw-amsgrad", "--init", "random"],
}


def vq_settings(drawer):
    if drawer == "vqgan":
        return VQ_SETTINGS
    out = list(VQ_SETTINGS)
    for flag, value in zip(DRAWER_SETTINGS[drawer][::2], DRAWER_SETTINGS[drawer][1::2]):
        out[out.index(flag) + 1] = value
    return out
MODES = {
    "cpu": dict(device="cpu", configs=["128x128x8", "256x256x32"], runs=3, discard=1,
                steps={"128x128x8": 6, "256x256x32": 4}, quick_steps={"128x128x8": 4, "256x256x32": 2}),
    "gpu": dict(device="cuda", configs=["256x256x32", "512x512x64"], runs=3, discard=10,
                steps={"*": 30}, quick_steps={"*": 30}),
}


def say(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def parse_config(c):
    w, h, n = (int(v) for v in c.lower().split("x"))
    return w, h, n


# ---------------------------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------------------------


class LogWatcher(threading.Thread):
    """Records the arrival time of every line of a growing file (vqclip's log.jsonl)."""

    def __init__(self, path, interval):
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.lines = []  # (arrival time, parsed json)
        self.stop = threading.Event()
        self._pos, self._partial = 0, ""

    def _poll(self):
        try:
            with open(self.path, "r") as f:
                f.seek(self._pos)
                data = f.read()
                self._pos = f.tell()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.time()
        data = self._partial + data
        *complete, self._partial = data.split("\n")
        for line in complete:
            if line.strip():
                try:
                    self.lines.append((now, json.loads(line)))
                except json.JSONDecodeError:
                    pass

    def run(self):
        while not self.stop.is_set():
            self._poll()
            time.sleep(self.interval)
        self._poll()


class GpuMemPoller:
    """nvidia-smi memory.used of GPU `index`, every 20 ms; peak() is the max seen (MiB)."""

    def __init__(self, index=0):
        self.values = []
        self.proc = subprocess.Popen(
            ["nvidia-smi", f"--id={index}", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-lms", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.values.append(float(line.strip()))
            except ValueError:
                pass

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(timeout=5)
        return max(self.values) if self.values else None


def gpu_query(fields, index=0):
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [v.strip() for v in out.stdout.strip().split(",")] if out.returncode == 0 else None


def run_child(cmd, env, log_path=None, poll=0.05, gpu=False, timeout=None):
    """Runs cmd; returns rc, wall, peak RSS (MiB, wait4), stdout lines, log lines with arrival times, GPU peak."""
    gpu_base = None
    poller = None
    if gpu:
        q = gpu_query("memory.used")
        gpu_base = float(q[0]) if q else None
        poller = GpuMemPoller() if gpu_base is not None else None
    err = tempfile.TemporaryFile(mode="w+")
    watcher = LogWatcher(log_path, poll) if log_path else None
    if watcher:
        watcher.start()
    t_spawn = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
    out_lines = []

    def read_stdout():
        for line in p.stdout:
            out_lines.append((time.time(), line.rstrip("\n")))

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    killer = None
    if timeout:
        killer = threading.Timer(timeout, lambda: p.kill())
        killer.start()
    _, status, ru = os.wait4(p.pid, 0)
    t_end = time.time()
    if killer:
        killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    if watcher:
        watcher.stop.set()
        watcher.join(timeout=10)
    gpu_peak = poller.stop() if poller else None
    err.seek(0)
    stderr = err.read()
    err.close()
    return dict(rc=p.returncode, t_spawn=t_spawn, wall=t_end - t_spawn, rss_mib=ru.ru_maxrss / 1024.0,
                cpu_s=ru.ru_utime + ru.ru_stime, loadavg=os.getloadavg()[0],
                stdout=out_lines, log=watcher.lines if watcher else [], stderr_tail=stderr[-3000:],
                gpu_peak_mib=(gpu_peak - gpu_base) if (gpu_peak is not None and gpu_base is not None) else None)


# ---------------------------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ)
        self.env.update(OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), PYTHONUNBUFFERED="1")
        self.tmp = tempfile.mkdtemp(prefix="vqclip-bench-")

    def ref(self, cfg, steps, extra=()):
        w, h, n = parse_config(cfg)
        cmd = [self.a.python, os.path.join(ROOT, "benches", "reference_loop.py"), "--vqgan", self.a.vqgan,
               "--clip", self.a.clip, "--prompt", PROMPT, "--size", f"{w}x{h}", "--cutouts", str(n),
               "--steps", str(steps), "--device", self.a.device, "--threads", str(self.a.threads), "--seed", "1",
               "--drawer", self.a.drawer, *extra]
        r = run_child(cmd, self.env, gpu=self.a.device != "cpu", timeout=self.a.child_timeout)
        res = None
        windows = []
        for _, line in r["stdout"]:
            if line.startswith("BENCH "):
                res = json.loads(line[6:])
        if r["rc"] == 0 and res:
            windows = [tuple(wi) for wi in res["windows"]]
            r["result"] = res
            r["t_first_step"] = res["t_first_step"] - r["t_spawn"]
        else:
            tail = [ln for ln in r["stderr_tail"].strip().splitlines() if ln.strip()]
            r["error"] = f"exit {r['rc']}: " + (" | ".join(tail[-3:]) if tail else "(no stderr)")
        r["windows"] = windows  # (first, last, seconds) between synchronized points
        return r

    def vq(self, cfg, steps, precision, vqgan=None, clip=None, poll=None):
        w, h, n = parse_config(cfg)
        out = tempfile.mkdtemp(dir=self.tmp)
        log_path = os.path.join(out, "log.jsonl")
        cmd = [self.a.bin, "generate", PROMPT, "--vqgan", vqgan or self.a.vqgan, "--clip", clip or self.a.clip,
               "--size", f"{w}x{h}", "--cutouts", str(n), "--steps", str(steps), "--device", self.a.device,
               "--precision", precision, "--out", out, "--drawer", self.a.drawer, *vq_settings(self.a.drawer)]
        if poll is None:
            poll = 0.002 if self.a.device != "cpu" else 0.05
        r = run_child(cmd, self.env, log_path=log_path, poll=poll, gpu=self.a.device != "cpu",
                      timeout=self.a.child_timeout)
        if r["rc"] != 0:
            tail = [ln for ln in r["stderr_tail"].strip().splitlines() if ln.strip()]
            r["error"] = f"exit {r['rc']}: " + (" | ".join(tail[-3:]) if tail else "(no stderr)")
        shutil.rmtree(out, ignore_errors=True)
        return r


def cpu_samples(r, side, discard):
    """Per-iteration seconds of the iterations after the first `discard`."""
    if side == "reference":
        return [s for (first, last, s) in r["windows"] if first > discard and last == first]
    return [rec["seconds"] for _, rec in r["log"] if rec.get("step", 0) > discard]


def gpu_rate(r, side, discard):
    """One run's s/it between the synchronized point at/after iteration `discard` and the last one."""
    if side == "reference":
        kept = [(first, last, s) for (first, last, s) in r["windows"] if first > discard]
        if not kept:
            return None, "no window after the warm-up"
        return sum(s for _, _, s in kept) / sum(last - first + 1 for first, last, _ in kept), "synchronized windows"
    groups = []  # (arrival time, last step of the lines that arrived together)
    for t, rec in r["log"]:
        if groups and abs(groups[-1][0] - t) < 1e-9:
            groups[-1] = (t, max(groups[-1][1], rec["step"]))
        else:
            groups.append((t, rec["step"]))
    start = next((g for g in groups if g[1] >= discard), None)
    end = groups[-1] if groups else None
    if start and end and end[1] > start[1]:
        return (end[0] - start[0]) / (end[1] - start[1]), "log flush arrivals"
    host = [rec["seconds"] for _, rec in r["log"] if rec.get("step", 0) > discard]
    if host:
        return statistics.mean(host), "HOST step seconds (log flushed once; unsynchronized, optimistic)"
    return None, "no log lines"


# ---------------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------------


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(a):
    cpu = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    info = dict(cpu=cpu or platform.processor(), cpus=os.cpu_count(),
                cpus_usable=len(os.sched_getaffinity(0)), threads=a.threads,
                mem_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                kernel=platform.release(),
                vqclip=sh([a.bin, "--version"]) + time.strftime(", binary built %Y-%m-%d %H:%M",
                                                                time.localtime(os.path.getmtime(a.bin))),
                git=sh(["git", "rev-parse", "--short", "HEAD"]) + (" + uncommitted changes" if sh(
                    ["git", "status", "--porcelain", "--untracked-files=no", "src"]) else ""),
                loadavg_start=os.getloadavg())
    if a.device != "cpu":
        q = gpu_query("name,driver_version,memory.total")
        if q:
            info["gpu"] = f"{q[0]} ({q[2]} MiB, driver {q[1]})"
    return info


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_mib(x):
    if x is None:
        return "–"
    return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "–"


def cpu_peak(threads):
    """This CPU's peak GFLOP/s on `threads` cores, f32 and bf16, and how it was worked out: vector lanes x 2 (an FMA is
    two FLOPs) x FMA units x cores x clock. Lanes, AMX and the clock are read from the CPU; the FMA units per core are
    not exposed anywhere, so 2 is assumed (server cores since Skylake-SP / Zen 4 have two 512-bit or four 256-bit)."""
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    lanes, isa = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    ghz, src = None, ""
    try:
        ghz, src = int(open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read()) / 1e6, "cpufreq max"
    except OSError:
        for line in sh(["lscpu"]).splitlines():
            if line.startswith("CPU max MHz:"):
                ghz, src = float(line.split(":", 1)[1]) / 1000, "lscpu max"
        if ghz is None:
            mhz = [float(line.split(":", 1)[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
            if mhz:
                ghz, src = max(mhz) / 1000, "/proc/cpuinfo cpu MHz (current clock: no max is exposed)"
    if ghz is None:
        return None, None, "no clock could be read"
    cores = max(1, min(threads, len(os.sched_getaffinity(0))))
    fma = 2
    f32 = lanes * 2 * fma * cores * ghz
    if "amx_bf16" in flags:
        bf16, how16 = 1024 * cores * ghz, "AMX: 1024 bf16 FLOPs per cycle per core, Intel's figure"
    elif "avx512_bf16" in flags:
        bf16, how16 = 2 * f32, "AVX512-BF16: twice the f32 lanes"
    else:
        bf16, how16 = f32, "no bf16 instructions: as f32"
    how = (f"{isa} {lanes} f32 lanes x 2 FLOPs per FMA x {fma} FMA units (assumed) x {cores} cores x {ghz:.2f} GHz "
           f"({src}) = {f32:.0f} GFLOP/s f32; bf16 {bf16:.0f} GFLOP/s ({how16})")
    return f32, bf16, how


def limit_table(results, info):
    """GFLOP per step (counted), achieved GFLOP/s of each side and their share of this CPU's peak."""
    f32, bf16, how = cpu_peak(info["threads"])
    lines = ["How close to the limit: FLOPs per step counted by torch's FlopCounterMode on one reference step "
             "(forward, and the backward to the latents: the weights are frozen); " + how + ".", "",
             "| size x cutouts | GFLOP per step | reference GFLOP/s (f32 peak) | vqclip f32 GFLOP/s (f32 peak) "
             "| vqclip bf16 GFLOP/s (bf16 peak) |", "|---|---|---|---|---|"]
    for cfg, per in results.items():
        fl = info["flops"].get(cfg)
        if not fl:
            continue
        row = [cfg, f"{fl / 1e9:.1f}"]
        for side, peak in (("reference", f32), ("vqclip f32", f32), ("vqclip bf16", bf16)):
            s = per[side]["s_per_it"]
            if s:
                rate = fl / s / 1e9
                row.append(f"{rate:.1f} ({100 * rate / peak:.0f} %)" if peak else f"{rate:.1f}")
            else:
                row.append("–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def table(mode, results, info, extra_notes):
    lines = []
    gpu = mode == "gpu"
    sides = ["reference", "vqclip f32", "vqclip bf16"]
    if gpu:
        lines.append("| size x cutouts | reference s/it | vqclip f32 s/it | f32 / ref | vqclip bf16 s/it | bf16 / ref "
                     "| ref peak GPU mem | vqclip peak GPU mem f32 / bf16 | mem f32 / ref, bf16 / ref |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
    else:
        lines.append("| size x cutouts | reference s/it | vqclip f32 s/it | f32 / ref | vqclip bf16 s/it | bf16 / ref "
                     "| ref peak RSS | vqclip peak RSS f32 / bf16 |")
        lines.append("|---|---|---|---|---|---|---|---|")
    for cfg, per in results.items():
        s = {k: per[k]["s_per_it"] for k in sides}
        m = {k: per[k]["gpu_peak_mib" if gpu else "rss_mib"] for k in sides}
        row = [cfg, fmt_s(s["reference"]), fmt_s(s["vqclip f32"]), fmt_ratio(s["vqclip f32"], s["reference"]),
               fmt_s(s["vqclip bf16"]), fmt_ratio(s["vqclip bf16"], s["reference"]), fmt_mib(m["reference"]),
               f"{fmt_mib(m['vqclip f32'])} / {fmt_mib(m['vqclip bf16'])}"]
        if gpu:
            row.append(f"{fmt_ratio(m['vqclip f32'], m['reference'])}, {fmt_ratio(m['vqclip bf16'], m['reference'])}")
        for k in sides:
            if s[k] is None and per[k].get("error"):
                row[[1, 2, 4][sides.index(k)]] = "failed"
        lines.append("| " + " | ".join(row) + " |")
    title = f"## vqclip vs reference: {mode}, drawer {info.get('drawer', 'vqgan')}, CLIP {info.get('clip_name', '?')}"
    out = [title, ""] + lines + [""]
    if not gpu and info.get("flops"):
        out.extend(limit_table(results, info) + [""])
    out.append(f"Machine: {info.get('gpu', '') + '; host ' if 'gpu' in info else ''}{info['cpu']}, "
               f"{info['cpus_usable']} usable CPUs, {info['mem_gib']} GiB RAM, kernel {info['kernel']}; "
               f"threads {info['threads']} on both sides (OMP_NUM_THREADS/MKL_NUM_THREADS; reference also "
               f"torch.set_num_threads, it reported {info.get('ref_threads', '?')}); reference torch "
               f"{info.get('ref_torch', '?')}, CLIP {info.get('ref_clip_dtype', '?')} via {info.get('ref_clip', '?')}; "
               f"{info['vqclip']} (git {info['git']}); load average {info['loadavg_start'][0]:.2f} at start, "
               f"{info.get('loadavg_end', (0,))[0]:.2f} at end.")
    out.append("")
    out.extend(extra_notes)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------------------------


def run_speed(a):
    spec = MODES[a.mode]
    configs = a.configs.split(",") if a.configs else spec["configs"]
    steps_map = {"*": a.steps} if a.steps else spec["quick_steps" if a.quick else "steps"]
    runs = a.runs or spec["runs"]
    discard = spec["discard"]
    b = Bench(a)
    info = machine_info(a)
    info.update(drawer=a.drawer, clip_name=os.path.basename(a.clip))
    t_start = time.time()
    sides = [("reference", None), ("vqclip f32", "f32"), ("vqclip bf16", "bf16")]
    notes = []

    def one(side, prec, cfg, steps):
        return b.ref(cfg, steps) if prec is None else b.vq(cfg, steps, prec)

    # FLOPs per step of each configuration: one reference step under torch's counter (the same step vqclip takes)
    flops = {}
    for cfg in configs:
        r = b.ref(cfg, 1, extra=("--count-flops",))
        if r.get("result") and r["result"].get("flops_per_step"):
            flops[cfg] = r["result"]["flops_per_step"]

    say(f"{a.mode}: warm-up, one short run of each side at {configs[0]}")
    warm_steps = 1 if a.device == "cpu" else 11
    failed = {}
    for side, prec in sides:
        r = one(side, prec, configs[0], warm_steps)
        say(f"  warm-up {side}: rc {r['rc']}, {r['wall']:.1f} s" + (f" ({r['error']})" if r.get("error") else ""))
        if r.get("result"):
            info.update(ref_threads=r["result"]["threads"], ref_torch=r["result"]["torch"],
                        ref_clip=r["result"]["clip_source"], ref_clip_dtype=r["result"]["clip_dtype"])

    results = {}
    for cfg in configs:
        steps = steps_map.get(cfg, steps_map.get("*", 4))
        per = {s: dict(samples=[], run_rates=[], rss_mib=[], gpu_peak_mib=[], errors=[], load=[], how=set(),
                       runs=[])
               for s, _ in sides}
        for rnd in range(runs):
            order = sides[rnd % len(sides):] + sides[:rnd % len(sides)]
            for side, prec in order:
                if failed.get((cfg, side)):
                    continue
                if a.max_seconds and time.time() - t_start > a.max_seconds:
                    msg = f"time budget ({a.max_seconds} s) reached: {cfg} {side} has {len(per[side]['rss_mib'])} runs"
                    if msg not in notes:
                        notes.append("- " + msg)
                    continue
                r = one(side, prec, cfg, steps)
                d = per[side]
                if r["rc"] != 0 or r.get("error"):
                    d["errors"].append(r.get("error", f"exit {r['rc']}"))
                    failed[(cfg, side)] = True
                    say(f"  {cfg} {side} round {rnd + 1}: FAILED {d['errors'][-1]}")
                    continue
                d["rss_mib"].append(r["rss_mib"])
                d["runs"].append(dict(wall=r["wall"], cpu_s=r["cpu_s"], loadavg=r["loadavg"], steps=steps))
                if r["gpu_peak_mib"] is not None:
                    d["gpu_peak_mib"].append(r["gpu_peak_mib"])
                if side != "reference" and a.device != "cpu":
                    # vqclip's own figure: the caching allocator's peak, from its `done:` line
                    m = re.search(r"peak device memory ([0-9.]+) GiB", r["stderr_tail"])
                    if m:
                        d.setdefault("torch_max_allocated_mib", []).append(float(m.group(1)) * 1024)
                if side == "reference":
                    d["load"].append(r["t_first_step"])
                    if a.device != "cpu":
                        d.setdefault("torch_max_allocated_mib", []).append(r["result"].get("cuda_max_allocated_mib"))
                        d.setdefault("torch_max_reserved_mib", []).append(r["result"].get("cuda_max_reserved_mib"))
                if a.mode == "cpu":
                    xs = cpu_samples(r, side, discard)
                    d["samples"].extend(xs)
                    d["run_rates"].append(med(xs))
                    d["how"].add("per-iteration")
                else:
                    rate, how = gpu_rate(r, side, discard)
                    if rate is not None:
                        d["run_rates"].append(rate)
                        d["samples"].append(rate)
                    d["how"].add(how)
                say(f"  {cfg} {side} round {rnd + 1}: {fmt_s(d['run_rates'][-1] if d['run_rates'] else None)} s/it, "
                    f"rss {fmt_mib(r['rss_mib'])}"
                    + (f", gpu {fmt_mib(r['gpu_peak_mib'])}" if r["gpu_peak_mib"] is not None else "")
                    + f", wall {r['wall']:.1f} s")
        for side, d in per.items():
            d["s_per_it"] = med(d["samples"])
            d["rss_mib"] = max(d["rss_mib"]) if d["rss_mib"] else None
            d["gpu_peak_mib"] = max(d["gpu_peak_mib"]) if d["gpu_peak_mib"] else None
            d["how"] = sorted(d["how"])
            d["error"] = d["errors"][0] if d["errors"] else None
        results[cfg] = per
    info["loadavg_end"] = os.getloadavg()
    info["seconds_total"] = time.time() - t_start
    info["flops"] = flops

    notes.append(f"Method: {runs} alternating rounds after one warm-up run per side; "
                 + (f"{steps_map} steps per run, first {discard} iteration(s) of each run dropped, median of the "
                    "remaining per-iteration times." if a.mode == "cpu" else
                    f"{steps_map} steps per run; s/it of a run = time between the synchronized points at "
                    f"iteration {discard} and at the end / iterations between them; median over runs. "
                    "Peak GPU memory: nvidia-smi memory.used max minus before the run (includes the CUDA context)."))
    for cfg, per in results.items():
        for side, d in per.items():
            spread = (f"samples {', '.join(fmt_s(x) for x in d['samples'])}" if d["samples"] else "no samples")
            extra = ""
            if d.get("load"):
                extra += f"; spawn to first step {', '.join(f'{x:.1f}' for x in d['load'])} s"
            if d.get("torch_max_allocated_mib"):
                extra += f"; torch max_memory_allocated {fmt_mib(max(d['torch_max_allocated_mib']))}"
                if d.get("torch_max_reserved_mib"):
                    extra += f", reserved {fmt_mib(max(d['torch_max_reserved_mib']))}"
            if d.get("runs"):
                # The 1-minute load average at the end of each run (its own threads included) shows other load.
                extra += "; per run wall s/CPU s/load " + ", ".join(
                    f"{x['wall']:.0f}/{x['cpu_s']:.0f}/{x['loadavg']:.1f}" for x in d["runs"])
            err = f"; ERROR: {d['error']}" if d.get("error") else ""
            notes.append(f"- {cfg} {side}: {spread} ({', '.join(d['how'])}){extra}{err}")
    notes.append(f"- total bench time {info['seconds_total']:.0f} s")
    return table(a.mode, results, info, notes), dict(mode=a.mode, info=info, results=results)


def run_startup(a):
    b = Bench(a)
    info = machine_info(a)
    cfg = "64x64x1"
    variants = [("official .ckpt/.pt", a.vqgan, a.clip)]
    notes = []
    st_dir = os.path.join(os.path.dirname(a.vqgan), "safetensors")
    os.makedirs(st_dir, exist_ok=True)
    conv = {}
    for src in (a.vqgan, a.clip):
        dst = os.path.join(st_dir, os.path.splitext(os.path.basename(src))[0] + ".safetensors")
        if src.endswith(".ckpt"):
            y = os.path.splitext(src)[0] + ".yaml"
            if os.path.exists(y):
                shutil.copy2(y, os.path.join(st_dir, os.path.basename(y)))
        if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src) and not a.reconvert:
            conv[src] = (dst, None)
            continue
        t0 = time.time()
        r = run_child([a.bin, "weights", "convert", src, "-o", dst, "--force"], b.env)
        if r["rc"] == 0 and os.path.exists(dst):
            conv[src] = (dst, f"{time.time() - t0:.1f} s, peak RSS {fmt_mib(r['rss_mib'])}")
        else:
            tail = [ln for ln in r["stderr_tail"].splitlines() if ln.strip()]
            conv[src] = (None, f"exit {r['rc']}: " + (tail[-1] if tail else ""))
    for src, (dst, msg) in conv.items():
        notes.append(f"- convert {os.path.basename(src)}: " + (f"{os.path.basename(dst)} ({msg})" if dst and msg else
                                                                (f"reused {dst}" if dst else f"FAILED {msg}")))
    if all(conv[s][0] for s in (a.vqgan, a.clip)):
        variants.append(("converted .safetensors", conv[a.vqgan][0], conv[a.clip][0]))
    else:
        notes.append("- `vqclip weights convert` failed: the .safetensors row is skipped")
    rows = {v[0]: dict(first_step=[], logged=[], wall=[], rss=[], errors=[]) for v in variants}
    rows["reference (python, .ckpt/.pt)"] = dict(first_step=[], logged=[], wall=[], rss=[], errors=[])
    say("startup: warm-up (page cache)")
    for name, vg, cl in variants:
        b.vq(cfg, 1, "f32", vg, cl, poll=0.005)
    for rnd in range(a.runs or 3):
        for name, vg, cl in variants:
            r = b.vq(cfg, 1, "f32", vg, cl, poll=0.005)
            d = rows[name]
            if r["rc"] != 0 or not r["log"]:
                d["errors"].append(r.get("error", "no log line"))
                continue
            t_line, rec = r["log"][0]
            d["logged"].append(t_line - r["t_spawn"])
            d["first_step"].append(t_line - r["t_spawn"] - rec["seconds"])
            d["wall"].append(r["wall"])
            d["rss"].append(r["rss_mib"])
            say(f"  {name}: first step at {d['first_step'][-1]:.2f} s, wall {r['wall']:.2f} s")
        r = b.ref(cfg, 1)
        d = rows["reference (python, .ckpt/.pt)"]
        if r["rc"] == 0:
            d["first_step"].append(r["t_first_step"])
            d["logged"].append(r["stdout"][0][0] - r["t_spawn"] if r["stdout"] else None)
            d["wall"].append(r["wall"])
            d["rss"].append(r["rss_mib"])
        else:
            d["errors"].append(r.get("error"))
    info["loadavg_end"] = os.getloadavg()
    lines = ["## vqclip startup (CPU, weights in the page cache)", "",
             "| weights | spawn to start of step 1, s: median (min) | spawn to first logged step, s | whole run, s "
             "| peak RSS |",
             "|---|---|---|---|---|"]
    for name, d in rows.items():
        if not d["first_step"]:
            lines.append(f"| {name} | failed: {d['errors'][:1]} | | | |")
            continue
        logged = [x for x in d["logged"] if x is not None]
        lines.append(f"| {name} | {med(d['first_step']):.2f} ({min(d['first_step']):.2f}) | "
                     f"{med(logged):.2f} ({min(logged):.2f}) | {med(d['wall']):.2f} ({min(d['wall']):.2f}) | "
                     f"{fmt_mib(max(d['rss']))} |")
    lines += ["", f"Machine: {info['cpu']}, {info['cpus_usable']} usable CPUs, threads {a.threads}; {info['vqclip']} "
              f"(git {info['git']}); load average {info['loadavg_start'][0]:.2f} at start, "
              f"{info['loadavg_end'][0]:.2f} at end. `generate --steps 1 --size 64x64 --cutouts 1 --device cpu`, "
              f"median of {a.runs or 3} runs after a warm-up; 'start of step 1' = first log line's arrival minus "
              "that step's own seconds (vqclip), or the reference's own clock before its first iteration.", ""]
    lines += notes
    return "\n".join(lines), dict(mode="startup", info=info, rows=rows)


# The parts of the two loops' profiles that do the same work: (name, reference parts, vqclip parts, FLOPs key).
PROFILE_GROUPS = [
    ("VQGAN decoder (quantize, forward, backward)", ["quantize", "decoder_fwd", "decoder_bwd"],
     ["render", "render_bwd"], "decoder"),
    ("CLIP image tower (forward, backward to the cutouts' picture)", ["clip_fwd", "clip_cutouts_bwd"],
     ["clip_fwd", "clip_bwd"], "clip"),
    ("cutouts and augments (forward)", ["cutouts_augments_fwd"], ["cutouts"], None),
    ("loss, optimizer, clamp", ["loss_fwd", "adam_clamp"], ["losses", "optimizer"], None),
]


def vq_profile(stderr):
    """`generate --profile`'s table: {part: median seconds}."""
    parts, on = {}, False
    for line in stderr.splitlines():
        if line.startswith("profile:"):
            on = True
        elif on and line.startswith("  "):
            f = line.split()
            parts[f[0]] = float(f[1])
    return parts


def run_profile(a):
    """Each loop's time per part (median over the steps after the first, synchronized between parts), side by
    side, f32 on both; the decoder's and the CLIP tower's FLOPs (counted on the reference) give each one's
    GFLOP/s and share of this CPU's f32 peak."""
    cfg = (a.configs or "128x128x8").split(",")[0]
    steps = a.steps or 5
    b = Bench(a)
    info = machine_info(a)
    say(f"profile: reference loop, {cfg}, {steps} steps")
    r = b.ref(cfg, steps, extra=("--profile", "--count-flops"))
    if not r.get("result"):
        sys.exit(f"bench: the reference loop failed: {r.get('error')}")
    ref = {k: med(v[1:] if len(v) > 1 else v) for k, v in r["result"]["profile"].items()}
    flops = r["result"].get("flops_parts") or {}
    say(f"profile: vqclip generate --profile, {cfg}, {steps} steps")
    w, h, n = parse_config(cfg)
    out = tempfile.mkdtemp(dir=b.tmp)
    cmd = [a.bin, "generate", PROMPT, "--vqgan", a.vqgan, "--clip", a.clip, "--size", f"{w}x{h}", "--cutouts",
           str(n), "--steps", str(steps), "--device", a.device, "--precision", "f32", "--out", out, "--profile",
           "--drawer", "vqgan", *VQ_SETTINGS]
    p = subprocess.run(cmd, env=b.env, capture_output=True, text=True)
    vq = vq_profile(p.stderr)
    if p.returncode != 0 or not vq:
        sys.exit(f"bench: vqclip generate --profile failed (exit {p.returncode}): {p.stderr[-600:]}")
    peak, _, how = cpu_peak(a.threads) if a.device == "cpu" else (None, None, "")
    rows = ["| part | reference s | vqclip s | vqclip / ref | GFLOP | reference GFLOP/s (f32 peak) "
            "| vqclip GFLOP/s (f32 peak) |", "|---|---|---|---|---|---|---|"]
    tot_ref, tot_vq = sum(ref.values()), sum(vq.get(p, 0.0) for p in vq if p != "step")
    data = dict(config=cfg, steps=steps, reference=ref, vqclip=vq, flops_parts=flops, info=info)

    def rate(gflop, s):
        if gflop is None or not s:
            return "–"
        g = gflop / s
        return f"{g:.0f} ({100 * g / peak:.0f} %)" if peak else f"{g:.0f}"

    for name, rp, vp, fk in PROFILE_GROUPS:
        rs = sum(ref.get(p, 0.0) for p in rp)
        vs = sum(vq.get(p, 0.0) for p in vp)
        gflop = flops[fk] / 1e9 if fk and flops.get(fk) else None
        rows.append(f"| {name} | {fmt_s(rs)} | {fmt_s(vs)} | {fmt_ratio(vs, rs)} | "
                    f"{'–' if gflop is None else f'{gflop:.1f}'} | {rate(gflop, rs)} | {rate(gflop, vs)} |")
    rows.append(f"| step (sum of the parts) | {fmt_s(tot_ref)} | {fmt_s(tot_vq)} | {fmt_ratio(tot_vq, tot_ref)} "
                f"| | | |")
    md = [f"## Where a step's time goes: {cfg}, {os.path.basename(a.clip)}, f32, {a.device}", "", *rows, "",
          f"Machine: {info['cpu']}, {info['cpus_usable']} usable CPUs, threads {a.threads} on both sides; "
          f"{info['vqclip']} (git {info['git']}). Median of steps 2..{steps} of one run per side, the device "
          f"synchronized between parts. FLOPs: torch's FlopCounterMode on the reference's towers at the loop's "
          f"shapes (forward + backward to the input)." + (f" Peak: {how}." if how else "")]
    return "\n".join(md), data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["cpu", "gpu", "startup", "profile"])
    ap.add_argument("--quick", action="store_true", help="fewer steps per run")
    ap.add_argument("--runs", type=int, default=0, help="timed rounds per configuration (default 3)")
    ap.add_argument("--configs", help="comma list of WxHxCUTOUTS (default: the mode's two)")
    ap.add_argument("--steps", type=int, default=0, help="steps per run (default: per mode and configuration)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--vqgan", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--drawer", default="vqgan", choices=["vqgan", "fast_pixel", "fft"],
                    help="the drawer both sides optimize (fast_pixel/fft: no VQGAN is loaded)")
    ap.add_argument("--results", default=os.path.join(ROOT, "target", "bench-results"))
    ap.add_argument("--max-seconds", type=float, default=0, help="stop starting runs after this long (0: no limit)")
    ap.add_argument("--child-timeout", type=float, default=0, help="kill a run after this many seconds (0: never)")
    ap.add_argument("--device", help="override the mode's device (e.g. `gpu --device cpu` tests the GPU path here)")
    ap.add_argument("--reconvert", action="store_true", help="startup: convert again even if the files exist")
    a = ap.parse_args()
    a.device = a.device or ("cuda" if a.mode == "gpu" else "cpu")
    a.child_timeout = a.child_timeout or None
    if a.mode == "startup":
        md, data = run_startup(a)
    elif a.mode == "profile":
        md, data = run_profile(a)
    else:
        md, data = run_speed(a)
    os.makedirs(a.results, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(a.results, f"{a.mode}-{stamp}")
    with open(base + ".md", "w") as f:
        f.write(md + "\n")
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, default=lambda o: sorted(o) if isinstance(o, set) else str(o))
    print(md)
    say(f"results: {base}.md and .json")


if __name__ == "__main__":
    main()
