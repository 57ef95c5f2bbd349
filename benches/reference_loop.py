#!/usr/bin/env python3
"""The anchors' VQGAN+CLIP loop in PyTorch: the reference side of `scripts/bench` (not a test).

This is nerdyrodent/VQGAN-CLIP `generate.py` (Crowson's notebook loop) with its defaults: the taming-transformers
VQModel (Encoder, Decoder, VectorQuantizer2, quant_conv, post_quant_conv; the loss module is deleted there, and not
built here) and OpenAI CLIP as `clip.load(path, device, jit=False)` gives it (fp16 "convert_weights" layout on CUDA,
`model.float()` on CPU). One leaf z [1,256,H/16,W/16] from random codes, Adam lr 0.1; each iteration:

    z_q = vector_quantize(z)            # ||z||^2+||e||^2-2ze argmin, one_hot @ codebook, ReplaceGrad straight-through
    out = clamp_with_grad((decode(z_q)+1)/2, 0, 1)          # decode = decoder(post_quant_conv(.))
    cut = MakeCutouts "latest": ((adaptive_avg_pool + adaptive_max_pool)/2 to 224) cutn times, then the default
          augments Af, Pe, Ji, Er (kornia's RandomAffine, RandomPerspective, ColorJitter, RandomErasing, re-done
          here in plain torch with the same parameters, so kornia is not needed) and noise fac*randn, fac~U(0,0.1)
    emb = clip.encode_image(normalize(cut)).float()
    loss = spherical distance to one prompt's text embedding (computed once)
    loss.backward(); opt.step(); z.clamp_(codebook min, max)

Weights come from the official-format files (Lightning .ckpt + yaml, OpenAI TorchScript .pt; plain torch.save state
dicts also work). They are the benchmark's own trusted files, so torch.load runs with weights_only=False.

Output: one line `BENCH {json}` on stdout at the end (and `BENCHSTEP {json}` per timed window), everything else on
stderr. Per-iteration times: on CPU every iteration is timed (all ops are synchronous); on CUDA the loop synchronizes
every --sync-every iterations only (the anchors never sync inside the loop) and reports the time of each window.
"""

import argparse
import contextlib
import importlib.util
import json
import math
import os
import pickle
import resource
import sys
import time
import types

T_PROCESS = time.time()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MISSING_HINT = ("pip install --no-deps taming-transformers-rom1504==0.0.6 clip-anytorch==2.6.0 torchvision==0.26.0 "
                "einops ftfy regex")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Reference packages: taming-transformers (modules only: taming/models/vqgan.py imports pytorch_lightning) and
# OpenAI CLIP. `import clip` needs torchvision, PIL, tqdm and pkg_resources; when that fails (a bare GPU machine with
# the wheels unpacked by scripts/bench), clip/model.py and clip/simple_tokenizer.py are loaded from the package's
# folder without running its __init__, and clip.load's steps are repeated below.
# ---------------------------------------------------------------------------------------------------------------


def _load_file_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def import_reference():
    try:
        with contextlib.redirect_stdout(sys.stderr):
            from taming.modules.diffusionmodules.model import Decoder, Encoder
            from taming.modules.vqvae.quantize import VectorQuantizer2
    except ImportError as e:
        sys.exit(f"reference_loop: cannot import taming-transformers ({e}); install the reference packages:\n  "
                 + MISSING_HINT)
    ref = types.SimpleNamespace(Decoder=Decoder, Encoder=Encoder, VectorQuantizer2=VectorQuantizer2)
    try:
        if os.environ.get("VQCLIP_BENCH_NO_CLIP_IMPORT"):
            raise ImportError("VQCLIP_BENCH_NO_CLIP_IMPORT is set")
        import clip

        ref.clip_load, ref.tokenize, ref.clip_source = clip.load, clip.tokenize, "clip.load (clip-anytorch)"
        return ref
    except Exception as e:  # ImportError, or pkg_resources/torchvision missing inside clip/clip.py
        spec = importlib.util.find_spec("clip")
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"reference_loop: cannot find the clip package ({e}); install the reference packages:\n  "
                     + MISSING_HINT)
        folder = list(spec.submodule_search_locations)[0]
        model_mod = _load_file_module("clip_ref_model", os.path.join(folder, "model.py"))
        tok_mod = _load_file_module("clip_ref_tokenizer", os.path.join(folder, "simple_tokenizer.py"))
        ref.clip_load = lambda path, device, jit=False: (clip_load_like(model_mod, path, device), None)
        ref.tokenize = lambda text: tokenize_like(tok_mod.SimpleTokenizer(), text)
        ref.clip_source = f"clip/model.py build_model as clip.load does (import clip failed: {e})"
        return ref


