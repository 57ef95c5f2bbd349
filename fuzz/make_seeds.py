#!/usr/bin/env python3
"""Small seed inputs for the fuzz targets (dev-time; reuses tests/fixtures/make_fixtures.py's writers).

    .venv/bin/python fuzz/make_seeds.py     # writes fuzz/seeds/<target>/*

The committed fixtures are added to the corpora by fuzz/run; these seeds are the small, varied cases the fixtures
lack (every dtype, views, shared storages, a TorchScript CLIP with a 300-word vocabulary, settings files, PNG text).
"""
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
import make_fixtures as mf  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(HERE, "seeds")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tensors():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    return {
        "f32": base,
        "view": base[1:3, ::2],            # offset + strides into a shared storage
        "t": base.t(),                     # non-contiguous
        "f16": base.half(),
        "bf16": base[:2].bfloat16(),
        "f64": base[0].double(),
        "i64": torch.arange(5),
        "i32": torch.arange(3, dtype=torch.int32),
        "u8": torch.arange(4, dtype=torch.uint8),
        "b": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }


def torch_zip_bytes(obj, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def main():
    t = tensors()
    lightning = {"epoch": 3, "global_step": 10, "pytorch-lightning_version": "1.0.8",
                 "state_dict": {f"first_stage_model.{k}": v for k, v in t.items()},
                 "hparams": {"n_embed": 64, "lr": 4.5e-6, "names": ["a", "b"], "flag": None}}
    z1 = torch_zip_bytes(t)
    z2 = torch_zip_bytes(lightning)
    put("torch_zip", "state_dict.pt", z1)
    put("torch_zip", "lightning.ckpt", z2)
    # TorchScript: a scripted module with parameters and buffers (code/ files name them).
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(m.eval()), buf)
    put("torch_zip", "scripted.pt", buf.getvalue())

    # Legacy files.
    for name, obj in [("state_dict_legacy.pt", t), ("lightning_legacy.ckpt", lightning)]:
        p = os.path.join(OUT, "tmp_legacy")
        mf.legacy_save(obj, p)
        with open(p, "rb") as f:
            put("torch_legacy", name, f.read())
        os.remove(p)

    # Pickles: the data.pkl of each zip, the legacy stream, and plain protocol 0-5 objects.
    for zname, data in [("state_dict", z1), ("lightning", z2), ("scripted", buf.getvalue())]:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for n in z.namelist():
                if n.endswith(".pkl"):
                    put("pickle", f"{zname}_{n.replace('/', '_')}", z.read(n))
    with open(os.path.join(OUT, "torch_legacy", "lightning_legacy.ckpt"), "rb") as f:
        put("pickle", "legacy_stream", f.read())
    obj = {"a": [1, 2.5, "s", b"by", (1, 2), None, True, 10**30], "n": {"x": {"y": [{}]}}, "f": frozenset([1])}
    for proto in range(6):
        put("pickle", f"plain_p{proto}", pickle.dumps(obj, protocol=proto))

    # safetensors: every dtype, with metadata.
    st = {k: v.contiguous() for k, v in t.items() if k not in ("view", "t")}
    p = os.path.join(OUT, "tmp.safetensors")
    save_file(st, p, metadata={"format": "pt"})
    with open(p, "rb") as f:
        put("safetensors", "dtypes.safetensors", f.read())
    os.remove(p)

    # A TorchScript CLIP with a small vocabulary (the fixture's 49408 words make 7 MB; this is ~100 kB).
    cfg = dict(mf.CLIP_TINY, vocab_size=300, context_length=16, vision_width=64, transformer_width=64,
               embed_dim=16, vision_layers=1, transformer_layers=1)
    model = mf.build_clip(0, cfg)
    img = torch.zeros(1, 3, cfg["image_resolution"], cfg["image_resolution"])
    txt = torch.zeros(1, cfg["context_length"], dtype=torch.long)
    jit = mf.jit_bytes(mf.to_openai_jit(model, img.half(), txt, all_fp16=True))
    put("clip_torchscript", "clip_small.pt", jit)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    p = os.path.join(OUT, "tmp.safetensors")
    save_file(mf.openai_to_hf(sd, cfg), p)
    with open(p, "rb") as f:
        put("clip_torchscript", "clip_small_hf.safetensors", f.read())
    os.remove(p)

    # Search index: what `vqclip search` writes (safetensors + JSON manifest), made by its format rules.
    import hashlib
    import json
    emb = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    raw = emb.numpy().tobytes()
    manifest = {"format_version": 1, "model": "fuzz-model", "dim": 4,
                "embeddings_sha256": hashlib.sha256(raw).hexdigest(),
                "entries": [{"path": "a.png", "size": 10, "mtime_ns": 1}, {"path": "b/c.jpg", "size": 20, "mtime_ns": 2}]}
    p = os.path.join(OUT, "tmp.safetensors")
    save_file({"embeddings": emb}, p, metadata={"vqclip.index": json.dumps(manifest)})
    with open(p, "rb") as f:
        put("search_index", "index.safetensors", f.read())
    os.remove(p)

    # PNG with vqclip's text chunks (tEXt, zTXt, iTXt).
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x10" * 6 + b"\x00" + b"\x20" * 6)
    settings = 'prompts = "a red circle:1.5|blue^green"\nsize = "64x48"\nsteps = 5\nseed = 3\n[run]\nx = 1\n'
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"vqclip:settings\x00" + settings.encode()) \
        + chunk(b"zTXt", b"vqclip:version\x00\x00" + zlib.compress(b"0.1.0")) \
        + chunk(b"iTXt", "prompt\x00\x00\x00\x00\x00café".encode()) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    put("png_config", "settings.png", png)
    put("image_decode", "tiny.png", png)
    put("settings_toml", "config.toml", settings.encode())
    put("settings_toml", "meta.toml", b'format_version = 1\nvqclip_version = "0.1.0"\nstep = 3\n')

    put("prompts", "story", "a red circle:1.5:-0.2|blue square^green: a photo: 2".encode())
    put("prompts", "palette", b"#ff0000,#0f0, black ,white")
    put("vqgan_yaml", "tiny.yaml", open(os.path.join(HERE, "..", "tests", "fixtures", "vqgan_tiny.yaml"), "rb").read())
    put("registry_toml", "registry.toml",
        open(os.path.join(HERE, "..", "src", "weights", "registry.toml"), "rb").read())


if __name__ == "__main__":
    main()
