//! The native torch checkpoint reader (zip, legacy, TorchScript) against tests/fixtures/make_fixtures.py outputs and
//! hand-made archives: same tensors as safetensors, filters, refusal of code-executing pickles, corrupt files.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{fixture, tmp_dir};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use tch::{Kind, Tensor};
use vqclip::weights::{load_tensors, torch_file};

fn safetensors(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(name))
        .unwrap()
        .into_iter()
        .collect()
}

fn all(_: &str) -> bool {
    true
}

fn err_text(r: anyhow::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// Same names and shapes, `got` in f32 (as the torch files store the VQGAN) and bit-identical to `want`
/// (the fp16 safetensors ground truth) converted to f32.
fn assert_same_f32(got: &BTreeMap<String, Tensor>, want: &HashMap<String, Tensor>) {
    let mut g: Vec<&String> = got.keys().collect();
    let mut w: Vec<&String> = want.keys().collect();
    g.sort();
    w.sort();
    assert_eq!(g, w, "tensor names differ");
    for (name, t) in want {
        let a = &got[name];
        assert_eq!(a.kind(), Kind::Float, "{name} dtype");
        assert_eq!(a.size(), t.size(), "{name} shape");
        assert!(a.equal(&t.to_kind(Kind::Float)), "{name} values differ");
    }
}

#[test]
fn lightning_ckpt_matches_safetensors() {
    let want = safetensors("vqgan_tiny.safetensors");
    let got = load_tensors(&fixture("vqgan_tiny.ckpt"), &all).unwrap();
    let loss: Vec<&str> = got.names().filter(|n| n.starts_with("loss.")).collect();
    assert_eq!(
        loss.len(),
        23,
        "the checkpoint's state_dict has 23 loss.* tensors"
    );
    let mut without_loss = BTreeMap::new();
    for name in got.names().filter(|n| !n.starts_with("loss.")) {
        without_loss.insert(name.to_string(), got.get(name).unwrap().shallow_clone());
    }
    assert_same_f32(&without_loss, &want);
    let nbt = got
        .get("loss.discriminator.main.3.num_batches_tracked")
        .unwrap();
    assert_eq!((nbt.kind(), nbt.size()), (Kind::Int64, vec![]));
    // Nothing from callbacks or optimizer_states leaks into the names.
    assert!(
        got.names()
            .all(|n| !n.contains("best_model_score") && !n.contains("exp_avg"))
    );
}

#[test]
fn keep_filter_leaves_loss_out() {
    let want = safetensors("vqgan_tiny.safetensors");
    let got =
        torch_file::read_zip(&fixture("vqgan_tiny.ckpt"), &|n| !n.starts_with("loss.")).unwrap();
    assert_same_f32(&got, &want);
    let only = torch_file::read_zip(&fixture("vqgan_tiny.ckpt"), &|n| {
        n == "post_quant_conv.bias"
    })
    .unwrap();
    assert_eq!(
        only.keys().collect::<Vec<_>>(),
        vec!["post_quant_conv.bias"]
    );
}

#[test]
fn legacy_file_matches_safetensors() {
    // Ten tensors: a transposed (non-contiguous) codebook, two tensors sharing one storage at offsets 0 and 512,
    // and a 0-d int64 buffer; the data section is in sorted-key order, not pickle order.
    let mut want = safetensors("vqgan_tiny.safetensors");
    let got = load_tensors(&fixture("vqgan_tiny_legacy.pt"), &all).unwrap();
    let nbt = "loss.discriminator.main.3.num_batches_tracked";
    let mut tensors = got.tensors;
    let counter = tensors.remove(nbt).unwrap();
    assert_eq!((counter.kind(), counter.size()), (Kind::Int64, vec![]));
    assert_eq!(counter.int64_value(&[]), 1234);
    want.retain(|k, _| tensors.contains_key(k));
    assert_eq!(want.len(), 9);
    assert_same_f32(&tensors, &want);
    let zip = torch_file::read_zip(&fixture("vqgan_tiny.ckpt"), &|n| n == nbt).unwrap();
    assert!(zip[nbt].equal(&counter));
}

#[test]
fn gumbel_ckpt_loads() {
    let got = load_tensors(&fixture("vqgan_gumbel_tiny.ckpt"), &all).unwrap();
    for name in [
        "quantize.embed.weight",
        "quantize.proj.weight",
        "decoder.conv_out.weight",
    ] {
        assert!(got.contains(name), "{name} missing");
    }
    assert!(!got.contains("quantize.embedding.weight"));
}

#[test]
fn foreign_object_becomes_opaque() {
    let want = safetensors("vqgan_tiny.safetensors");
    let got = load_tensors(&fixture("foreign_object.ckpt"), &all).unwrap();
    assert_eq!(
        got.names().collect::<Vec<_>>(),
        vec!["post_quant_conv.bias", "post_quant_conv.weight"]
    );
    for name in got.names() {
        assert!(
            got.get(name)
                .unwrap()
                .equal(&want[name].to_kind(Kind::Float)),
            "{name}"
        );
    }
}

#[test]
fn malicious_pickles_are_refused() {
    let marker = Path::new("/tmp/vqclip_pwned");
    for (file, global) in [
        ("malicious.ckpt", "posix.system"),
        ("malicious_eval.ckpt", "builtins.eval"),
    ] {
        let path = fixture(file);
        let msg = err_text(load_tensors(&path, &all));
        assert!(msg.contains("refusing to load"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(global), "{msg}");
        assert!(msg.contains("never runs code"), "{msg}");
        // Even when the filter would drop the evil entry.
        let msg = err_text(load_tensors(&path, &|n| n.starts_with("post_quant_conv")));
        assert!(msg.contains(global), "{msg}");
    }
    assert!(
        !marker.exists(),
        "{} exists: something ran code",
        marker.display()
    );
}

#[test]
fn truncated_zip_is_reported() {
    // The fixture README's recipe: the first 60% of vqgan_tiny.ckpt (no central directory).
    let data = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let dir = tmp_dir("truncated");
    let path = dir.join("truncated.ckpt");
    std::fs::write(&path, &data[..data.len() * 6 / 10]).unwrap();
    let msg = err_text(load_tensors(&path, &all));
    assert!(msg.contains("is truncated/corrupt"), "{msg}");
    assert!(msg.contains("truncated.ckpt"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn png_is_not_a_weight_file() {
    let msg = err_text(load_tensors(&fixture("not_a_model.png"), &all));
    assert!(msg.contains("not a weight file"), "{msg}");
    assert!(msg.contains("PNG"), "{msg}");
}

#[test]
fn torchscript_clip_matches_open_clip_safetensors() {
    let path = fixture("clip_tiny.pt");
    let want = safetensors("clip_tiny_openclip.safetensors");
    let got = load_tensors(&path, &all).unwrap();
    // OpenAI's JIT files also carry three int64 buffers that build_model deletes.
    let extra: Vec<&str> = got.names().filter(|n| !want.contains_key(*n)).collect();
    assert_eq!(
        extra,
        vec!["context_length", "input_resolution", "vocab_size"]
    );
    assert_eq!(got.get("context_length").unwrap().kind(), Kind::Int64);
    assert_eq!(want.len(), 62);
    for (name, w) in &want {
        let t = got
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the TorchScript file"));
        assert_eq!(t.size(), w.size(), "{name}");
        // The file's dtype is kept (fp16 here; OpenAI's real files mix fp16 and f32).
        assert_eq!(t.kind(), Kind::Half, "{name}");
        assert!(
            t.to_kind(Kind::Float).equal(&w.to_kind(Kind::Float)),
            "{name} values differ"
        );
    }
}

type Reader = fn(&Path, &dyn Fn(&str) -> bool) -> anyhow::Result<BTreeMap<String, Tensor>>;

/// What a reader makes of a file: every tensor name in the order it offered them to the filter, and the
/// tensors kept.
struct Loaded {
    offered: Vec<String>,
    kept: BTreeMap<String, Tensor>,
}

fn load_seen(read: Reader, path: &Path, keep_all: bool) -> anyhow::Result<Loaded> {
    let offered = std::cell::RefCell::new(Vec::new());
    let kept = read(path, &|name| {
        offered.borrow_mut().push(name.to_string());
        keep_all
    })?;
    Ok(Loaded {
        offered: offered.into_inner(),
        kept,
    })
}

/// How a damaged file was read, next to the intact one.
#[derive(Debug, PartialEq)]
enum Outcome {
    Refused,
    /// The same names, and every kept tensor with the same dtype, shape and values.
    Same,
    /// Exactly that, but some names differ (a flip inside a name string): tensor i under another name.
    Renamed(Vec<String>),
}

/// Refused, the same, or renamed only; anything else (other values, shapes, dtypes, tensors) is an error.
fn outcome(
    got: anyhow::Result<Loaded>,
    intact: &Loaded,
    keep_all: bool,
) -> Result<Outcome, String> {
    let Ok(got) = got else {
        return Ok(Outcome::Refused);
    };
    if got.offered.len() != intact.offered.len() {
        return Err(format!(
            "read without error, but {} tensors instead of {}",
            got.offered.len(),
            intact.offered.len()
        ));
    }
    if !keep_all && !got.kept.is_empty() {
        return Err("kept tensors the filter refused".into());
    }
    let mut renamed = Vec::new();
    for (g, w) in got.offered.iter().zip(&intact.offered) {
        if g != w {
            renamed.push(format!("{w} -> {g}"));
        }
        if !keep_all {
            continue;
        }
        let (Some(t), Some(want)) = (got.kept.get(g), intact.kept.get(w)) else {
            return Err(format!("{g} was offered but not kept"));
        };
        if t.kind() != want.kind() || t.size() != want.size() {
            return Err(format!(
                "read without error, but {g} is {:?} {:?}, not {:?} {:?}",
                t.kind(),
                t.size(),
                want.kind(),
                want.size()
            ));
        }
        if !t.equal(want) {
            return Err(format!("read without error, but {g} has other values"));
        }
    }
    Ok(match renamed.is_empty() {
        true => Outcome::Same,
        false => Outcome::Renamed(renamed),
    })
}

/// Flips one byte at each of `at` (cycling through 4 masks), reads the file with `read`, and sorts the
/// outcomes: (refused, same, renamed: what, other: what). Copying tensors is the slow part, so most
/// reads keep none and compare only the names offered to the filter.
fn flip_outcomes(
    read: Reader,
    data: &[u8],
    at: impl Iterator<Item = usize>,
    dir: &Path,
) -> (usize, usize, Vec<String>, Vec<String>) {
    let path = dir.join("flipped");
    std::fs::write(&path, data).unwrap();
    let intact = load_seen(read, &path, true).unwrap();
    let (mut refused, mut same, mut renamed, mut other) = (0, 0, Vec::new(), Vec::new());
    for (i, at) in at.enumerate() {
        let mask = [0xff, 0x01, 0x80, 0x7f][i % 4];
        let mut d = data.to_vec();
        d[at] ^= mask;
        std::fs::write(&path, &d).unwrap();
        let keep_all = i % 15 == 0;
        match outcome(load_seen(read, &path, keep_all), &intact, keep_all) {
            Ok(Outcome::Refused) => refused += 1,
            Ok(Outcome::Same) => same += 1,
            Ok(Outcome::Renamed(r)) => renamed.push(format!("byte {at} xor {mask:#04x}: {}", r[0])),
            Err(e) => other.push(format!("byte {at} xor {mask:#04x}: {e}")),
        }
    }
    (refused, same, renamed, other)
}

/// The end of the five pickles of a legacy torch file (where the storage records begin).
fn legacy_pickles_end(data: &[u8]) -> usize {
    let mut end = 0;
    for _ in 0..5 {
        end = vqclip::weights::pickle::load(data, end).unwrap().end;
    }
    end
}

#[test]
fn legacy_truncations_are_refused_and_pickle_flips_change_no_tensor() {
    let data = std::fs::read(fixture("vqgan_tiny_legacy.pt")).unwrap();
    let dir = tmp_dir("legacy-cuts");
    let path = dir.join("cut.pt");
    // Every cut is an error, even when no tensor is kept (the storage records must still add up).
    for i in 0..150 {
        let cut = data.len() * i / 150;
        std::fs::write(&path, &data[..cut]).unwrap();
        let r = torch_file::read_legacy(&path, &|_| false);
        assert!(r.is_err(), "cut at {cut} of {} read fine", data.len());
    }
    // Flip bytes across the five pickles: each flipped file is refused or read as the intact one (a byte
    // nothing reads may change nothing). A legacy file has no checksum, so a flip inside a name string
    // cannot be told from a real name: such a file reads with that one name changed, and must otherwise
    // be the intact file. (The raw storage bytes after the pickles have no checksum either.)
    let end = legacy_pickles_end(&data);
    let (refused, same, renamed, other) = flip_outcomes(
        torch_file::read_legacy,
        &data,
        (0..300).map(|i| (i * 7919) % end),
        &dir,
    );
    eprintln!(
        "legacy pickle flips (bytes 0..{end}): {refused} refused, {same} read as the intact file, {} renamed a \
         tensor, {} read otherwise",
        renamed.len(),
        other.len()
    );
    assert!(
        other.is_empty(),
        "{} flipped files read without error but not as the intact file:\n{}",
        other.len(),
        other.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stored `data.pkl` of the Lightning fixture: (offset of its bytes in the file, length).
fn zip_pickle_range(data: &[u8]) -> (usize, usize) {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
    let f = z.by_name("archive/data.pkl").unwrap();
    (
        f.data_start().unwrap() as usize,
        f.compressed_size() as usize,
    )
}

#[test]
fn zip_pickle_bit_flips_are_refused_or_change_nothing() {
    // Stored entries are sliced without the zip reader's checks, so flipped bytes would reach the pickle
    // machine; the reader checks data.pkl's CRC-32 itself. Each flipped file must be refused or read
    // exactly as the intact one.
    let data = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let (start, len) = zip_pickle_range(&data);
    let dir = tmp_dir("zip-flips-strict");
    let (refused, same, renamed, other) = flip_outcomes(
        torch_file::read_zip,
        &data,
        (0..300).map(|i| start + (i * 7919) % len),
        &dir,
    );
    eprintln!("zip pickle flips: {refused} refused, {same} read as the intact file");
    let wrong = [renamed, other].concat();
    assert!(
        wrong.is_empty(),
        "{} flipped files read without error but not as the intact file:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- hand-made archives ----

/// A protocol-2 pickle writer for the few shapes torch.save produces.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }
    fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.op(s.as_bytes())
    }
    fn int(&mut self, i: i64) -> &mut Self {
        self.0.push(b'J');
        self.op(&(i as i32).to_le_bytes())
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn ints(&mut self, v: &[i64]) -> &mut Self {
        self.op(b"(");
        for &i in v {
            self.int(i);
        }
        self.op(b"t")
    }
    fn tensor(
        &mut self,
        storage: &str,
        key: &str,
        numel: i64,
        offset: i64,
        size: &[i64],
        stride: &[i64],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", storage);
        self.str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(offset)
            .ints(size)
            .ints(stride);
        self.op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")RtR")
    }
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn f32_bytes(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn strided_offset_scalar_and_empty_tensors() {
    let dir = tmp_dir("strided");
    let path = dir.join("m.pt");
    let mut p = Pickle::new();
    p.op(b"}(").str("model").op(b"}(");
    p.str("t")
        .tensor("FloatStorage", "0", 12, 0, &[4, 3], &[1, 4]);
    p.str("o").tensor("FloatStorage", "0", 12, 5, &[3], &[1]);
    p.str("s").tensor("FloatStorage", "0", 12, 11, &[], &[]);
    p.str("e")
        .tensor("FloatStorage", "0", 12, 0, &[0, 3], &[3, 1]);
    p.str("h").tensor("HalfStorage", "1", 2, 0, &[2], &[1]);
    p.str("b").tensor("BoolStorage", "2", 2, 0, &[2], &[1]);
    p.str("l")
        .tensor("LongStorage", "3", 1, 0, &[1, 1], &[7, 9]);
    p.op(b"u").str("epoch").int(3).op(b"u.");
    let half: Vec<u8> = [0x3c00u16, 0xc000]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    write_zip(
        &path,
        &[
            ("m/data.pkl", &p.0),
            ("m/byteorder", b"little"),
            ("m/data/0", &f32_bytes((0..12).map(|i| i as f32))),
            ("m/data/1", &half),
            ("m/data/2", &[1, 0]),
            ("m/data/3", &(-5i64).to_le_bytes()),
            ("m/version", b"3\n"),
        ],
    );
    let got = load_tensors(&path, &all).unwrap();
    assert_eq!(
        got.names().collect::<Vec<_>>(),
        vec!["b", "e", "h", "l", "o", "s", "t"]
    );
    let t = got.get("t").unwrap();
    assert!(
        t.equal(
            &Tensor::arange(12, (Kind::Float, tch::Device::Cpu))
                .view([3, 4])
                .tr()
        )
    );
    assert!(t.is_contiguous());
    assert_eq!(
        Vec::<f32>::try_from(got.get("o").unwrap()).unwrap(),
        vec![5.0, 6.0, 7.0]
    );
    assert_eq!(got.get("s").unwrap().size(), Vec::<i64>::new());
    assert_eq!(got.get("s").unwrap().double_value(&[]), 11.0);
    assert_eq!(got.get("e").unwrap().size(), vec![0, 3]);
    let h = got.get("h").unwrap();
    assert_eq!(h.kind(), Kind::Half);
    assert_eq!(
        Vec::<f32>::try_from(h.to_kind(Kind::Float)).unwrap(),
        vec![1.0, -2.0]
    );
    assert_eq!(got.get("b").unwrap().kind(), Kind::Bool);
    assert_eq!(got.get("l").unwrap().int64_value(&[0, 0]), -5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_archives_give_clear_errors() {
    let dir = tmp_dir("bad");
    let storage = f32_bytes((0..12).map(|i| i as f32));

    // A tensor that reaches past its storage.
    let path = dir.join("short.pt");
    let mut p = Pickle::new();
    p.op(b"}(")
        .str("x")
        .tensor("FloatStorage", "0", 12, 0, &[4, 4], &[4, 1])
        .op(b"u.");
    write_zip(&path, &[("a/data.pkl", &p.0), ("a/data/0", &storage)]);
    let msg = err_text(load_tensors(&path, &all));
    assert!(
        msg.contains("truncated/corrupt") && msg.contains("tensor x"),
        "{msg}"
    );

    // An unknown storage dtype: named, but only an error when that tensor is kept.
    let path = dir.join("dtype.pt");
    let mut p = Pickle::new();
    p.op(b"}(")
        .str("c")
        .tensor("ComplexFloatStorage", "0", 6, 0, &[6], &[1]);
    p.str("f")
        .tensor("FloatStorage", "0", 12, 0, &[12], &[1])
        .op(b"u.");
    write_zip(&path, &[("a/data.pkl", &p.0), ("a/data/0", &storage)]);
    let msg = err_text(load_tensors(&path, &all));
    assert!(msg.contains("torch.ComplexFloatStorage"), "{msg}");
    assert_eq!(load_tensors(&path, &|n| n == "f").unwrap().len(), 1);

    // A storage entry that is missing from the archive.
    let path = dir.join("missing.pt");
    write_zip(&path, &[("a/data.pkl", &p.0)]);
    let msg = err_text(load_tensors(&path, &|n| n == "f"));
    assert!(
        msg.contains("truncated/corrupt") && msg.contains("a/data/0"),
        "{msg}"
    );

    // Big-endian archives are refused.
    let path = dir.join("big.pt");
    write_zip(
        &path,
        &[
            ("a/data.pkl", &p.0),
            ("a/byteorder", b"big"),
            ("a/data/0", &storage),
        ],
    );
    assert!(err_text(load_tensors(&path, &all)).contains("big-endian"));

    // A zip that is no torch archive.
    let path = dir.join("other.zip");
    write_zip(&path, &[("readme.txt", b"hello"), ("images/a.png", b"x")]);
    let msg = err_text(load_tensors(&path, &all));
    assert!(
        msg.contains("not a torch checkpoint") && msg.contains("readme.txt"),
        "{msg}"
    );

    // Unsupported opcode (EXT1) and a corrupt pickle.
    let path = dir.join("ext.pt");
    write_zip(&path, &[("a/data.pkl", b"\x80\x02\x82\x01.")]);
    let msg = err_text(load_tensors(&path, &all));
    assert!(msg.contains("EXT1"), "{msg}");
    let path = dir.join("stack.pt");
    write_zip(&path, &[("a/data.pkl", b"\x80\x02}s.")]);
    assert!(err_text(load_tensors(&path, &all)).contains("truncated/corrupt"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nested_dicts_are_joined_with_dots() {
    let dir = tmp_dir("nested");
    let path = dir.join("n.pt");
    let mut p = Pickle::new();
    p.op(b"}(")
        .str("enc")
        .op(b"}(")
        .str("w")
        .tensor("FloatStorage", "0", 12, 0, &[2], &[1]);
    p.str("sub")
        .op(b"}(")
        .int(0)
        .tensor("FloatStorage", "0", 12, 2, &[2], &[1])
        .op(b"uu");
    p.str("note").str("not a tensor").op(b"u.");
    write_zip(
        &path,
        &[
            ("x/data.pkl", &p.0),
            ("x/data/0", &f32_bytes((0..12).map(|i| i as f32))),
        ],
    );
    let got = load_tensors(&path, &all).unwrap();
    assert_eq!(got.names().collect::<Vec<_>>(), vec!["enc.sub.0", "enc.w"]);
    assert_eq!(
        Vec::<f32>::try_from(got.get("enc.sub.0").unwrap()).unwrap(),
        vec![2.0, 3.0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn torchscript_keeps_only_parameters_and_buffers() {
    // A scripted module with a plain tensor attribute (not in its state_dict), a typed dict attribute and a
    // submodule whose class has no code file (then every tensor attribute counts).
    let dir = tmp_dir("script");
    let path = dir.join("s.pt");
    let mut p = Pickle::new();
    p.global("__torch__", "M").op(b")\x81}(");
    p.str("w").tensor("FloatStorage", "0", 12, 0, &[2], &[1]);
    p.str("plain")
        .tensor("FloatStorage", "0", 12, 2, &[2], &[1]);
    p.str("training").op(b"\x88");
    p.str("d")
        .global("torch.jit._pickle", "restore_type_tag")
        .op(b"}(")
        .str("a");
    p.tensor("FloatStorage", "0", 12, 4, &[1], &[1])
        .op(b"u")
        .str("Dict[str, Tensor]")
        .op(b"\x86R");
    p.str("sub")
        .global("__torch__.other", "Sub")
        .op(b")\x81}(")
        .str("v");
    p.tensor("FloatStorage", "0", 12, 6, &[2], &[1]).op(b"ub");
    p.op(b"ub.");
    let code = "class M(Module):\n  __parameters__ = [\"w\", ]\n  __buffers__ = []\n  w : Tensor\n";
    write_zip(
        &path,
        &[
            ("s/data.pkl", &p.0),
            ("s/code/__torch__.py", code.as_bytes()),
            ("s/constants.pkl", b"\x80\x02)."),
            ("s/data/0", &f32_bytes((0..12).map(|i| i as f32))),
        ],
    );
    let got = load_tensors(&path, &all).unwrap();
    assert_eq!(got.names().collect::<Vec<_>>(), vec!["sub.v", "w"]);
    assert_eq!(
        Vec::<f32>::try_from(got.get("sub.v").unwrap()).unwrap(),
        vec![6.0, 7.0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
