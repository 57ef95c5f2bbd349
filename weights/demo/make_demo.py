#!/usr/bin/env python3
"""Train the demo world's models: a small CLIP and a small VQGAN that know flat coloured shapes.

Dev-time only (like tests/fixtures/make_fixtures.py, whose writers it reuses): seeded, CPU, and the outputs are
written in the official formats by the reference code, so vqclip loads them through exactly the code that loads
OpenAI's CLIP .pt files and taming-transformers' Lightning checkpoints.

    # one-time, into the project venv (same packages as the fixtures):
    .venv/bin/pip install --no-deps taming-transformers-rom1504==0.0.6 clip-anytorch==2.6.0 torchvision==0.26.0
    .venv/bin/pip install ftfy regex numpy safetensors pillow pyyaml omegaconf einops tqdm

    .venv/bin/python weights/demo/make_demo.py world            # weights/demo/world.json (no training)
    .venv/bin/python weights/demo/make_demo.py vqgan            # weights/demo/demo_vqgan.ckpt + .yaml (32x32 crops)
    .venv/bin/python weights/demo/make_demo.py vqgan-finetune   # then whole 128x128 pictures (rewrites the .ckpt)
    .venv/bin/python weights/demo/make_demo.py clip             # weights/demo/demo_clip.pt (phase 1)
    .venv/bin/python weights/demo/make_demo.py clip-shapes      # phase 2: fine-tunes demo_clip.pt in place
    cargo build --release                                       # phase 3 runs the loop with the binary
    DEMO_ROUND=1 .venv/bin/python weights/demo/make_demo.py clip-loop   # adversarial round 1 (in place)
    .venv/bin/pip install scipy                                         # the judge's labels and hulls
    .venv/bin/python weights/demo/make_demo.py clip-ebm         # phase 4: against the loop as it runs (in place)
    DEMO_EPS=1.0 .venv/bin/python weights/demo/make_demo.py clip-robust   # phase 5 trial: PGD adversarial training
    .venv/bin/python weights/demo/make_demo.py judge            # tests/fixtures/demo_judge_clip.pt
    .venv/bin/python weights/demo/make_demo.py samples DIR      # a few world images, to look at

The world: W x W images (W = 64 for training) of one flat shape (circle, square, triangle) in one of 8 named
colours, at a random place, size and tilt, on a plain background of another named colour. Caption:
"a {colour} {shape} on a {colour} background". Some (colour, shape, background) combinations are held out of
CLIP training (listed in world.json); the end-to-end test generates those.

The CLIPs are trained on what the generation loop shows them: the loop's augments (flip, affine, perspective
warps with zero padding, random erasing with the mean colour, Gaussian noise), plus half-drawn images (blended
with noise) and images with a few wrong-coloured blocks, so a shape has to look like a shape to score well.
"""

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import make_fixtures as mf  # noqa: E402  (writers: VQModelLike, to_openai_jit, jit_bytes, vq_yaml, ...)

import clip  # noqa: E402
from clip.model import CLIP  # noqa: E402

torch.use_deterministic_algorithms(False)  # training speed; runs are still seeded and single-process
torch.set_num_threads(int(os.environ.get("DEMO_THREADS", "2")))

# ----------------------------------------------------------------------------------------------------------------
# The world
# ----------------------------------------------------------------------------------------------------------------

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "orange": (245, 140, 30),
    "purple": (140, 50, 190),
}
NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
COMBOS = [(f, s, b) for f in range(8) for s in range(3) for b in range(8) if f != b]  # 168
HELD_OUT_SEED = 1234
N_HELD_OUT = 16
SIZE_RANGE = (0.17, 0.36)  # shape "radius" as a fraction of the image side
TILT_DEG = 20.0

CLIP_MEAN = torch.tensor(mf.CLIP_MEAN).view(1, 3, 1, 1)
CLIP_STD = torch.tensor(mf.CLIP_STD).view(1, 3, 1, 1)


def caption(f, s, b):
    return f"a {NAMES[f]} {SHAPES[s]} on a {NAMES[b]} background"


def held_out():
    """16 combinations, each colour at most 3 times as foreground and 3 as background, each shape 5-6 times."""
    rng = np.random.RandomState(HELD_OUT_SEED)
    while True:
        pick = sorted(rng.choice(len(COMBOS), N_HELD_OUT, replace=False).tolist())
        c = [COMBOS[i] for i in pick]
        fg = np.bincount([x[0] for x in c], minlength=8)
        bg = np.bincount([x[2] for x in c], minlength=8)
        sh = np.bincount([x[1] for x in c], minlength=3)
        if fg.max() <= 3 and bg.max() <= 3 and sh.min() >= 5:
            return c


HELD_OUT = held_out()
TRAIN = [c for c in COMBOS if c not in HELD_OUT]


def render(fg, shape, bg, cx, cy, r, tilt, size, ss=2, coverage=False):
    """Batch render, [B,3,size,size] in [0,1]; all arguments are [B] tensors (positions/sizes as fractions).
    Anti-aliased by rendering at ss x size and average pooling."""
    n = size * ss
    t = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    y, x = torch.meshgrid(t, t, indexing="ij")
    x, y = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    c, s = torch.cos(tilt)[:, None, None], torch.sin(tilt)[:, None, None]
    u, v = c * x + s * y, -s * x + c * y
    r = r[:, None, None]
    circle = u * u + v * v < r * r
    square = (u.abs() < 0.85 * r) & (v.abs() < 0.85 * r)
    tri = torch.ones_like(circle)
    R = 1.25 * r  # circumradius; apex up
    for k in range(3):
        a = math.radians(90 + 120 * k)  # outward normal directions of the edges (image y points down)
        nx, ny = math.cos(a), math.sin(a)
        tri &= (u * nx + v * ny) < 0.5 * R
    sh = shape[:, None, None]
    mask = torch.where(sh == 0, circle, torch.where(sh == 1, square, tri)).float()[:, None]
    if coverage:
        return F.avg_pool2d(mask, ss) if ss > 1 else mask
    pal = torch.tensor([COLOURS[k] for k in NAMES], dtype=torch.float32) / 255.0
    img = pal[fg][:, :, None, None] * mask + pal[bg][:, :, None, None] * (1 - mask)
    return F.avg_pool2d(img, ss) if ss > 1 else img


def random_params(g, n, combos):
    idx = torch.randperm(len(combos), generator=g)[:n] if n <= len(combos) else \
        torch.randint(len(combos), (n,), generator=g)
    c = torch.tensor([combos[i] for i in idx.tolist()])
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    r = u(*SIZE_RANGE)
    cx = u(0.0, 1.0) * (1 - 2 * r - 0.04) + r + 0.02
    cy = u(0.0, 1.0) * (1 - 2 * r - 0.04) + r + 0.02
    tilt = torch.deg2rad(u(-TILT_DEG, TILT_DEG))
    return c[:, 0], c[:, 1], c[:, 2], cx, cy, r, tilt


# ----------------------------------------------------------------------------------------------------------------
# The loop's augments (src/generate/augments.rs: kornia's ranges, nerdyrodent's values), batched
# ----------------------------------------------------------------------------------------------------------------


def flip_affine(g, n):
    """Per image: flip (p .5) then affine (p .7: rot ±15°, translate ±.1, shear ±5°), composed; 3x3 maps from output
    to input coordinates in [-1,1]."""
    eye = torch.eye(3).repeat(n, 1, 1)
    flip = eye.clone()
    flip[torch.rand(n, generator=g) < 0.5, 0, 0] = -1
    aff = eye.clone()
    on = torch.rand(n, generator=g) < 0.7
    rot = torch.deg2rad((torch.rand(n, generator=g) * 2 - 1) * 15)
    sh = torch.deg2rad((torch.rand(n, generator=g) * 2 - 1) * 5)
    tx, ty = [(torch.rand(n, generator=g) * 2 - 1) * 0.2 for _ in range(2)]
    a = torch.stack([torch.cos(rot), -torch.sin(rot) + torch.tan(sh), tx, torch.sin(rot), torch.cos(rot), ty], 1)
    aff[on, :2, :] = a[on].view(-1, 2, 3)
    return flip @ aff


