#!/usr/bin/env python3
"""Full-size random weights for `scripts/bench gpu` on a machine where the official-format ones are absent.

The official-format files (`tests/fixtures/make_fixtures.py --full`: Lightning .ckpt with loss and optimizer states,
OpenAI TorchScript .pt) are 1.3 GB, too big to carry to a GPU machine, and that script needs the full reference
packages (clip's loader imports torchvision/pkg_resources). This one writes the same architectures in a few seconds:

    DIR/imagenet_f16_16384.ckpt   torch.save({"state_dict": VQModel state dict}) (zip; no loss, no optimizer states)
    DIR/imagenet_f16_16384.yaml   the taming config
    DIR/ViT-B-32.pt               torch.save(state dict) of OpenAI CLIP ViT-B/32 after clip's convert_weights
                                  (the released file's fp16/f32 mix), which clip.load and vqclip both read

Per-iteration speed and GPU memory do not depend on the file format; load times and host RSS do, so startup
numbers are taken only from the official files (`scripts/bench startup`, on CPU).
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_loop as rl  # noqa: E402

DDCONFIG = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)
CLIP_B32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)
YAML = """model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 256
    n_embed: 16384
    monitor: val/rec_loss
    ddconfig:
      double_z: false
      z_channels: 256
      resolution: 256
      in_channels: 3
      out_ch: 3
      ch: 128
      ch_mult: [1, 1, 2, 2, 4]
      num_res_blocks: 2
      attn_resolutions: [16]
      dropout: 0.0
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    t0 = time.time()
    torch.manual_seed(100)
    ref = rl.import_reference()
    vq = rl.VQModelRef(ref, DDCONFIG, 16384, 256)
    with torch.no_grad():
        vq.quantize.embedding.weight.normal_().mul_(0.5)  # as make_fixtures: a codebook of useful scale
    torch.save({"state_dict": vq.state_dict()}, os.path.join(args.outdir, "imagenet_f16_16384.ckpt"))
    with open(os.path.join(args.outdir, "imagenet_f16_16384.yaml"), "w") as f:
        f.write(YAML)
    del vq

    spec = rl.importlib.util.find_spec("clip")
    model_mod = rl._load_file_module("clip_ref_model", os.path.join(list(spec.submodule_search_locations)[0],
                                                                     "model.py"))
    torch.manual_seed(101)
    cm = model_mod.CLIP(**CLIP_B32)
    model_mod.convert_weights(cm)
    torch.save(cm.state_dict(), os.path.join(args.outdir, "ViT-B-32.pt"))
    for name in sorted(os.listdir(args.outdir)):
        print(f"  {name}: {os.path.getsize(os.path.join(args.outdir, name)) / 1e6:.1f} MB", file=sys.stderr)
    print(f"make_bench_weights: wrote {args.outdir} in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
