//! Hostile and oversized input (issue 18): reference loops in pickles, decompression-bomb images,
//! megabyte prompts and thousands of them, search folders with loops and unreadable entries,
//! non-UTF-8 paths, and a disk that fills up while a checkpoint is written.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{BIN, CLIP, VQGAN, stderr, tmp_dir, vqclip};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

fn generate(out: &Path, extra: &[&str]) -> Command {
    let mut c = vqclip();
    c.args(["generate", "--vqgan", VQGAN, "--clip", CLIP])
        .args(["--size", "32x32", "--cutouts", "4", "--device", "cpu"])
        .args(["--seed", "7", "--quiet", "--precision", "f32", "--out"])
        .arg(out)
        .args(extra);
    c
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A 100 000 x 100 000 RGB PNG header followed by a few bytes of image data: 30 GB if decoded.
fn bomb_png() -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
        out
    };
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn pickle_reference_loops_are_freed() {
    use vqclip::weights::pickle::{self, Value};
    // d = {}; d['self'] = d  (PROTO 2, EMPTY_DICT, BINPUT 0, BINUNICODE 'self', BINGET 0, SETITEM, STOP)
    let bytes = b"\x80\x02}q\x00X\x04\x00\x00\x00selfh\x00s.";
    let loaded = pickle::load(bytes, 0).unwrap();
    let Value::Dict(d) = &loaded.value else {
        panic!("expected a dict, got {}", loaded.value.type_name());
    };
    let weak = Rc::downgrade(&d.0);
    assert!(matches!(loaded.value.get("self"), Some(Value::Dict(_))));
    drop(loaded);
    assert!(
        weak.upgrade().is_none(),
        "a self-referencing dict outlived its pickle: the loop leaks"
    );
    // The input the fuzzer found (LeakSanitizer): whatever it yields, nothing panics.
    let found = std::fs::read("tests/fixtures/fuzz/pickle_reference_loop.pkl").unwrap();
    let _ = pickle::load(&found, 0);
}

#[test]
fn decompression_bomb_images_are_refused_by_size() {
    let dir = tmp_dir("bomb");
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, bomb_png()).unwrap();
    let err = vqclip::image_io::load_rgb(&bomb).unwrap_err().to_string();
    assert!(
        err.contains("100000x100000 pixels") && err.contains("scale it down"),
        "{err}"
    );
    // As an init image: refused before any model work, one line.
    let o = generate(&dir.join("run"), &["a red apple", "--steps", "2"])
        .arg("--init-image")
        .arg(&bomb)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("100000x100000 pixels"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    // In classify: named, and the command fails as no image was read.
    let o = vqclip()
        .arg("classify")
        .arg(&bomb)
        .args(["--labels", "a|b", "--clip", CLIP, "--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("100000x100000 pixels"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn huge_and_numerous_prompts_are_usage_errors() {
    let dir = tmp_dir("prompts");
    let big = dir.join("big.toml");
    std::fs::write(
        &big,
        format!("prompts = \"{}\"\n", "a red circle ".repeat(800_000)),
    )
    .unwrap();
    let o = generate(&dir.join("a"), &["--steps", "1", "--config"])
        .arg(&big)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("prompt 1 is 10399999 bytes long; the limit is 10000"),
        "{}",
        stderr(&o)
    );
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("a red circle {i}"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let many = dir.join("many.toml");
    std::fs::write(&many, format!("prompts = \"{}\"\n", list(10_000))).unwrap();
    let o = generate(&dir.join("b"), &["--steps", "1", "--config"])
        .arg(&many)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("10000 prompts given; one run takes at most 1000"),
        "{}",
        stderr(&o)
    );
    // The limit itself runs (its text is encoded in chunks).
    let edge = dir.join("edge.toml");
    std::fs::write(&edge, format!("prompts = \"{}\"\n", list(1_000))).unwrap();
    let out = dir.join("c");
    let o = generate(&out, &["--steps", "1", "--config"])
        .arg(&edge)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("final.png").is_file());
}