def homographies(g, n):
    """Per image: flip and affine ([flip_affine]), then perspective (p .7, distortion .7), composed; as 3x3 maps from
    output to input coordinates in [-1,1]."""
    eye = torch.eye(3).repeat(n, 1, 1)
    flip_aff = flip_affine(g, n)
    per = eye.clone()
    on = torch.rand(n, generator=g) < 0.7
    src = torch.tensor([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]]).repeat(n, 1, 1)
    dst = src - src * torch.rand(n, 4, 2, generator=g) * 0.7  # each corner inward by U(0, .7) * half the side
    A = []
    for k in range(4):
        x, y = dst[:, k, 0], dst[:, k, 1]
        X, Y = src[:, k, 0], src[:, k, 1]
        z, o = torch.zeros_like(x), torch.ones_like(x)
        A.append(torch.stack([x, y, o, z, z, z, -X * x, -X * y], 1))
        A.append(torch.stack([z, z, z, x, y, o, -Y * x, -Y * y], 1))
    A = torch.stack(A, 1)
    b = torch.stack([src[:, k, j] for k in range(4) for j in range(2)], 1)
    h = torch.linalg.solve(A, b)
    H = torch.cat([h, torch.ones(n, 1)], 1).view(n, 3, 3)
    per[on] = H[on]
    return flip_aff @ per


def warp(img, H):
    n, _, s, _ = img.shape
    t = (torch.arange(s, dtype=torch.float32) + 0.5) / s * 2 - 1
    y, x = torch.meshgrid(t, t, indexing="ij")
    p = torch.stack([x, y, torch.ones_like(x)], -1).view(1, -1, 3)
    q = p @ H.transpose(1, 2)
    grid = (q[..., :2] / q[..., 2:].clamp(min=1e-6)).view(n, s, s, 2)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment(img, g):
    n, _, s, _ = img.shape
    # half-drawn images: blend toward smooth random colour noise
    on = (torch.rand(n, generator=g) < 0.15)[:, None, None, None]
    noise_img = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=s, mode="bilinear", align_corners=False)
    alpha = 0.55 + 0.45 * torch.rand(n, 1, 1, 1, generator=g)
    img = torch.where(on, alpha * img + (1 - alpha) * noise_img, img)
    # a few wrong-coloured blocks (what a half-converged VQGAN shows)
    on = (torch.rand(n, generator=g) < 0.3)
    pal = torch.tensor([COLOURS[k] for k in NAMES], dtype=torch.float32) / 255.0
    cells = s // 8
    blocks = torch.rand(n, 1, cells, cells, generator=g) < (0.08 * on.float())[:, None, None, None]
    colours = pal[torch.randint(8, (n, cells, cells), generator=g)].permute(0, 3, 1, 2)
    bm = F.interpolate(blocks.float(), size=s, mode="nearest")
    cm = F.interpolate(colours, size=s, mode="nearest")
    img = img * (1 - bm) + cm * bm
    return augment_preset(img, g)


def augment_preset(img, g):
    """The demo preset's augments: one composed warp (flip, affine, perspective; zero padding), erasing, noise."""
    n, _, s, _ = img.shape
    img = warp(img, homographies(g, n))
    # erasing (p .7): area .1-.4 of the image, aspect .3-3.3, filled with the image's mean colour
    on = torch.rand(n, generator=g) < 0.7
    area = (0.1 + 0.3 * torch.rand(n, generator=g)) * s * s
    ratio = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(n, generator=g))
    h = (area * ratio).sqrt().clamp(1, s).round()
    w = (area / ratio).sqrt().clamp(1, s).round()
    y0 = (torch.rand(n, generator=g) * (s - h + 1)).floor()
    x0 = (torch.rand(n, generator=g) * (s - w + 1)).floor()
    ar = torch.arange(s, dtype=torch.float32)
    my = (ar[None] >= y0[:, None]) & (ar[None] < (y0 + h)[:, None])
    mx = (ar[None] >= x0[:, None]) & (ar[None] < (x0 + w)[:, None])
    m = (my[:, :, None] & mx[:, None, :] & on[:, None, None]).float()[:, None]
    mean = img.mean((2, 3), keepdim=True)
    img = img * (1 - m) + mean * m
    # noise: + U(0, .1) * N(0, 1)
    img = img + torch.rand(n, 1, 1, 1, generator=g) * 0.1 * torch.randn(img.shape, generator=g)
    return img


# ----------------------------------------------------------------------------------------------------------------
# CLIP
# ----------------------------------------------------------------------------------------------------------------

DEMO_CLIP = dict(embed_dim=64, image_resolution=64, vision_layers=4, vision_width=128, vision_patch_size=8,
                 context_length=77, vocab_size=49408, transformer_width=128, transformer_heads=2,
                 transformer_layers=4)
JUDGE_CLIP = dict(embed_dim=48, image_resolution=64, vision_layers=3, vision_width=96, vision_patch_size=8,
                  context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                  transformer_layers=3)
TRAIN_CTX = 20  # every caption fits; positions after the EOT never reach its feature (causal mask)


def encode_text_short(model, tokens):
    """model.encode_text on the first TRAIN_CTX positions: identical to the full 77 for captions that fit."""
    tokens = tokens[:, :TRAIN_CTX]
    x = model.token_embedding(tokens) + model.positional_embedding[:TRAIN_CTX]
    x = x.permute(1, 0, 2)
    x = model.transformer(x)
    x = x.permute(1, 0, 2)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ model.text_projection


def set_mask(model, n):
    mask = torch.full((n, n), float("-inf")).triu_(1)
    for blk in model.transformer.resblocks:
        blk.attn_mask = mask