def clip_load_like(model_mod, path, device):
    """clip.load(path, device, jit=False), step for step."""
    try:
        state_dict = torch.jit.load(path, map_location="cpu").eval().state_dict()
    except RuntimeError:
        state_dict = torch.load(path, map_location="cpu")
    model = model_mod.build_model(state_dict).to(device)
    if str(device) == "cpu":
        model.float()
    return model


def tokenize_like(tok, text, context_length=77):
    """clip.tokenize for one string."""
    ids = [tok.encoder["<|startoftext|>"]] + tok.encode(text) + [tok.encoder["<|endoftext|>"]]
    out = torch.zeros(1, context_length, dtype=torch.long)
    out[0, :len(ids)] = torch.tensor(ids)
    return out


# ---------------------------------------------------------------------------------------------------------------
# VQGAN, loaded as nerdyrodent's load_vqgan_model does (VQModel(**params).eval().requires_grad_(False);
# init_from_ckpt: torch.load(path)["state_dict"], load_state_dict(strict=False); del model.loss)
# ---------------------------------------------------------------------------------------------------------------


class _TolerantUnpickler(pickle.Unpickler):
    """Lightning checkpoints name pytorch_lightning classes (e.g. ModelCheckpoint as a dict key); stand in a dummy
    class when that package is absent. Only used for the benchmark's own files."""

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (), {"__module__": module})


TOLERANT_PICKLE = types.SimpleNamespace(Unpickler=_TolerantUnpickler, load=pickle.load, __name__="pickle")


def read_vq_params(yaml_path):
    try:
        import yaml
    except ImportError:
        sys.exit("reference_loop: pyyaml is needed to read the VQGAN config (pip install pyyaml)")
    with open(yaml_path) as f:
        return yaml.safe_load(f)["model"]["params"]


class VQModelRef(nn.Module):
    """taming.models.vqgan.VQModel's modules and attribute names (state-dict keys), minus Lightning."""

    def __init__(self, ref, ddconfig, n_embed, embed_dim):
        super().__init__()
        with contextlib.redirect_stdout(sys.stderr):  # taming prints "Working with z of shape ..."
            self.encoder = ref.Encoder(**ddconfig)
            self.decoder = ref.Decoder(**ddconfig)
        self.quantize = ref.VectorQuantizer2(n_embed, embed_dim, beta=0.25, remap=None, sane_index_shape=False)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)

    def decode(self, quant):
        return self.decoder(self.post_quant_conv(quant))


def load_vqgan(ref, ckpt_path, yaml_path, device):
    p = read_vq_params(yaml_path)
    model = VQModelRef(ref, p["ddconfig"], p["n_embed"], p["embed_dim"])
    model.eval().requires_grad_(False)
    sd = torch.load(ckpt_path, map_location="cpu", weights_only=False, pickle_module=TOLERANT_PICKLE)
    sd = sd.get("state_dict", sd)
    missing, _unexpected = model.load_state_dict(sd, strict=False)
    if missing:
        sys.exit(f"reference_loop: {ckpt_path} lacks {len(missing)} keys, e.g. {missing[:3]}")
    del sd
    return model.to(device)


# ---------------------------------------------------------------------------------------------------------------
# The loop's pieces (generate.py)
# ---------------------------------------------------------------------------------------------------------------


class ReplaceGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_forward, x_backward):
        ctx.shape = x_backward.shape
        return x_forward

    @staticmethod
    def backward(ctx, grad_in):
        return None, grad_in.sum_to_size(ctx.shape)


replace_grad = ReplaceGrad.apply


class ClampWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, min, max):
        ctx.min = min
        ctx.max = max
        ctx.save_for_backward(input)
        return input.clamp(min, max)

    @staticmethod
    def backward(ctx, grad_in):
        input, = ctx.saved_tensors
        return grad_in * (grad_in * (input - input.clamp(ctx.min, ctx.max)) >= 0), None, None


clamp_with_grad = ClampWithGrad.apply


