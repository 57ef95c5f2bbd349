#!/usr/bin/env python3
"""The torch side of `scripts/bench search`: CLIP image-embedding throughput as a Python user gets it.

clip.load(path, device, jit=False) (ViT or ResNet), then every image of a folder (recursively, sorted): PIL open,
clip's own preprocess (Resize bicubic, CenterCrop, ToTensor, Normalize), batches of --batch, encode_image under
no_grad. Prints one line `EMBEDREF {json}` with images, seconds (load excluded) and images/s.
"""
import argparse
import json
import os
import time

import torch
from PIL import Image

import clip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--clip", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model, preprocess = clip.load(a.clip, device=a.device, jit=False)
    model.eval()
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.folder) for f in fs
                   if f.lower().endswith((".jpg", ".jpeg", ".png")))
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for i in range(0, len(paths), a.batch):
            batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + a.batch]])
            model.encode_image(batch.to(a.device)).float().cpu()
            n += len(batch)
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print("EMBEDREF " + json.dumps(dict(images=n, seconds=secs, images_per_s=n / secs,
                                        threads=torch.get_num_threads(), torch=torch.__version__)))


if __name__ == "__main__":
    main()