def train_clip(cfg, seed, steps, batch, out, log_every=50):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    model = CLIP(**cfg).float().train()
    tokens_all = clip.tokenize([caption(*c) for c in COMBOS])
    assert int(tokens_all.argmax(-1).max()) < TRAIN_CTX
    combo_index = {c: i for i, c in enumerate(COMBOS)}
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    warm = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    set_mask(model, TRAIN_CTX)
    t0, hist = time.time(), []
    for step in range(steps):
        fg, sh, bg, cx, cy, r, tilt = random_params(g, batch, TRAIN)
        img = render(fg, sh, bg, cx, cy, r, tilt, cfg["image_resolution"])
        clean = torch.rand(batch, generator=g) < 0.2
        img = torch.where(clean[:, None, None, None], img, augment(img, g))
        img = (img - CLIP_MEAN) / CLIP_STD
        idx = torch.tensor([combo_index[(int(a), int(b), int(c))] for a, b, c in zip(fg, sh, bg)])
        ie = F.normalize(model.encode_image(img), dim=-1)
        te = F.normalize(encode_text_short(model, tokens_all[idx]), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * ie @ te.t()
        lab = torch.arange(batch)
        loss = (F.cross_entropy(logits, lab) + F.cross_entropy(logits.t(), lab)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        hist.append(loss.item())
        if (step + 1) % log_every == 0 or step == 0:
            print(f"clip seed {seed} step {step + 1}/{steps} loss {np.mean(hist[-log_every:]):.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    set_mask(model, cfg["context_length"])
    model.eval()
    evaluation = eval_clip(model, cfg, seed + 7)
    model = model.half().float()  # the values the fp16 file holds
    evaluation_fp16 = eval_clip(model, cfg, seed + 7)
    ex_img = torch.zeros(1, 3, cfg["image_resolution"], cfg["image_resolution"])
    ex_txt = clip.tokenize(["a red circle on a blue background"])
    data = mf.jit_bytes(mf.to_openai_jit(model, ex_img, ex_txt, all_fp16=True))
    with open(out, "wb") as f:
        f.write(data)
    os.chmod(out, 0o644)
    return dict(config=cfg, seed=seed, steps=steps, batch=batch, lr=5e-4, weight_decay=0.1, warmup=warm,
                final_loss=float(np.mean(hist[-100:])), seconds=round(time.time() - t0, 1),
                eval_f32=evaluation, eval_fp16_file=evaluation_fp16)


@torch.no_grad()
def count_word_picks(model, img, combo, right):
    """Adds to `right` how many of `img` (all of `combo`) the model gives the right word among captions that differ in
    one word: foreground colour, shape, background colour."""
    f, s, b = combo
    ie = F.normalize(model.encode_image((img - CLIP_MEAN) / CLIP_STD), dim=-1)
    for key, alts in (("fg", [(k, s, b) for k in range(8) if k != b]),
                      ("shape", [(f, k, b) for k in range(3)]),
                      ("bg", [(f, s, k) for k in range(8) if k != f])):
        te = F.normalize(model.encode_text(clip.tokenize([caption(*a) for a in alts])), dim=-1)
        pick = (ie @ te.t()).argmax(-1)
        right[key] += int((pick == alts.index(combo)).sum())


@torch.no_grad()
def eval_clip(model, cfg, seed, per=4):
    """Held-out combinations, clean and augmented renders: does the model pick the right caption out of those that
    differ in one word (foreground colour / shape / background colour)?"""
    g = torch.Generator().manual_seed(seed)
    res = {}
    for aug in (False, True):
        right = dict(fg=0, shape=0, bg=0, n=0)
        for (f, s, b) in HELD_OUT:
            n = per
            p = random_params(g, n, [(f, s, b)])
            img = render(*p, cfg["image_resolution"])
            if aug:
                img = augment(img, g)
            count_word_picks(model, img, (f, s, b), right)
            right["n"] += n
        res["augmented" if aug else "clean"] = right
    print(json.dumps(res), flush=True)
    return res


# ----------------------------------------------------------------------------------------------------------------
# CLIP, second phase: shapes the loop can steer toward
# ----------------------------------------------------------------------------------------------------------------
#
# The first phase's CLIP knows colours but is at chance on held-out shapes under the loop's augments, so the loop
# paints the right colours as blobs. This phase fine-tunes it with:
# - a classification loss over the whole caption bank (every training caption, plus "a {fg} blob on a {bg}
#   background" for each colour pair) instead of in-batch contrast, so every image is scored against the captions
#   that differ from its own in the shape word alone;
# - hard negatives captioned as blobs: several shapes, irregular unions of ellipses, elongated ellipses, a shape
#   with specks of its colour elsewhere (what an unfinished loop draws: "one shape" must beat "copies");
# - the views the loop makes with the demo preset: 128x128 renders, some through the demo VQGAN, pooled to 64 as
#   the pooled cutouts do ((avg + max) / 2), then flip, affine and noise, with a lighter perspective and erasing.

BLOB = "blob"
PAIRS = [(f, b) for f in range(8) for b in range(8) if f != b]


def blob_caption(f, b):
    return f"a {NAMES[f]} {BLOB} on a {NAMES[b]} background"


def loop_pool(img128):
    """vqclip's pooled cutouts at CLIP's 64: (adaptive avg pool + adaptive max pool) / 2."""
    return (F.adaptive_avg_pool2d(img128, 64) + F.adaptive_max_pool2d(img128, 64)) / 2


def paint(fgc, bgc, masks):
    """Colour a [B,1,H,W] coverage mask: fg over bg."""
    return fgc[:, :, None, None] * masks + bgc[:, :, None, None] * (1 - masks)


def ellipse_masks(g, n, size, count, r_lo, r_hi, spread, aspect_lo, aspect_hi, ss=2):
    """Union of `count` random ellipses per image, around one centre (`spread` = offset in radii)."""
    side = size * ss
    t = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(*shape, generator=g)  # noqa: E731
    cx0, cy0 = u(0.25, 0.75, n), u(0.25, 0.75, n)
    m = torch.zeros(n, side, side)
    for _ in range(count):
        r = u(r_lo, r_hi, n)
        asp = u(aspect_lo, aspect_hi, n)  # axis ratio asp ** 1.5
        ang = u(0, math.pi, n)
        cx = (cx0 + spread * r * u(-1, 1, n)).clamp(0.1, 0.9)
        cy = (cy0 + spread * r * u(-1, 1, n)).clamp(0.1, 0.9)
        x, y = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
        c, s = torch.cos(ang)[:, None, None], torch.sin(ang)[:, None, None]
        a, b = (c * x + s * y) / (r * asp)[:, None, None], (-s * x + c * y) / (r / asp.sqrt())[:, None, None]
        m = torch.maximum(m, (a * a + b * b < 1).float())
    return F.avg_pool2d(m[:, None], ss) if ss > 1 else m[:, None]


def negatives(g, n, size):
    """Hard negatives of a colour pair, [n,3,size,size], and their (fg, bg)."""
    pal = torch.tensor([COLOURS[k] for k in NAMES], dtype=torch.float32) / 255.0
    pick = torch.randint(len(PAIRS), (n,), generator=g)
    f = torch.tensor([PAIRS[i][0] for i in pick.tolist()])
    b = torch.tensor([PAIRS[i][1] for i in pick.tolist()])
    kind = torch.randint(4, (n,), generator=g)
    masks = torch.zeros(n, 1, size, size)
    rnd = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    # 0: two to four separate shapes
    acc = torch.zeros(n, 1, size, size)
    for k in range(4):
        r = rnd(0.07, 0.18)
        cx, cy = rnd(0.1, 0.9), rnd(0.1, 0.9)
        sh = torch.randint(3, (n,), generator=g)
        cov = render(f, sh, b, cx, cy, r, torch.deg2rad(rnd(-45, 45)), size, coverage=True)
        keep = (torch.full((n,), k) < 2) | (torch.rand(n, generator=g) < 0.5)
        acc = torch.maximum(acc, cov * keep[:, None, None, None])
    masks = torch.where((kind == 0)[:, None, None, None], acc, masks)
    # 1: an irregular union of ellipses
    cnt = 2 + int(torch.randint(3, (1,), generator=g))
    acc = ellipse_masks(g, n, size, cnt, 0.10, 0.22, 1.2, 1.0, 2.0)
    masks = torch.where((kind == 1)[:, None, None, None], acc, masks)
    # 2: one elongated ellipse
    acc = ellipse_masks(g, n, size, 1, 0.12, 0.26, 0.0, 1.6, 3.0)
    masks = torch.where((kind == 2)[:, None, None, None], acc, masks)
    # 3: a shape with specks of its colour elsewhere
    fg_, sh, bg_, cx, cy, r, tilt = random_params(g, n, [(0, s, 1) for s in range(3)])
    acc = render(f, sh, b, cx, cy, r, tilt, size, coverage=True)
    for _ in range(3):
        acc = torch.maximum(acc, render(f, torch.randint(3, (n,), generator=g), b, rnd(0.05, 0.95), rnd(0.05, 0.95),
                                        rnd(0.03, 0.07), torch.zeros(n), size, coverage=True))
    masks = torch.where((kind == 3)[:, None, None, None], acc, masks)
    return paint(pal[f], pal[b], masks), f, b


def augment_loop(img, g, persp_p=0.3, persp=0.35, erase_p=0.15):
    """The loop's flip, affine and noise, plus a lighter warp and a small erasing for robustness."""
    n, _, s, _ = img.shape
    eye = torch.eye(3).repeat(n, 1, 1)
    H = flip_affine(g, n)
    # on some images, a second full warp (flip, affine, perspective .7) blended toward the identity by persp / .7
    per = homographies(g, n)
    on = torch.rand(n, generator=g) < persp_p
    mix = persp / 0.7
    per = eye * (1 - mix) + per * mix
    H = torch.where(on[:, None, None], H @ per, H)
    img = warp(img, H)
    on = torch.rand(n, generator=g) < erase_p
    area = (0.03 + 0.1 * torch.rand(n, generator=g)) * s * s
    hh = area.sqrt().clamp(1, s).round()
    y0 = (torch.rand(n, generator=g) * (s - hh + 1)).floor()
    x0 = (torch.rand(n, generator=g) * (s - hh + 1)).floor()
    ar = torch.arange(s, dtype=torch.float32)
    my = (ar[None] >= y0[:, None]) & (ar[None] < (y0 + hh)[:, None])
    mx = (ar[None] >= x0[:, None]) & (ar[None] < (x0 + hh)[:, None])
    m = (my[:, :, None] & mx[:, None, :] & on[:, None, None]).float()[:, None]
    img = img * (1 - m) + img.mean((2, 3), keepdim=True) * m
    return img + torch.rand(n, 1, 1, 1, generator=g) * 0.1 * torch.randn(img.shape, generator=g)


def load_vqgan(path):
    m = mf.VQModelLike(VQ_DD, VQ_N_EMBED, VQ_EMBED_DIM)
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])  # our own file
    return m.eval()


@torch.no_grad()
def through_vqgan(vq, img):
    zq, _, _ = vq.quantize(vq.quant_conv(vq.encoder(img * 2 - 1)))
    return ((vq.decode(zq).clamp(-1, 1) + 1) / 2)


def vq_cache(g, n, vq, combos, chunk=32):
    """n training pictures rendered at 128x128, passed through the demo VQGAN once and pooled to 64 (the VQGAN is
    the slow part of a batch): [n,3,64,64] and their (fg, shape, bg)."""
    imgs, keys = [], []
    for i in range(0, n, chunk):
        fg, sh, bg, cx, cy, r, tilt = random_params(g, chunk, combos)
        imgs.append(loop_pool(through_vqgan(vq, render(fg, sh, bg, cx, cy, r, tilt, 128))))
        keys.append(torch.stack([fg, sh, bg], 1))
    return torch.cat(imgs)[:n], torch.cat(keys)[:n]


def views(g, n, vq, combos, cache=None):
    """n positives, the way the loop shows them: 64x64 renders; 128x128 renders pooled as the loop pools; and
    (from `cache`, or through `vq`) VQGAN reconstructions pooled. Returns images [n,3,64,64] and their combos."""
    fg, sh, bg, cx, cy, r, tilt = random_params(g, n, combos)
    kind = torch.randint(3, (n,), generator=g)
    img = render(fg, sh, bg, cx, cy, r, tilt, 64)
    i = (kind == 1).nonzero().flatten()
    if len(i):
        img[i] = loop_pool(render(fg[i], sh[i], bg[i], cx[i], cy[i], r[i], tilt[i], 128))
    i = (kind == 2).nonzero().flatten()
    if len(i) and cache is not None:
        pick = torch.randint(len(cache[0]), (len(i),), generator=g)
        img[i] = cache[0][pick]
        fg[i], sh[i], bg[i] = cache[1][pick, 0], cache[1][pick, 1], cache[1][pick, 2]
    elif len(i) and vq is not None:
        img[i] = loop_pool(through_vqgan(vq, render(fg[i], sh[i], bg[i], cx[i], cy[i], r[i], tilt[i], 128)))
    return img, fg, sh, bg


def bank_losses(model, tokens, img, target, rows, sub_t):
    """The caption-bank loss (each image against every bank caption) and the shape-word loss (circle / square /
    triangle / blob of the image's colours: `rows` [n,4] bank rows, -1 where held out; `sub_t` the right one)."""
    ie = F.normalize(model.encode_image((img - CLIP_MEAN) / CLIP_STD), dim=-1)
    te = F.normalize(encode_text_short(model, tokens), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * ie @ te.t()
    sub = logits.gather(1, rows.clamp(min=0)).masked_fill(rows < 0, float("-inf"))
    return F.cross_entropy(logits, target), F.cross_entropy(sub, sub_t)


def pgd_l2(model, tokens, img, target, rows, sub_t, eps, steps):
    """Per-picture L2 perturbations of norm <= eps[i] (in [0, 1] pixel units at CLIP's 64x64) that raise the bank
    and shape losses: projected gradient ascent from zero, step 2.5 eps / steps, pictures kept in [0, 1]."""
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        te = F.normalize(encode_text_short(model, tokens), dim=-1)
    scale = model.logit_scale.exp().clamp(max=100)
    e = eps.view(-1, 1, 1, 1)
    delta = torch.zeros_like(img)
    for _ in range(steps):
        delta.requires_grad_(True)
        ie = F.normalize(model.encode_image((img + delta - CLIP_MEAN) / CLIP_STD), dim=-1)
        logits = scale * ie @ te.t()
        sub = logits.gather(1, rows.clamp(min=0)).masked_fill(rows < 0, float("-inf"))
        loss = F.cross_entropy(logits, target, reduction="sum") + F.cross_entropy(sub, sub_t, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + 2.5 * e / steps * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            delta = delta * (e / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)).clamp(max=1)
            delta = (img + delta).clamp(0, 1) - img
    for p, r in zip(model.parameters(), grads):
        p.requires_grad_(r)
    return delta.detach()


class BankTrainer:
    """Phases 2 to 4's fine-tuning of a CLIP: the caption bank (every training caption, plus a blob caption per
    colour pair), AdamW with warm-up and cosine decay, and one step on a batch of positives and negatives."""

    def __init__(self, model, lr, steps, warm):
        self.model = model
        bank = [caption(*c) for c in TRAIN] + [blob_caption(f, b) for f, b in PAIRS]
        self.tokens = clip.tokenize(bank)
        self.index = {c: i for i, c in enumerate(TRAIN)}
        self.blob_index = {p: len(TRAIN) + i for i, p in enumerate(PAIRS)}
        # for each (fg, bg): the bank rows of its three shapes (-1 where held out) and its blob caption
        self.shape_rows = {(f, b): [self.index.get((f, s, b), -1) for s in range(3)] + [self.blob_index[(f, b)]]
                           for f, b in PAIRS}
        decay = [p for nm, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in nm]
        rest = [p for nm, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in nm)]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                     lr=lr, betas=(0.9, 0.98), eps=1e-6)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
        set_mask(model, TRAIN_CTX)

    def step(self, g, pos, fg, sh, bg, nimg, nf, nb, adv_eps=0.0, adv_steps=0):
        """Positives `pos` of (fg, shape, bg) and negatives `nimg` of (nf, nb), 15 % of them clean and the rest
        through the loop's augments; with `adv_steps`, each picture is first moved by L2 PGD within a radius drawn
        from U(0, adv_eps) to where the losses are highest (adversarial training); returns the two losses."""
        img = torch.cat([pos, nimg])
        clean = torch.rand(len(img), generator=g) < 0.15
        img = torch.where(clean[:, None, None, None], img, augment_loop(img, g))
        target = [self.index[(int(a), int(b), int(c))] for a, b, c in zip(fg, sh, bg)] + \
                 [self.blob_index[(int(a), int(c))] for a, c in zip(nf, nb)]
        pairs = [(int(a), int(c)) for a, c in zip(fg, bg)] + [(int(a), int(c)) for a, c in zip(nf, nb)]
        target, rows = torch.tensor(target), torch.tensor([self.shape_rows[p] for p in pairs])
        sub_t = torch.cat([sh, torch.full((len(nimg),), 3)])
        if adv_steps:
            img = img + pgd_l2(self.model, self.tokens, img, target, rows, sub_t,
                               adv_eps * torch.rand(len(img), generator=g), adv_steps)
        loss_bank, loss_shape = bank_losses(self.model, self.tokens, img, target, rows, sub_t)
        self.opt.zero_grad(set_to_none=True)
        (loss_bank + loss_shape).backward()
        self.opt.step()
        self.sched.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100))
        return loss_bank.item(), loss_shape.item()

    def finish(self, cfg, seed, vq, out):
        """Evaluated in f32 and as the fp16 file holds it, then written; returns both evaluations."""
        model = self.model
        set_mask(model, cfg["context_length"])
        model.eval()
        evaluation = eval_clip_loop(model, cfg, seed + 7, vq)
        model = model.half().float()
        evaluation_fp16 = eval_clip_loop(model, cfg, seed + 7, vq)
        save_clip(model, cfg, out)
        return evaluation, evaluation_fp16


