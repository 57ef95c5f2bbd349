"""The demo preset's generation loop, batched, in Python, and the geometric shape judge, vectorized.

Dev-time only: make_demo.py's adversarial phase (`clip-ebm`) runs many loops at once against the CLIP it trains,
and asks the judge which of their pictures already show their caption's shape. The loop is vqclip's with
`--preset demo` (VQGAN drawer from random codes with straight-through quantization, clamp, palette lookup with its
pull, pooled cutouts with the loop's augments, spherical distance, tv, Adam, z clamped to the codebook's range);
its random draws are its own, so it finds the same kind of pictures, not the same pictures.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.spatial import ConvexHull

WORLD_PALETTE = torch.tensor([(220, 40, 40), (40, 170, 60), (40, 80, 220), (245, 220, 40), (245, 245, 245),
                              (20, 20, 20), (245, 140, 30), (140, 50, 190)], dtype=torch.float32) / 255.0


def spherical_distance(a, b):
    return (a - b).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def tv_loss(img):
    dx = img[..., :, 1:] - img[..., :, :-1]
    dy = img[..., 1:, :] - img[..., :-1, :]
    return (dx.square().sum((1, 2, 3)) + dy.square().sum((1, 2, 3))) / img[0].numel()


def nearest_colour(img, pal):
    """[n,3,h,w] -> each pixel's nearest palette colour (no gradient)."""
    n, _, h, w = img.shape
    p = img.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    idx = (pal.square().sum(1)[None] - 2 * p @ pal.t()).argmin(1)
    return pal[idx].view(n, h, w, 3).permute(0, 3, 1, 2)


class Loop:
    """`n` independent runs of the demo loop (summed losses: Adam is elementwise, so each run steps as if alone)."""

    def __init__(self, vq, n, g, size=128, cutouts=8, lr=0.3, tv=0.5, palette=WORLD_PALETTE, palette_weight=10.0,
                 augment=None, steps=100):
        self.vq, self.n, self.g = vq, n, g
        self.cb = vq.codebook().detach().float()
        self.zmin, self.zmax = self.cb.min(0).values.view(1, -1, 1, 1), self.cb.max(0).values.view(1, -1, 1, 1)
        self.hw = size // 8
        self.cutouts, self.lr, self.tv, self.pal, self.pw = cutouts, lr, tv, palette, palette_weight
        self.augment = augment
        self.steps = steps
        self.z = torch.zeros(n, self.cb.shape[1], self.hw, self.hw)
        self.m = torch.zeros_like(self.z)
        self.v = torch.zeros_like(self.z)
        self.t = torch.zeros(n)
        self.age = torch.zeros(n, dtype=torch.long)
        self.text = None  # [n, d] normalized prompt embeddings
        self.keys = None  # [n, 3] (fg, shape, bg)

    def reset(self, idx, text, keys):
        k = torch.randint(self.cb.shape[0], (len(idx), self.hw, self.hw), generator=self.g)
        self.z[idx] = self.cb[k].permute(0, 3, 1, 2)
        self.m[idx] = 0
        self.v[idx] = 0
        self.t[idx] = 0
        self.age[idx] = 0
        if self.text is None:
            self.text = torch.zeros(self.n, text.shape[1])
            self.keys = torch.zeros(self.n, 3, dtype=torch.long)
        self.text[idx] = text
        self.keys[idx] = keys

    def quantized(self, z):
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        idx = (self.cb.square().sum(1)[None] - 2 * flat @ self.cb.t()).argmin(1)
        q = self.cb[idx].view(z.shape[0], self.hw, self.hw, -1).permute(0, 3, 1, 2)
        return z + (q - z).detach()

    def render(self, z):
        return (self.vq.decode(self.quantized(z)) + 1) / 2

    @torch.no_grad()
    def picture(self):
        """The runs' current pictures as the loop saves them: [n,3,size,size] in palette colours."""
        return nearest_colour(self.render(self.z).clamp(0, 1), self.pal)

    def step(self, model, mean, std):
        z = self.z.clone().requires_grad_(True)
        x = self.render(z)
        img = x.detach().clamp(0, 1).requires_grad_(True)
        q = nearest_colour(img, self.pal)
        pull = (img - q).square().mean((1, 2, 3)) * self.pw
        seen = img + (q - img).detach()
        pooled = (F.adaptive_avg_pool2d(seen, 64) + F.adaptive_max_pool2d(seen, 64)) / 2
        views = pooled.repeat_interleave(self.cutouts, 0)
        views = self.augment(views, self.g)
        ie = F.normalize(model.encode_image((views - mean) / std), dim=-1).view(self.n, self.cutouts, -1)
        d = spherical_distance(ie, self.text[:, None]).mean(1)
        loss = (d + self.tv * tv_loss(img) + pull).sum()
        (gi,) = torch.autograd.grad(loss, img)
        (gz,) = torch.autograd.grad(x, z, gi)
        with torch.no_grad():
            b1, b2, eps = 0.9, 0.999, 1e-8
            self.t += 1
            self.m.mul_(b1).add_(gz, alpha=1 - b1)
            self.v.mul_(b2).addcmul_(gz, gz, value=1 - b2)
            t = self.t.view(-1, 1, 1, 1)
            mh = self.m / (1 - b1 ** t)
            vh = self.v / (1 - b2 ** t)
            self.z = torch.maximum(torch.minimum(self.z - self.lr * mh / (vh.sqrt() + eps), self.zmax), self.zmin)
        self.age += 1
        return d.detach()


