#!/usr/bin/env python3
"""scripts/gpu-check's comparisons, standard library only (a bare GPU machine has python3 and torch, nothing more
is assumed): two PNGs, two `vqclip embed --json` outputs, two run logs. Prints one JSON object.

    gpu_check_compare.py png A.png B.png          -> {"max_levels": ..., "mean_levels": ...}
    gpu_check_compare.py embed A.json B.json      -> {"min_cosine": ..., "max_abs": ...}
    gpu_check_compare.py losses RUN_A RUN_B       -> {"steps": n, "max_rel": ..., "first": [a, b], "last": [a, b]}
"""
import json
import math
import os
import struct
import sys
import zlib


def read_png(path):
    """8-bit greyscale/RGB/RGBA, non-interlaced (what vqclip writes): (width, height, channels, bytes)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = hdr
    if depth != 8 or interlace:
        raise SystemExit(f"{path}: only 8-bit non-interlaced PNGs")
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    out = bytearray(h * stride)
    prev = bytearray(stride)
    i = 0
    for y in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, ch, bytes(out)


def png(a, b):
    wa, ha, ca, da = read_png(a)
    wb, hb, cb, db = read_png(b)
    if (wa, ha, ca) != (wb, hb, cb):
        return dict(error=f"sizes differ: {wa}x{ha}x{ca} vs {wb}x{hb}x{cb}")
    diffs = [abs(x - y) for x, y in zip(da, db)]
    return dict(max_levels=max(diffs), mean_levels=round(sum(diffs) / len(diffs), 4), values=len(diffs))


def embed(a, b):
    ea, eb = json.load(open(a)), json.load(open(b))
    cos, mx = 1.0, 0.0
    for x, y in zip(ea, eb):
        u, v = x["embedding"], y["embedding"]
        dot = sum(p * q for p, q in zip(u, v))
        cos = min(cos, dot / math.sqrt(sum(p * p for p in u) * sum(q * q for q in v)))
        mx = max(mx, max(abs(p - q) for p, q in zip(u, v)))
    return dict(items=len(ea), min_cosine=round(cos, 8), max_abs=mx)


def log_losses(run):
    for name in ("log.jsonl", "run.log"):
        p = os.path.join(run, name)
        if os.path.exists(p):
            return [json.loads(line)["loss"] for line in open(p) if line.strip()]
    raise SystemExit(f"{run}: no log.jsonl")


def losses(a, b):
    la, lb = log_losses(a), log_losses(b)
    n = min(len(la), len(lb))
    rel = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(la[:n], lb[:n]))
    return dict(steps=n, max_rel=rel, first=[la[0], lb[0]], last=[la[n - 1], lb[n - 1]])


if __name__ == "__main__":
    what, a, b = sys.argv[1:4]
    print(json.dumps(dict(png=png, embed=embed, losses=losses)[what](a, b)))