def train_clip_shapes(base, cfg, seed, steps, batch, neg, out, vq_path, lr=3e-4, scale=30.0, cached=2048,
                      loop_negatives=None, n_loop=0, log_every=25):
    from clip.model import build_model
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    model = build_model(torch.jit.load(base, map_location="cpu").state_dict()).float().train()
    if scale:
        with torch.no_grad():
            model.logit_scale.fill_(math.log(scale))  # sharper than phase one's 18: the bank softmax has 207 rows
    vq = load_vqgan(vq_path) if vq_path else None
    t0 = time.time()
    cache = vq_cache(g, cached, vq, TRAIN) if vq is not None else None
    print(f"clip-shapes: {cached} VQGAN reconstructions in {time.time() - t0:.0f}s", flush=True)
    warm = 50
    trainer = BankTrainer(model, lr, steps, warm)
    t0, hist = time.time(), []
    npos = batch - neg
    for step in range(steps):
        pos, fg, sh, bg = views(g, npos, None, TRAIN, cache)
        nimg, nf, nb = negatives(g, neg - n_loop, 64)
        if n_loop:
            pick = torch.randint(len(loop_negatives[0]), (n_loop,), generator=g)
            nimg = torch.cat([nimg, loop_negatives[0][pick]])
            nf = torch.cat([nf, loop_negatives[1][pick, 0]])
            nb = torch.cat([nb, loop_negatives[1][pick, 1]])
        hist.append(trainer.step(g, pos, fg, sh, bg, nimg, nf, nb))
        if (step + 1) % log_every == 0 or step == 0:
            a = np.mean(hist[-log_every:], 0)
            print(f"clip-shapes seed {seed} step {step + 1}/{steps} bank {a[0]:.4f} shape {a[1]:.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    evaluation, evaluation_fp16 = trainer.finish(cfg, seed, vq, out)
    return dict(base=os.path.basename(base), config=cfg, seed=seed, steps=steps, batch=batch, negatives=neg, lr=lr,
                logit_scale_start=scale, vqgan_reconstructions=cached,
                loop_negatives=0 if loop_negatives is None else len(loop_negatives[0]), loop_negatives_per_batch=n_loop,
                weight_decay=0.1, warmup=warm, final_loss_bank=float(np.mean([h[0] for h in hist[-50:]])),
                final_loss_shape=float(np.mean([h[1] for h in hist[-50:]])), seconds=round(time.time() - t0, 1),
                eval_f32=evaluation, eval_fp16_file=evaluation_fp16)


def loop_negatives(clip_path, out_dir, runs, seed, steps=60, every=20):
    """The loop's own pictures as hard negatives: `runs` demo-preset runs of the vqclip binary (target/release) on
    random training captions, steered by `clip_path`, with frames every `every` steps. Each frame is a picture that
    CLIP scores as its caption while it is an unfinished scatter of colours; it becomes a "blob" of its colours.
    Returns ([n,3,64,64] pooled as the loop pools, [n,2] (fg, bg))."""
    import random
    import subprocess
    from PIL import Image
    binary = os.path.join(ROOT, "target", "release", "vqclip")
    rng = random.Random(seed)
    env = dict(os.environ, VQCLIP_WEIGHTS=os.path.join(ROOT, "weights"))
    imgs, keys = [], []
    t0 = time.time()
    for i in range(runs):
        f, sh, b = TRAIN[rng.randrange(len(TRAIN))]
        d = os.path.join(out_dir, f"{i:03d}")
        if not os.path.exists(os.path.join(d, "final.png")):
            assert clip_path, f"{d}: an earlier round's negatives are missing; run the rounds in order"
            subprocess.run([binary, "generate", caption(f, sh, b), "--preset", "demo", "--seed",
                            str(rng.randrange(1 << 30)), "--device", "cpu", "--quiet", "--steps", str(steps),
                            "--save-every", str(every), "--cutouts", "8", "--force", "--out", d, "--clip", clip_path,
                            # pinned, whatever the preset says now: the loop's full augment set, no palette
                            "--augments", "affine,perspective,erasing,noise", "--palette", ""],
                           env=env, check=True, capture_output=True)
        else:
            rng.randrange(1 << 30)
        for k in range(every, steps + 1, every):
            frame = os.path.join(d, "final.png" if k == steps else os.path.join("frames", f"{k:06d}.png"))
            x = torch.tensor(np.asarray(Image.open(frame).convert("RGB")), dtype=torch.float32) / 255.0
            imgs.append(loop_pool(x.permute(2, 0, 1)[None]))
            keys.append((f, b))
        if (i + 1) % 10 == 0:
            print(f"loop negatives: {i + 1}/{runs} runs {time.time() - t0:.0f}s", flush=True)
    return torch.cat(imgs), torch.tensor(keys)


# ----------------------------------------------------------------------------------------------------------------
# CLIP, phase 4: the loop's pictures as they are made (an energy model's negative samples)
# ----------------------------------------------------------------------------------------------------------------
#
# Phase 3 showed the CLIP a fixed set of loop pictures; the next CLIP is fooled by new ones. Here 32 runs of the
# demo loop (weights/demo/batched_loop.py) go on *while* the CLIP trains, each steered by the CLIP of that moment,
# as an energy model is trained on its own short-run samples: every step each run takes one loop step, and its
# picture joins the negatives ("a {fg} blob on a {bg} background") unless the geometric judge says it already
# shows its caption's shape. Runs live 100 steps (the preset's) and restart from new random codes with a new
# training caption, staggered, so the negatives cover every stage of a run.


def train_clip_ebm(base, cfg, seed, steps, out, vq_path, lr=1.5e-4, batch=128, neg=8, n_loop=32, runs=32,
                   run_steps=100, cutouts=4, keep=4096, log_every=25):
    import batched_loop as bl
    from clip.model import build_model
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    gl = torch.Generator().manual_seed(seed + 2)  # the loop's own stream
    model = build_model(torch.jit.load(base, map_location="cpu").state_dict()).float().train()
    vq = load_vqgan(vq_path)
    for p in vq.parameters():
        p.requires_grad_(False)
    t0 = time.time()
    cache = vq_cache(g, 1024, vq, TRAIN)
    print(f"clip-ebm: 1024 VQGAN reconstructions in {time.time() - t0:.0f}s", flush=True)
    warm = 25
    trainer = BankTrainer(model, lr, steps, warm)
    tokens = trainer.tokens
    loop = bl.Loop(vq, runs, gl, cutouts=cutouts, augment=augment_preset, steps=run_steps)
    run_rows = torch.zeros(runs, dtype=torch.long)  # each run's caption (bank row)
    life = torch.tensor([(i + 1) * run_steps // runs for i in range(runs)])  # staggered first lives

    def restart(idx):
        pick = torch.randint(len(TRAIN), (len(idx),), generator=gl)
        run_rows[idx] = pick
        loop.reset(idx, torch.zeros(len(idx), cfg["embed_dim"]), torch.tensor([TRAIN[i] for i in pick.tolist()]))

    restart(torch.arange(runs))
    buf_img = torch.zeros(0, 3, 64, 64)
    buf_key = torch.zeros(0, 2, dtype=torch.long)
    t0, hist, passed, judged = time.time(), [], 0, 0
    npos = batch - neg - n_loop
    for step in range(steps):
        # one loop step of every run, steered by the CLIP as it is now
        with torch.no_grad():
            loop.text = F.normalize(encode_text_short(model, tokens[run_rows]), dim=-1)
        for p in model.parameters():
            p.requires_grad_(False)
        dist = loop.step(model, CLIP_MEAN, CLIP_STD)
        for p in model.parameters():
            p.requires_grad_(True)
        pic = loop.picture()
        arr = pic.permute(0, 2, 3, 1).numpy()
        fresh = []
        for i in range(runs):
            if loop.age[i] < 5:
                continue
            f, s, b = loop.keys[i].tolist()
            judged += 1
            if bl.judge(arr[i], f, s, b):
                passed += 1
            else:
                fresh.append(i)
        if fresh:
            fi = torch.tensor(fresh)
            buf_img = torch.cat([buf_img, loop_pool(pic[fi])])[-keep:]
            buf_key = torch.cat([buf_key, loop.keys[fi][:, [0, 2]]])[-keep:]
        done = (loop.age >= life).nonzero().flatten()
        if len(done):
            restart(done)
            life[done] = run_steps
        # the CLIP's step: positives as the loop shows them, drawn negatives, and the loop's pictures
        pos, fg, sh, bg = views(g, npos, None, TRAIN, cache)
        nl = min(n_loop, len(buf_img))
        nimg, nf, nb = negatives(g, neg + n_loop - nl, 64)
        if nl:
            newest = min(len(fresh), nl // 2)
            pick = torch.cat([torch.arange(len(buf_img) - newest, len(buf_img)),
                              torch.randint(len(buf_img), (nl - newest,), generator=g)])
            nimg = torch.cat([nimg, buf_img[pick]])
            nf = torch.cat([nf, buf_key[pick, 0]])
            nb = torch.cat([nb, buf_key[pick, 1]])
        hist.append((*trainer.step(g, pos, fg, sh, bg, nimg, nf, nb), dist.mean().item()))
        if (step + 1) % log_every == 0 or step == 0:
            a = np.mean(hist[-log_every:], 0)
            print(f"clip-ebm seed {seed} step {step + 1}/{steps} bank {a[0]:.4f} shape {a[1]:.4f} loop dist "
                  f"{a[2]:.4f} judged drawn {passed}/{judged} buffer {len(buf_img)} {time.time() - t0:.0f}s",
                  flush=True)
            passed = judged = 0
    evaluation, evaluation_fp16 = trainer.finish(cfg, seed, vq, out)
    return dict(base=os.path.basename(base), config=cfg, seed=seed, steps=steps, batch=batch, negatives=neg,
                loop_negatives_per_batch=n_loop, runs=runs, run_steps=run_steps, run_cutouts=cutouts, lr=lr,
                vqgan_reconstructions=1024, weight_decay=0.1, warmup=warm,
                final_loss_bank=float(np.mean([h[0] for h in hist[-50:]])),
                final_loss_shape=float(np.mean([h[1] for h in hist[-50:]])),
                seconds=round(time.time() - t0, 1), eval_f32=evaluation, eval_fp16_file=evaluation_fp16)


# ----------------------------------------------------------------------------------------------------------------
# CLIP, phase 5: adversarial training (gradients that point at shapes)
# ----------------------------------------------------------------------------------------------------------------
#
# Phases 3 and 4 showed the CLIP pictures that some loop had made; the loop then finds other pictures that fool it.
# A classifier trained on its own worst-case perturbations (PGD, Madry et al. 2018) has gradients that change what
# a picture shows rather than its texture ("perceptually aligned gradients", Santurkar et al. 2019): the loop
# follows exactly that gradient. Here every training picture (positives and blob negatives) is first moved within
# an L2 ball to where the caption-bank losses are highest, and the CLIP learns to score it right anyway.


def train_clip_robust(base, cfg, seed, steps, batch, neg, out, vq_path, eps, adv_steps, lr=1.5e-4, cached=1024,
                      log_every=25):
    from clip.model import build_model
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    model = build_model(torch.jit.load(base, map_location="cpu").state_dict()).float().train()
    vq = load_vqgan(vq_path)
    t0 = time.time()
    cache = vq_cache(g, cached, vq, TRAIN)
    print(f"clip-robust: {cached} VQGAN reconstructions in {time.time() - t0:.0f}s", flush=True)
    warm = 25
    trainer = BankTrainer(model, lr, steps, warm)
    t0, hist = time.time(), []
    for step in range(steps):
        pos, fg, sh, bg = views(g, batch - neg, None, TRAIN, cache)
        nimg, nf, nb = negatives(g, neg, 64)
        hist.append(trainer.step(g, pos, fg, sh, bg, nimg, nf, nb, adv_eps=eps, adv_steps=adv_steps))
        if (step + 1) % log_every == 0 or step == 0:
            a = np.mean(hist[-log_every:], 0)
            print(f"clip-robust seed {seed} step {step + 1}/{steps} bank {a[0]:.4f} shape {a[1]:.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
            if os.environ.get("DEMO_SNAPSHOTS") and (step + 1) % 100 == 0:
                snap = model.state_dict()
                set_mask(model, cfg["context_length"])
                save_clip(copy.deepcopy(model).eval().half().float(), cfg, f"{out}.step{step + 1}")
                set_mask(model, TRAIN_CTX)
                model.load_state_dict(snap)
    evaluation, evaluation_fp16 = trainer.finish(cfg, seed, vq, out)
    return dict(base=os.path.basename(base), config=cfg, seed=seed, steps=steps, batch=batch, negatives=neg, lr=lr,
                adversarial=dict(norm="L2, [0, 1] pixels at 64x64", eps_max=eps, eps="U(0, eps_max) per picture",
                                 pgd_steps=adv_steps, step_size="2.5 eps / pgd_steps"),
                vqgan_reconstructions=cached, weight_decay=0.1, warmup=warm,
                final_loss_bank=float(np.mean([h[0] for h in hist[-50:]])),
                final_loss_shape=float(np.mean([h[1] for h in hist[-50:]])), seconds=round(time.time() - t0, 1),
                eval_f32=evaluation, eval_fp16_file=evaluation_fp16)


def save_clip(model, cfg, out):
    """The OpenAI-style TorchScript file, fp16 parameters."""
    ex_img = torch.zeros(1, 3, cfg["image_resolution"], cfg["image_resolution"])
    ex_txt = clip.tokenize(["a red circle on a blue background"])
    data = mf.jit_bytes(mf.to_openai_jit(model, ex_img, ex_txt, all_fp16=True))
    with open(out, "wb") as fh:
        fh.write(data)
    os.chmod(out, 0o644)


@torch.no_grad()
def eval_clip_loop(model, cfg, seed, vq, per=4):
    """Held-out combinations: clean renders, the loop's views (augmented) and the old heavy augments; does the model
    pick the right caption out of those that differ in one word? Plus: is a hard negative scored below the shape
    captions of its colours ("blob" picked among circle / square / triangle / blob)?"""
    g = torch.Generator().manual_seed(seed)
    res = {}
    for mode in ("clean", "augmented", "heavy"):
        right = dict(fg=0, shape=0, bg=0, n=0)
        for (f, s, b) in HELD_OUT:
            if mode == "clean":
                img = render(*random_params(g, per, [(f, s, b)]), 64)
            elif mode == "augmented":
                img = augment_loop(views(g, per, vq, [(f, s, b)])[0], g)
            else:
                img = augment(render(*random_params(g, per, [(f, s, b)]), 64), g)
            count_word_picks(model, img, (f, s, b), right)
            right["n"] += per
        res[mode] = right
    img, f, b = negatives(g, 64, 64)
    ie = F.normalize(model.encode_image((augment_loop(img, g) - CLIP_MEAN) / CLIP_STD), dim=-1)
    blob = 0
    for i in range(64):
        caps = [caption(int(f[i]), k, int(b[i])) for k in range(3)] + [blob_caption(int(f[i]), int(b[i]))]
        te = F.normalize(model.encode_text(clip.tokenize(caps)), dim=-1)
        blob += int(int((ie[i] @ te.t()).argmax()) == 3)
    res["negatives_called_blob"] = dict(right=blob, n=64)
    print(json.dumps(res), flush=True)
    return res


# ----------------------------------------------------------------------------------------------------------------
# VQGAN
# ----------------------------------------------------------------------------------------------------------------

VQ_DD = dict(double_z=False, z_channels=64, resolution=64, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 2, 2],
             num_res_blocks=1, attn_resolutions=[8], dropout=0.0)
VQ_EMBED_DIM = 32
VQ_N_EMBED = 256
CROP = 32


def vq_batch(g, n, size=64):
    """World images with one or two shapes of any colours and a wider range of sizes (the VQGAN only draws)."""
    combos = [(f, s, b) for f in range(8) for s in range(3) for b in range(8) if f != b]
    fg, sh, bg, cx, cy, r, tilt = random_params(g, n, combos)
    r = 0.06 + 0.36 * torch.rand(n, generator=g)
    cx = r + torch.rand(n, generator=g) * (1 - 2 * r)
    cy = r + torch.rand(n, generator=g) * (1 - 2 * r)
    tilt = torch.deg2rad((torch.rand(n, generator=g) * 2 - 1) * 45)
    img = render(fg, sh, bg, cx, cy, r, tilt, size)
    # a second shape over half of them
    f2 = torch.randint(8, (n,), generator=g)
    s2 = torch.randint(3, (n,), generator=g)
    r2 = 0.05 + 0.2 * torch.rand(n, generator=g)
    cx2, cy2 = torch.rand(n, generator=g), torch.rand(n, generator=g)
    t2 = torch.deg2rad((torch.rand(n, generator=g) * 2 - 1) * 45)
    a2 = render(f2, s2, bg, cx2, cy2, r2, t2, size, coverage=True)
    a2 = a2 * (torch.rand(n, 1, 1, 1, generator=g) < 0.5)
    pal = torch.tensor([COLOURS[k] for k in NAMES], dtype=torch.float32) / 255.0
    img = img * (1 - a2) + pal[f2][:, :, None, None] * a2
    return img


def train_vqgan(seed, steps, batch, out_ckpt, out_yaml, log_every=100):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    m = mf.VQModelLike(VQ_DD, VQ_N_EMBED, VQ_EMBED_DIM).train()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    t0, hist, usage = time.time(), [], torch.zeros(VQ_N_EMBED)
    restarts = 0
    for step in range(steps):
        x = vq_batch(g, batch) * 2 - 1
        oy, ox = torch.randint(0, 64 - CROP + 1, (2,), generator=g).tolist()
        x = x[:, :, oy:oy + CROP, ox:ox + CROP]  # fully convolutional: train on crops, 4x cheaper
        h = m.quant_conv(m.encoder(x))
        zq, qloss, (_, _, ind) = m.quantize(h)
        rec = m.decode(zq)
        l1 = (rec - x).abs().mean()
        l2 = ((rec - x) ** 2).mean()
        loss = l1 + l2 + qloss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        usage += torch.bincount(ind.flatten(), minlength=VQ_N_EMBED).float()
        hist.append((l1.item(), qloss.item()))
        if (step + 1) % 100 == 0 and step < steps * 0.8:
            # restart codes no encoder output chose in the last 100 steps at random encoder outputs
            dead = (usage == 0).nonzero().flatten()
            if len(dead):
                flat = h.detach().permute(0, 2, 3, 1).reshape(-1, VQ_EMBED_DIM)
                pick = torch.randint(len(flat), (len(dead),), generator=g)
                with torch.no_grad():
                    m.quantize.embedding.weight[dead] = flat[pick] + 0.01 * torch.randn(len(dead), VQ_EMBED_DIM,
                                                                                       generator=g)
                restarts += len(dead)
            usage.zero_()
        if (step + 1) % log_every == 0 or step == 0:
            a = np.mean(hist[-log_every:], 0)
            print(f"vqgan step {step + 1}/{steps} l1 {a[0]:.4f} q {a[1]:.4f} {time.time() - t0:.0f}s", flush=True)
    m.eval()
    with torch.no_grad():
        x = vq_batch(torch.Generator().manual_seed(seed + 99), 64) * 2 - 1
        zq, _, (_, _, ind) = m.quantize(m.quant_conv(m.encoder(x)))
        rec = m.decode(zq).clamp(-1, 1)
        mse = ((rec - x) ** 2).mean().item() / 4  # in [0,1] units
        psnr = 10 * math.log10(1 / mse)
        used = int(torch.unique(ind).numel())
    container = {"epoch": 0, "global_step": steps, "pytorch-lightning_version": "1.0.8", "state_dict": m.state_dict()}
    mf.torch_save_like_lightning(container, out_ckpt)
    with open(out_yaml, "w") as f:
        f.write(mf.vq_yaml("taming.models.vqgan.VQModel", VQ_EMBED_DIM, VQ_N_EMBED, VQ_DD, data_section=False))
    for p in (out_ckpt, out_yaml):
        os.chmod(p, 0o644)
    return dict(ddconfig=VQ_DD, embed_dim=VQ_EMBED_DIM, n_embed=VQ_N_EMBED, seed=seed, steps=steps, batch=batch,
                crop=CROP, lr=2e-3, loss="L1 + L2 + codebook (beta 0.25); dead codes restarted every 100 steps",
                final_l1=float(np.mean([h[0] for h in hist[-100:]])), code_restarts=restarts,
                eval_psnr_db=round(psnr, 2), eval_codes_used=used, seconds=round(time.time() - t0, 1))


# ----------------------------------------------------------------------------------------------------------------


def finetune_vqgan(seed, steps, batch, size, ckpt, log_every=50):
    """Second phase: whole size x size pictures. The crops of phase one leave the attention layers (the mid block's
    is global) used to 4x4 latent grids; at the demo's 128x128 (16x16 latents) that shifted colours (PSNR 23.7 dB on
    32x32 crops, 17.3 dB at 128x128 before this phase)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    m = mf.VQModelLike(VQ_DD, VQ_N_EMBED, VQ_EMBED_DIM)
    container = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own file, written above
    m.load_state_dict(container["state_dict"])
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=5e-4, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))

    def psnr_at(sz):
        with torch.no_grad():
            x = vq_batch(torch.Generator().manual_seed(seed + 99), 8, size=sz) * 2 - 1
            zq, _, _ = m.quantize(m.quant_conv(m.encoder(x)))
            rec = m.decode(zq).clamp(-1, 1)
            return round(10 * math.log10(4 / ((rec - x) ** 2).mean().item()), 2)

    before = {s: psnr_at(s) for s in (64, size)}
    t0, hist = time.time(), []
    for step in range(steps):
        x = vq_batch(g, batch, size=size) * 2 - 1
        zq, qloss, _ = m.quantize(m.quant_conv(m.encoder(x)))
        rec = m.decode(zq)
        l1 = (rec - x).abs().mean()
        loss = l1 + ((rec - x) ** 2).mean() + qloss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.append(l1.item())
        if (step + 1) % log_every == 0 or step == 0:
            print(f"vqgan finetune step {step + 1}/{steps} l1 {np.mean(hist[-log_every:]):.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    m.eval()
    after = {s: psnr_at(s) for s in (64, size)}
    container["state_dict"] = m.state_dict()
    container["global_step"] = container["global_step"] + steps
    mf.torch_save_like_lightning(container, ckpt)
    os.chmod(ckpt, 0o644)
    return dict(seed=seed, steps=steps, batch=batch, size=size, lr=5e-4, final_l1=float(np.mean(hist[-100:])),
                psnr_db_before={str(k): v for k, v in before.items()},
                psnr_db_after={str(k): v for k, v in after.items()}, seconds=round(time.time() - t0, 1))


def world_json():
    return dict(
        grammar="a {colour} {shape} on a {colour} background",
        colours={k: list(v) for k, v in COLOURS.items()},
        shapes=SHAPES,
        image_size=64,
        size_range=list(SIZE_RANGE),
        tilt_degrees=TILT_DEG,
        held_out=[dict(fg=NAMES[f], shape=SHAPES[s], bg=NAMES[b], caption=caption(f, s, b)) for f, s, b in HELD_OUT],
        n_train_combos=len(TRAIN),
    )


def update_record(key, value):
    path = os.environ.get("DEMO_RECORD", os.path.join(HERE, "training.json"))  # trials record elsewhere
    rec = json.load(open(path)) if os.path.exists(path) else {}
    rec[key] = value
    rec["torch"] = torch.__version__
    with open(path, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")


def register():
    """Writes the demo files' sha256 and size into src/weights/registry.toml (vqclip weights verify checks them)."""
    import hashlib
    import re
    reg = os.path.join(ROOT, "src", "weights", "registry.toml")
    text = open(reg).read()
    for name in ("demo/demo_vqgan.ckpt", "demo/demo_clip.pt"):
        data = open(os.path.join(HERE, os.path.basename(name)), "rb").read()
        sha, size = hashlib.sha256(data).hexdigest(), len(data)
        pat = re.compile(r'(name = "' + re.escape(name) + r'"\nsha256 = )"[^"]*"(\nsize = )\S+')
        text, n = pat.subn(lambda m: f'{m.group(1)}"{sha}"{m.group(2)}{size}', text)
        assert n == 1, name
        print(name, sha, size)
    with open(reg, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["world", "vqgan", "vqgan-finetune", "clip", "clip-shapes", "clip-loop", "clip-ebm", "clip-robust", "judge", "samples",
                                     "register"])
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--steps", type=int)
    a = ap.parse_args()
    with open(os.path.join(HERE, "world.json"), "w") as f:
        json.dump(world_json(), f, indent=1)
        f.write("\n")
    if a.what == "vqgan":
        r = train_vqgan(7, a.steps or 5000, 16, os.path.join(HERE, "demo_vqgan.ckpt"),
                        os.path.join(HERE, "demo_vqgan.yaml"))
        print(r)
        update_record("vqgan", r)
    elif a.what == "vqgan-finetune":
        r = finetune_vqgan(8, a.steps or 1000, 4, 128, os.path.join(HERE, "demo_vqgan.ckpt"))
        print(r)
        update_record("vqgan_finetune", r)
    elif a.what == "clip":
        r = train_clip(DEMO_CLIP, 11, a.steps or 2000, 128, os.path.join(HERE, "demo_clip.pt"))
        update_record("clip", r)
    elif a.what == "clip-shapes":
        out = os.path.join(HERE, "demo_clip.pt")
        r = train_clip_shapes(out, DEMO_CLIP, 12, a.steps or 1500, 128, 32, os.environ.get("DEMO_OUT", out),
                              os.path.join(HERE, "demo_vqgan.ckpt"))
        update_record("clip_shapes", r)
    elif a.what == "clip-loop":
        # Rounds of adversarial fine-tuning: round k makes its negatives with the CLIP of round k - 1 (the file
        # demo_clip.pt holds at that point) and trains on the negatives of rounds 1..k; run the rounds in order.
        out = os.path.join(HERE, "demo_clip.pt")
        base = os.environ.get("DEMO_BASE", out)
        k = int(os.environ.get("DEMO_ROUND", "1"))
        root = os.environ.get("DEMO_NEG_DIR", "/tmp/vqclip-demo-negatives")
        parts = [loop_negatives(base if r == k else None, os.path.join(root, f"round-{r}"), 90, 4 + r)
                 for r in range(1, k + 1)]
        negs = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        r = train_clip_shapes(base, DEMO_CLIP, 12 + k, a.steps or 500, 128, 32, os.environ.get("DEMO_OUT", out),
                              os.path.join(HERE, "demo_vqgan.ckpt"), lr=1.5e-4, scale=0.0, cached=1024,
                              loop_negatives=negs, n_loop=16)
        r["round"] = k
        update_record(f"clip_loop_{k}", r)
    elif a.what == "clip-ebm":
        out = os.path.join(HERE, "demo_clip.pt")
        base = os.environ.get("DEMO_BASE", out)
        r = train_clip_ebm(base, DEMO_CLIP, 31, a.steps or 600, os.environ.get("DEMO_OUT", out),
                           os.path.join(HERE, "demo_vqgan.ckpt"))
        update_record("clip_ebm", r)
    elif a.what == "clip-robust":
        out = os.path.join(HERE, "demo_clip.pt")
        base = os.environ.get("DEMO_BASE", out)
        r = train_clip_robust(base, DEMO_CLIP, 41, a.steps or 400, 128, 32, os.environ.get("DEMO_OUT", out),
                              os.path.join(HERE, "demo_vqgan.ckpt"), float(os.environ.get("DEMO_EPS", "2.0")),
                              int(os.environ.get("DEMO_PGD", "3")))
        update_record("clip_robust", r)
    elif a.what == "judge":
        r = train_clip(JUDGE_CLIP, 23, a.steps or 1000, 128,
                       os.path.join(ROOT, "tests", "fixtures", "demo_judge_clip.pt"))
        update_record("judge", r)
    elif a.what == "register":
        register()
    elif a.what == "samples":
        from PIL import Image
        os.makedirs(a.dir, exist_ok=True)
        g = torch.Generator().manual_seed(0)
        img = render(*random_params(g, 8, TRAIN), 64)
        aug = augment(img.clone(), g)
        vq = vq_batch(g, 8)
        neg = negatives(g, 8, 64)[0]
        loop = augment_loop(views(g, 8, load_vqgan(os.path.join(HERE, "demo_vqgan.ckpt")), TRAIN)[0], g)
        rows = torch.cat([torch.cat(list(t.clamp(0, 1)), 2) for t in (img, aug, vq, neg, augment_loop(neg, g), loop)],
                         1)
        Image.fromarray((rows.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
            os.path.join(a.dir, "world.png"))


if __name__ == "__main__":
    main()