# ----------------------------------------------------------------------------------------------------------------
# The geometric judge (shared/reference/shape_judge.py's rule, vectorized)
# ----------------------------------------------------------------------------------------------------------------

IDEAL = {0: 1.0, 1: 2 / math.pi, 2: 3 * math.sqrt(3) / (4 * math.pi)}  # circle, square, triangle
NAMES = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple"]


def hsv(rgb):
    """[h,w,3] in [0,1] -> hue (degrees), saturation, value, as colorsys."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    d = mx - mn
    s = np.where(mx > 0, d / np.maximum(mx, 1e-12), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    dd = np.maximum(d, 1e-12)
    h = np.where(mx == r, ((g - b) / dd) % 6, np.where(mx == g, (b - r) / dd + 2, (r - g) / dd + 4))
    h = np.where(d > 0, h * 60.0, 0.0)
    return h, s, mx


def colour_mask(rgb, name):
    h, s, v = hsv(rgb)

    def hue(c, w=28):
        dist = np.minimum(abs(h - c), 360 - abs(h - c))
        return (dist < w) & (s > 0.45) & (v > 0.35)

    return {"red": lambda: hue(0, 20), "orange": lambda: hue(30, 14), "yellow": lambda: hue(58, 16),
            "green": lambda: hue(120, 40), "blue": lambda: hue(225, 35), "purple": lambda: hue(285, 35),
            "white": lambda: (s < 0.2) & (v > 0.8), "black": lambda: v < 0.22}[name]()


def judge(rgb, fg, shape, bg):
    """rgb [h,w,3] in [0,1]; fg/bg colour indices, shape index. True when the caption's shape is drawn in its
    colours (shape_judge.py's rule)."""
    fm, bm = colour_mask(rgb, NAMES[fg]), colour_mask(rgb, NAMES[bg])
    if fm.mean() < 0.06 or bm.mean() < 0.30:
        return False
    lab, n = ndimage.label(fm)  # 4-connected
    if n == 0:
        return False
    sizes = np.bincount(lab.ravel())[1:]
    k = int(sizes.argmax()) + 1
    pts = np.argwhere(lab == k).astype(np.float64)
    a = float(len(pts))
    if a < 4 or a / fm.sum() < 0.5 or a / fm.size < 0.02:
        return False
    corners = np.unique(np.concatenate([pts + d for d in ((0, 0), (0, 1), (1, 0), (1, 1))]), axis=0)
    solidity = a / max(ConvexHull(corners).volume, 1.0)
    cen = pts.mean(0) + 0.5
    dmax = np.sqrt((((pts + 0.5) - cen) ** 2).sum(1)).max() + 0.5
    roundness = a / (math.pi * dmax * dmax)
    seen = min(IDEAL, key=lambda s: abs(IDEAL[s] - roundness))
    return solidity >= 0.80 and seen == shape