def vector_quantize(x, codebook):
    d = x.pow(2).sum(dim=-1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * x @ codebook.T
    indices = d.argmin(-1)
    x_q = F.one_hot(indices, codebook.shape[0]).to(d.dtype) @ codebook
    return replace_grad(x_q, x)


class Prompt(nn.Module):
    def __init__(self, embed, weight=1., stop=float("-inf")):
        super().__init__()
        self.register_buffer("embed", embed)
        self.register_buffer("weight", torch.as_tensor(weight))
        self.register_buffer("stop", torch.as_tensor(stop))

    def forward(self, input):
        input_normed = F.normalize(input.unsqueeze(1), dim=2)
        embed_normed = F.normalize(self.embed.unsqueeze(0), dim=2)
        dists = input_normed.sub(embed_normed).norm(dim=2).div(2).arcsin().pow(2).mul(2)
        dists = dists * self.weight.sign()
        return self.weight.abs() * replace_grad(dists, torch.maximum(dists, self.stop)).mean()


# --- kornia augments in plain torch (kornia 0.6 semantics: per-sample coin with p, warps with zero padding,
# bilinear, align_corners=True; only the selected samples are transformed, as kornia does) ---


def _apply_selected(x, p, fn):
    sel = torch.nonzero(torch.rand(x.shape[0]) < p).squeeze(1)
    if sel.numel() == 0:
        return x
    sel = sel.to(x.device)
    out = x.clone()
    out[sel] = fn(x[sel])
    return out


def _warp(x, src_from_dst):
    """Sample x at src_from_dst @ (u, v, 1) for every output pixel (normalized coords, homogeneous)."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                            indexing="ij")
    grid = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, h * w, 3)
    pts = grid @ src_from_dst.transpose(1, 2)
    pts = pts[..., :2] / pts[..., 2:].clamp_min(1e-8)
    return F.grid_sample(x, pts.view(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=True)


def random_affine(x, degrees=15., translate=0.1, shear=5., p=0.7):
    def fn(v):
        n, dev = v.shape[0], v.device
        ang = torch.empty(n).uniform_(-degrees, degrees).mul(math.pi / 180)
        tx, ty = (torch.empty(n).uniform_(-translate, translate) * 2 for _ in range(2))
        sh = torch.empty(n).uniform_(-shear, shear).mul(math.pi / 180)
        c, s, t = ang.cos(), ang.sin(), sh.tan()
        fwd = torch.zeros(n, 3, 3)
        fwd[:, 0, 0], fwd[:, 0, 1], fwd[:, 0, 2] = c, c * t - s, tx
        fwd[:, 1, 0], fwd[:, 1, 1], fwd[:, 1, 2] = s, s * t + c, ty
        fwd[:, 2, 2] = 1
        return _warp(v, torch.linalg.inv(fwd).to(dev))

    return _apply_selected(x, p, fn)


def random_perspective(x, distortion=0.7, p=0.7):
    def fn(v):
        n, dev = v.shape[0], v.device
        src = torch.tensor([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]]).expand(n, 4, 2)
        dst = src - src * distortion * torch.rand(n, 4, 2)  # each corner moves inward by U(0, d)*size/2
        a = torch.zeros(n, 8, 8)
        b = torch.zeros(n, 8)
        x0, y0, u, w_ = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
        a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = x0, y0, 1
        a[:, 0::2, 6], a[:, 0::2, 7] = -u * x0, -u * y0
        a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = x0, y0, 1
        a[:, 1::2, 6], a[:, 1::2, 7] = -w_ * x0, -w_ * y0
        b[:, 0::2], b[:, 1::2] = u, w_
        hvec = torch.linalg.solve(a, b)
        fwd = torch.cat([hvec, torch.ones(n, 1)], 1).view(n, 3, 3)
        return _warp(v, torch.linalg.inv(fwd).to(dev))

    return _apply_selected(x, p, fn)


def rgb_to_hsv(img, eps=1e-8):
    r, g, b = img.unbind(1)
    maxc, _ = img.max(1)
    minc = img.min(1)[0]
    v = maxc
    delta = maxc - minc
    s = delta / (v + eps)
    delta_safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / delta_safe, (maxc - g) / delta_safe, (maxc - b) / delta_safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta == 0, torch.zeros_like(h), h)
    h = (h / 6.0) % 1.0
    return torch.stack([h * 2 * math.pi, s, v], 1)


def hsv_to_rgb(img):
    h, s, v = img.unbind(1)
    h = h / (2 * math.pi)
    hi = torch.floor(h * 6) % 6
    f = ((h * 6) % 6) - hi
    p_ = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    hi = hi.long()
    idx = torch.stack([hi, hi + 6, hi + 12], 1)
    table = torch.stack([v, q, p_, p_, t, v, t, v, v, q, p_, p_, p_, p_, t, v, v, q], 1)
    return torch.gather(table, 1, idx)


def color_jitter(x, bri=0.1, con=0.1, sat=0.1, hue=0.1, p=0.7):
    def fn(v):
        n, dev = v.shape[0], v.device
        fb, fc, fs = (torch.empty(n, 1, 1, 1).uniform_(1 - a, 1 + a).to(dev) for a in (bri, con, sat))
        fh = torch.empty(n, 1, 1).uniform_(-hue, hue).mul(2 * math.pi).to(dev)

        def brightness(y):
            return (y + (fb - 1)).clamp(0, 1)

        def contrast(y):
            return (y * fc).clamp(0, 1)

        def saturation(y):
            hsv = rgb_to_hsv(y)
            hh, ss, vv = hsv.unbind(1)
            return hsv_to_rgb(torch.stack([hh, (ss * fs[:, 0]).clamp(0, 1), vv], 1))

        def hue_shift(y):
            hsv = rgb_to_hsv(y)
            hh, ss, vv = hsv.unbind(1)
            return hsv_to_rgb(torch.stack([torch.fmod(hh + fh, 2 * math.pi), ss, vv], 1))

        ops = [brightness, contrast, saturation, hue_shift]
        for i in torch.randperm(4).tolist():
            v = ops[i](v)
        return v

    return _apply_selected(x, p, fn)


def random_erasing(x, scale=(.1, .4), ratio=(.3, 1 / .3), p=0.7):
    """same_on_batch=True: one coin and one box for the whole batch, filled with 0."""
    if torch.rand(()) >= p:
        return x
    _, _, h, w = x.shape
    area = float(torch.empty(()).uniform_(*scale)) * h * w
    r = math.exp(float(torch.empty(()).uniform_(math.log(ratio[0]), math.log(ratio[1]))))
    eh, ew = min(h, max(1, round(math.sqrt(area * r)))), min(w, max(1, round(math.sqrt(area / r))))
    y0, x0 = int(torch.randint(0, h - eh + 1, ())), int(torch.randint(0, w - ew + 1, ()))
    mask = torch.zeros(1, 1, h, w, device=x.device, dtype=x.dtype)
    mask[..., y0:y0 + eh, x0:x0 + ew] = 1
    return x * (1 - mask)


class MakeCutouts(nn.Module):
    """generate.py "latest" (the default cut method): pooled whole-image cutouts, then augments and noise."""

    def __init__(self, cut_size, cutn):
        super().__init__()
        self.cut_size, self.cutn, self.noise_fac = cut_size, cutn, 0.1
        self.av_pool = nn.AdaptiveAvgPool2d((cut_size, cut_size))
        self.max_pool = nn.AdaptiveMaxPool2d((cut_size, cut_size))

    def augs(self, x):  # default augments [['Af', 'Pe', 'Ji', 'Er']]
        x = random_affine(x)
        x = random_perspective(x)
        x = color_jitter(x)
        return random_erasing(x)

    def forward(self, input):
        cutouts = []
        for _ in range(self.cutn):
            cutouts.append((self.av_pool(input) + self.max_pool(input)) / 2)
        batch = self.augs(torch.cat(cutouts, dim=0))
        if self.noise_fac:
            facs = batch.new_empty([self.cutn, 1, 1, 1]).uniform_(0, self.noise_fac)
            batch = batch + facs * torch.randn_like(batch)
        return batch


# ---------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_profile(parts, r):
    """Median seconds of each part over the iterations after the first."""
    import statistics

    n = len(next(iter(parts.values())))
    keep = slice(1, None) if n > 1 else slice(None)
    total = [sum(v[i] for v in parts.values()) for i in range(n)]
    tmed = statistics.median(total[keep])
    print(f"reference loop, {r['size']} x {r['cutouts']} cutouts on {r['device']} ({r['threads']} threads), "
          f"median over iterations {'2' if n > 1 else '1'}..{n} (synchronized between parts):")
    for name, v in list(parts.items()) + [("total", total)]:
        m = statistics.median(v[keep])
        print(f"  {name:22s} {m:8.3f} s  {100 * m / tmed:5.1f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vqgan", help="VQGAN .ckpt (Lightning) or torch.save'd state dict (vqgan drawer)")
    ap.add_argument("--drawer", default="vqgan", choices=["vqgan", "fast_pixel", "fft"],
                    help="what is optimized: VQGAN latents (the anchors' loop), pixray's fast_pixel cells (40x40 "
                         "for a square image, Adam lr 0.2, cells clamped after each step) or aphantasia's fft "
                         "spectrum (AdamW amsgrad lr 0.05); the drawers' code is tests/fixtures/make_drawer_fixtures.py")
    ap.add_argument("--yaml", help="taming config (default: the .ckpt path with .yaml)")
    ap.add_argument("--clip", required=True, help="CLIP ViT-B-32.pt (OpenAI TorchScript or a state dict)")
    ap.add_argument("--prompt", default="a photo of a red apple")
    ap.add_argument("--size", default="256x256", help="WxH")
    ap.add_argument("--cutouts", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sync-every", type=int, default=0,
                    help="CUDA: synchronize and report every N iterations (default 10; CPU: every iteration)")
    ap.add_argument("--count-flops", action="store_true",
                    help="count one extra (untimed) step's FLOPs with torch's FlopCounterMode (flops_per_step)")
    ap.add_argument("--profile", action="store_true",
                    help="time each part of every iteration (synchronizing between parts; backward split in two)")
    args = ap.parse_args()
    if args.profile and args.drawer != "vqgan":
        sys.exit("reference_loop: --profile times the VQGAN loop's parts; use it with --drawer vqgan")

    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    w, h = (int(v) for v in args.size.lower().split("x"))
    sync_every = args.sync_every or (10 if device.type == "cuda" else 1)
    if args.profile:
        sync_every = 1

    ref = import_reference()
    t_imported = time.time()
    if args.drawer == "vqgan":
        if not args.vqgan:
            sys.exit("reference_loop: --vqgan is needed for --drawer vqgan")
        model = load_vqgan(ref, args.vqgan, args.yaml or os.path.splitext(args.vqgan)[0] + ".yaml", device)
    t_vqgan = time.time()
    perceptor = ref.clip_load(args.clip, device=device, jit=False)[0].eval().requires_grad_(False)
    t_clip = time.time()
    rss_after_load = max_rss_mib()

    cut_size = perceptor.visual.input_resolution
    make_cutouts = MakeCutouts(cut_size, args.cutouts)
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)

    with torch.no_grad():
        embed = perceptor.encode_text(ref.tokenize(args.prompt).to(device)).float()
    prompt = Prompt(embed).to(device)

    if args.drawer == "vqgan":
        e_dim = model.quantize.e_dim
        f = 2 ** (model.decoder.num_resolutions - 1)
        toks_x, toks_y = w // f, h // f
        n_toks = model.quantize.n_e
        codebook = model.quantize.embedding.weight
        z_min = codebook.min(dim=0).values[None, :, None, None]
        z_max = codebook.max(dim=0).values[None, :, None, None]
        one_hot = F.one_hot(torch.randint(n_toks, [toks_y * toks_x], device=device), n_toks).float()
        z = one_hot @ codebook
        z = z.view([-1, toks_y, toks_x, e_dim]).permute(0, 3, 1, 2).contiguous()
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.1)

        def synth(z):
            z_q = vector_quantize(z.movedim(1, 3), codebook).movedim(3, 1)
            return clamp_with_grad(model.decode(z_q).add(1).div(2), 0, 1)

        def after_step():
            with torch.inference_mode():
                z.copy_(z.maximum(z_min).minimum(z_max))
    else:
        drawers = _load_file_module("drawer_ref", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                               "tests", "fixtures", "make_drawer_fixtures.py"))
        if args.drawer == "fast_pixel":
            cols, rows = (40, 40) if w == h else (40, 50) if w < h else (80, 45)
            z = torch.rand(1, 3, min(rows, h), min(cols, w), device=device).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=0.2)

            def synth(z):
                return drawers.fp_synth(z, size=(h, w))

            def after_step():
                with torch.no_grad():
                    z.clamp_(0, 1)
        else:
            z = (0.01 * torch.randn(1, 3, h, w // 2 + 1, 2, device=device)).requires_grad_(True)
            opt = torch.optim.AdamW([z], lr=0.05, betas=(0.0, 0.999), weight_decay=0.01, amsgrad=True)
            render = drawers.to_valid_rgb(drawers.fft_image(z, [1, 3, h, w], decay_power=1.5), colors=1.5)

            def synth(z):
                return clamp_with_grad(render(contrast=0.9), 0, 1)

            def after_step():
                pass
    sync(device)
    t_ready = time.time()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def train_step():
        opt.zero_grad(set_to_none=True)
        out = synth(z)
        iii = perceptor.encode_image((make_cutouts(out) - mean) / std).float()
        loss = prompt(iii)
        loss.backward()
        opt.step()
        after_step()
        return loss

    parts = {}

    def profiled_step():
        stamps = []

        def mark(name):
            sync(device)
            stamps.append((name, time.perf_counter()))

        mark("start")
        opt.zero_grad(set_to_none=True)
        z_q = vector_quantize(z.movedim(1, 3), codebook).movedim(3, 1)
        mark("quantize")
        dec = model.decode(z_q)
        mark("decoder_fwd")
        out = clamp_with_grad(dec.add(1).div(2), 0, 1)
        cuts = (make_cutouts(out) - mean) / std
        mark("cutouts_augments_fwd")
        iii = perceptor.encode_image(cuts).float()
        mark("clip_fwd")
        loss = prompt(iii)
        mark("loss_fwd")
        (g,) = torch.autograd.grad(loss, dec)  # CLIP + cutouts + clamp backward
        mark("clip_cutouts_bwd")
        dec.backward(g)  # decoder + quantizer backward into z
        mark("decoder_bwd")
        opt.step()
        with torch.inference_mode():
            z.copy_(z.maximum(z_min).minimum(z_max))
        mark("adam_clamp")
        for (_, t0), (name, t1) in zip(stamps, stamps[1:]):
            parts.setdefault(name, []).append(t1 - t0)
        return loss

    step_fn = profiled_step if args.profile else train_step
    flops = None
    flops_parts = None
    if args.count_flops:
        # One untimed step under torch's FLOP counter: matmuls, convolutions and attention, forward and the
        # backward to z (the weights are frozen: only activation gradients), counted from the tensors' shapes.
        from torch.utils.flop_counter import FlopCounterMode
        counter = FlopCounterMode(display=False)
        with counter:
            train_step()
        flops = counter.get_total_flops()
        # The two towers apart (forward + backward to their input, at the loop's shapes), for each part's
        # share of the peak in `scripts/bench profile`.
        def tower_flops(fn, x):
            x = x.detach().requires_grad_(True)
            c = FlopCounterMode(display=False)
            with c:
                fn(x).float().sum().backward()
            return c.get_total_flops()
        flops_parts = dict(clip=tower_flops(perceptor.encode_image, torch.rand(args.cutouts, 3, cut_size, cut_size,
                                                                                  device=device)))
        if args.drawer == "vqgan":
            flops_parts["decoder"] = tower_flops(model.decode, z.detach().movedim(1, 3).movedim(3, 1))
    windows = []  # (first step, last step, seconds)
    t_first_step = None
    sync(device)
    t_mark, s_mark = time.perf_counter(), 0
    for i in range(1, args.steps + 1):
        if t_first_step is None:
            t_first_step = time.time()
        loss = step_fn()
        if i % sync_every == 0 or i == args.steps:
            sync(device)
            now = time.perf_counter()
            windows.append((s_mark + 1, i, now - t_mark))
            print("BENCHSTEP " + json.dumps(dict(first=s_mark + 1, last=i, seconds=now - t_mark)), flush=True)
            t_mark, s_mark = now, i
    final_loss = float(loss.detach())

    result = dict(
        side="reference", drawer=args.drawer, device=str(device), size=f"{w}x{h}", cutouts=args.cutouts, steps=args.steps,
        torch=torch.__version__, threads=torch.get_num_threads(), clip_source=ref.clip_source,
        clip_dtype=str(perceptor.dtype).replace("torch.", ""), sync_every=sync_every,
        windows=windows, final_loss=final_loss,
        t_process=T_PROCESS, t_imported=t_imported, t_first_step=t_first_step,
        load_seconds=dict(imports=t_imported - T_PROCESS, vqgan=t_vqgan - t_imported, clip=t_clip - t_vqgan,
                          setup=t_ready - t_clip),
        rss_after_load_mib=rss_after_load, rss_peak_mib=max_rss_mib(), flops_per_step=flops,
        flops_parts=flops_parts,
    )
    if device.type == "cuda":
        result.update(cuda_max_allocated_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                      cuda_max_reserved_mib=torch.cuda.max_memory_reserved(device) / 2**20,
                      gpu_name=torch.cuda.get_device_name(device),
                      cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                      matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    if parts:
        result["profile"] = parts
        print_profile(parts, result)
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