#[test]
fn search_folder_with_loops_bombs_and_bad_names() {
    use std::os::unix::fs::symlink;
    let dir = tmp_dir("search");
    let good = std::fs::read("tests/fixtures/clip_input.png").unwrap();
    std::fs::write(dir.join("good.png"), &good).unwrap();
    let latin1 = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    std::fs::write(&latin1, &good).unwrap();
    std::fs::write(dir.join("bomb.png"), bomb_png()).unwrap();
    std::fs::write(dir.join("truncated.png"), &good[..100]).unwrap();
    std::fs::write(dir.join("empty.jpg"), b"").unwrap();
    symlink("b.png", dir.join("a.png")).unwrap();
    symlink("a.png", dir.join("b.png")).unwrap();
    symlink("nowhere.png", dir.join("dangling.png")).unwrap();
    symlink("..", dir.join("up")).unwrap(); // a folder loop
    let st = Command::new("mkfifo").arg(dir.join("fifo.png")).status();
    assert!(st.is_ok_and(|s| s.success()), "mkfifo");
    let run = || {
        vqclip()
            .arg("search")
            .arg(&dir)
            .args(["--query", "a red apple", "--clip", CLIP, "--device", "cpu"])
            .output()
            .unwrap()
    };
    for pass in ["first", "reuse"] {
        let o = run();
        assert_eq!(o.status.code(), Some(0), "{pass}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("good.png"), "{pass}: {out}");
        assert!(out.contains("caf\u{FFFD}.png"), "{pass}: {out}");
        assert_eq!(
            out.lines().count(),
            3,
            "{pass}: header and two images: {out}"
        );
        let e = stderr(&o);
        assert!(e.contains("6 unreadable"), "{pass}: {e}");
        assert!(
            e.contains("Too many levels of symbolic links"),
            "{pass}: {e}"
        );
        assert!(e.contains("100000x100000 pixels"), "{pass}: {e}");
        // Every warning is one line per file (decoder messages can span lines).
        let listed = e.lines().filter(|l| l.starts_with("  ")).count();
        assert!(listed >= 5, "{pass}: {e}");
    }
}

#[test]
fn non_utf8_paths() {
    let dir = tmp_dir("utf8");
    // A run folder with a non-UTF-8 name works.
    let out = dir.join(std::ffi::OsStr::from_bytes(b"run\xff"));
    let o = generate(&out, &["a red apple", "--steps", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("final.png").is_file());
    // An init image with one cannot be recorded in run.toml: refused up front, by name.
    let img = dir.join(std::ffi::OsStr::from_bytes(b"in\xfe.png"));
    std::fs::copy("tests/fixtures/clip_input.png", &img).unwrap();
    let o = generate(&dir.join("b"), &["a red apple", "--steps", "2"])
        .arg("--init-image")
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--init-image"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));
    // A String argument (an image prompt): clap's message names the argument.
    let o = generate(&dir.join("c"), &["a red apple"])
        .arg("--image-prompt")
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("in\u{FFFD}.png"), "{}", stderr(&o));
}

/// Mounts a tmpfs of `kib` KiB at `dir` (root in CI); false where this machine does not allow it.
fn mount_tmpfs(dir: &Path, kib: u64) -> bool {
    // VQCLIP_TEST_NO_TMPFS=1 exercises the fallback where mounting works.
    if std::env::var_os("VQCLIP_TEST_NO_TMPFS").is_some() {
        return false;
    }
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Bytes free on the filesystem holding `dir` (df).
fn free_bytes(dir: &Path) -> u64 {
    let o = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn disk_full_during_checkpoint_keeps_the_previous_one() {
    let dir = tmp_dir("diskfull");
    let straight = dir.join("straight");
    let steps = ["--steps", "8", "--save-every", "4"];
    let o = generate(&straight, &["a red apple"])
        .args(steps)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A real full disk where a tmpfs can be mounted; else a file size limit (the same EFBIG/ENOSPC path).
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let tmpfs = mount_tmpfs(&mnt, 2048);
    if !tmpfs {
        eprintln!(
            "disk_full: cannot mount a tmpfs here; using a file size limit (ulimit -f) instead"
        );
    }
    let part = mnt.join("part");
    let o = generate(&part, &["a red apple", "--steps", "3", "--save-every", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ckpt = std::fs::read(part.join("checkpoint/state.safetensors")).unwrap();

    let resume_cmd = |limited: bool| {
        let mut c = if limited && !tmpfs {
            // 8 KiB per file: the PNGs fit, the checkpoint's state does not.
            let mut c = Command::new("sh");
            c.args(["-c", "ulimit -f 8; exec \"$0\" \"$@\""]).arg(BIN);
            c
        } else {
            vqclip()
        };
        c.args(["generate", "--quiet"])
            .args(steps)
            .arg("--resume")
            .arg(&part);
        c
    };
    if tmpfs {
        // Fill the disk, leaving less than one checkpoint.
        let free = free_bytes(&mnt);
        let keep = (ckpt.len() as u64) / 2;
        std::fs::write(mnt.join("filler"), vec![0u8; (free - keep) as usize]).unwrap();
    }
    let o = resume_cmd(true).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(
        e.contains("No space left on device") || e.contains("File too large"),
        "{e}"
    );
    // The previous checkpoint is intact, and resuming once there is room gives the straight run's image.
    assert_eq!(
        std::fs::read(part.join("checkpoint/state.safetensors")).unwrap(),
        ckpt
    );
    let _ = std::fs::remove_file(mnt.join("filler"));
    let o = resume_cmd(false).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(straight.join("final.png")).unwrap(),
        std::fs::read(part.join("final.png")).unwrap(),
        "resumed after a full disk, the image differs from the straight run"
    );
    if tmpfs {
        let _ = Command::new("umount").arg(&mnt).status();
    }
}

#[test]
fn runs_that_cannot_fit_are_refused_with_settings_that_would() {
    let dir = tmp_dir("memory");
    // The fixture models are tiny; a 0.6 GiB device leaves ~0.1 GiB beside the runtime.
    let big = generate(
        &dir.join("big"),
        &["a red apple", "--steps", "1", "--size", "512x512"],
    )
    .env("VQCLIP_MEMORY_LIMIT", "0.6")
    .output()
    .unwrap();
    assert_eq!(big.status.code(), Some(2), "{}", stderr(&big));
    let e = stderr(&big);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("this run needs about"), "{e}");
    assert!(e.contains("VQCLIP_MEMORY_LIMIT is 0.6 GiB"), "{e}");
    assert!(!dir.join("big").join("final.png").exists());
    // The suggested size runs under the same limit.
    let size = e
        .split("--size ")
        .nth(1)
        .and_then(|s| s.split([',', ' ', ')']).next())
        .unwrap_or_else(|| panic!("no --size suggestion: {e}"))
        .to_string();
    let (w, h) = size.split_once('x').unwrap();
    let (w, h): (i64, i64) = (w.parse().unwrap(), h.parse().unwrap());
    assert!(w < 512 && w == h && w % 16 == 0, "{size}");
    let o = generate(
        &dir.join("fits"),
        &["a red apple", "--steps", "1", "--size", &size],
    )
    .env("VQCLIP_MEMORY_LIMIT", "0.6")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // --dry-run prints the estimate and the verdict, and writes nothing.
    let o = generate(
        &dir.join("dry"),
        &["a red apple", "--size", "512x512", "--dry-run"],
    )
    .env("VQCLIP_MEMORY_LIMIT", "0.6")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("# memory: about"), "{out}");
    assert!(out.contains("WOULD NOT FIT"), "{out}");
    assert!(!dir.join("dry").exists());
}

#[test]
fn pickles_that_claim_huge_sizes_or_nest_deeply_fail_or_load_without_allocating() {
    use vqclip::weights::{pickle, torch_file};
    // A torch zip whose pickle describes a 10^12-element float tensor over a 4-byte storage.
    let path = Path::new("tests/fixtures/fuzz/huge_tensor_claim.pt");
    let err = format!("{:#}", torch_file::read_zip(path, &|_| true).unwrap_err());
    assert!(err.contains("huge_tensor_claim.pt"), "{err}");
    assert!(
        err.contains("storage") || err.contains("absurd") || err.contains("size"),
        "{err}"
    );
    // A string claiming 2^60 bytes (BINUNICODE8).
    let mut s = b"\x80\x04\x8d".to_vec();
    s.extend((1u64 << 60).to_le_bytes());
    s.extend(b"abc.");
    let err = pickle::load(&s, 0)
        .err()
        .expect("a 2^60-byte string loaded")
        .to_string();
    assert!(
        err.contains("needs 1152921504606846976 more bytes"),
        "{err}"
    );
    // A million nested lists, by APPEND and by MARK/LIST: built and dropped without overflowing the stack.
    let n = 1_000_000;
    let mut by_append = b"\x80\x02".to_vec();
    by_append.extend(std::iter::repeat_n(b']', n));
    by_append.extend(std::iter::repeat_n(b'a', n - 1));
    by_append.push(b'.');
    let mut by_mark = b"\x80\x02".to_vec();
    by_mark.extend(std::iter::repeat_n(b'(', n));
    by_mark.extend(std::iter::repeat_n(b'l', n));
    by_mark.push(b'.');
    for bytes in [by_append, by_mark] {
        // Run on a thread with a small stack: the default main stack would hide a recursive drop.
        let h = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                pickle::load(&bytes, 0)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .unwrap();
        let _ = h
            .join()
            .expect("loading or dropping a deep pickle overflowed the stack");
    }
}

#[test]
fn disk_full_during_index_save_keeps_the_old_index() {
    let dir = tmp_dir("indexfull");
    let tmpfs = mount_tmpfs(&dir, 1024);
    if !tmpfs {
        eprintln!(
            "index disk full: cannot mount a tmpfs here; using a file size limit (ulimit -f 0)"
        );
    }
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    std::fs::copy("tests/fixtures/clip_input.png", imgs.join("a.png")).unwrap();
    std::fs::copy("tests/fixtures/recon_input.png", imgs.join("b.png")).unwrap();
    let search = |limited: bool| {
        let mut c = if limited && !tmpfs {
            let mut c = Command::new("sh");
            c.args(["-c", "ulimit -f 0; exec \"$0\" \"$@\""]).arg(BIN);
            c
        } else {
            vqclip()
        };
        c.arg("search").arg(&imgs).args([
            "--query",
            "a red apple",
            "--clip",
            CLIP,
            "--device",
            "cpu",
        ]);
        c.output().unwrap()
    };
    let o = search(false);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let index_dir = imgs.join(".vqclip-index");
    let index = std::fs::read_dir(&index_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let old = std::fs::read(&index).unwrap();
    std::fs::copy("tests/fixtures/clip_input.png", imgs.join("c.png")).unwrap();
    if tmpfs {
        let free = free_bytes(&dir);
        std::fs::write(dir.join("filler"), vec![0u8; free as usize]).unwrap();
    }
    // Full: the search still answers (all three images), warns in one line, and the old index stays.
    let o = search(true);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 4);
    let e = stderr(&o);
    assert!(e.contains("the index was not saved"), "{e}");
    assert!(
        e.contains("No space left on device") || e.contains("File too large"),
        "{e}"
    );
    assert_eq!(std::fs::read(&index).unwrap(), old, "the old index changed");
    let leftovers = std::fs::read_dir(&index_dir).unwrap().count();
    assert_eq!(
        leftovers, 1,
        "a partial index file was left beside the old one"
    );
    // With room again, the old rows are reused.
    let _ = std::fs::remove_file(dir.join("filler"));
    let o = search(false);
    assert!(stderr(&o).contains("1 encoded, 2 reused"), "{}", stderr(&o));
    if tmpfs {
        let _ = Command::new("umount").arg(&dir).status();
    }
}
