//! `vqclip weights`: the downloader against a local HTTP server on 127.0.0.1 (full download, resume
//! after a cut connection, checksum mismatch, HTML mirror, connection refused), `verify`, `convert`, `list`.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{fixture, stderr, stdout, tmp_dir};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};
use vqclip::weights::fetch::{self, FetchOptions};
use vqclip::weights::registry::{self, FileEntry, ModelEntry, ModelKind};
use vqclip::weights::verify;

fn quiet() -> FetchOptions {
    FetchOptions {
        quiet: true,
        ..FetchOptions::default()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entry(name: &str, bytes: &[u8], urls: Vec<String>, with_sha: bool) -> FileEntry {
    FileEntry {
        name: name.into(),
        approx_mb: 0,
        sha256: with_sha.then(|| sha256_hex(bytes)),
        size: Some(bytes.len() as u64),
        urls,
        member: None,
        archive_sha256: None,
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server: one thread, `Connection: close`, Range support, and failure modes.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// 200, or 206 for `Range: bytes=N-`.
    Normal,
    /// The first request without a Range header gets the full Content-Length but only half the
    /// bytes, then the connection closes. Later requests are `Normal`.
    CutFirst,
    /// An HTML error page with `Content-Type: text/html`.
    Html,
    /// 404.
    NotFound,
}

struct Route {
    body: Vec<u8>,
    mode: Mode,
    content_type: &'static str,
    cut_done: AtomicBool,
}

fn route(body: Vec<u8>, mode: Mode) -> Route {
    Route {
        body,
        mode,
        content_type: "application/octet-stream",
        cut_done: AtomicBool::new(false),
    }
}

/// (path, Range header) per request, in order.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    port: u16,
    log: Log,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

/// Serves `routes` until 60 s have passed or 200 connections were handled, whichever comes first.
fn serve(routes: Vec<(&str, Route)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let routes: HashMap<String, Route> = routes
        .into_iter()
        .map(|(p, r)| (p.to_string(), r))
        .collect();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut handled = 0;
        while Instant::now() < deadline && handled < 200 {
            match listener.accept() {
                Ok((stream, _)) => {
                    handled += 1;
                    let _ = handle(stream, &routes, &log2);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { port, log }
}

fn handle(
    mut stream: TcpStream,
    routes: &HashMap<String, Route>,
    log: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::new();
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") && req.len() < 16384 {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        req.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&req).to_string();
    let mut lines = text.lines();
    let path = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());
    log.lock().unwrap().push((path.clone(), range.clone()));
    let Some(r) = routes.get(&path) else {
        return respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            &[],
            b"no such file",
        );
    };
    match r.mode {
        Mode::NotFound => respond(&mut stream, "404 Not Found", "text/plain", &[], b"gone"),
        Mode::Html => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            &[],
            b"<!DOCTYPE html><html><body>Link does not exist</body></html>",
        ),
        Mode::CutFirst if range.is_none() && !r.cut_done.swap(true, Ordering::SeqCst) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
                r.body.len(),
                r.content_type
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&r.body[..r.body.len() / 2])?;
            stream.flush()?;
            stream.shutdown(std::net::Shutdown::Both)
        }
        Mode::Normal | Mode::CutFirst => {
            let start = range
                .as_deref()
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.strip_suffix('-'))
                .and_then(|v| v.parse::<usize>().ok());
            let len = r.body.len();
            match start {
                Some(s) if s >= len => respond(
                    &mut stream,
                    "416 Range Not Satisfiable",
                    "text/plain",
                    &[format!("Content-Range: bytes */{len}")],
                    b"",
                ),
                Some(s) => respond(
                    &mut stream,
                    "206 Partial Content",
                    r.content_type,
                    &[format!("Content-Range: bytes {s}-{}/{len}", len - 1)],
                    &r.body[s..],
                ),
                None => respond(&mut stream, "200 OK", r.content_type, &[], &r.body),
            }
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    extra: &[String],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: {ctype}\r\nConnection: close\r\n",
        body.len()
    );
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".part") || n.ends_with(".part.url") || n.ends_with(".lock"))
        .collect()
}

fn read_st(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

// ---------------------------------------------------------------------------------------------
// Downloader.

#[test]
fn full_download_checks_sha256_and_leaves_no_partial() {
    let bytes = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let server = serve(vec![("/vqgan.ckpt", route(bytes.clone(), Mode::Normal))]);
    let dir = tmp_dir("full");
    let f = entry("model.ckpt", &bytes, vec![server.url("/vqgan.ckpt")], true);
    let got = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap();
    assert_eq!(got, dir.join("model.ckpt"));
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    assert!(
        leftovers(&dir).is_empty(),
        "left behind: {:?}",
        leftovers(&dir)
    );
    assert_eq!(server.requests(), vec![("/vqgan.ckpt".to_string(), None)]);
}

#[test]
fn resumes_after_a_cut_connection_with_range() {
    let bytes = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let server = serve(vec![("/cut.ckpt", route(bytes.clone(), Mode::CutFirst))]);
    let dir = tmp_dir("cut");
    let f = entry("model.ckpt", &bytes, vec![server.url("/cut.ckpt")], true);
    let got = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].1, None);
    assert_eq!(
        reqs[1].1.as_deref(),
        Some(format!("bytes={}-", bytes.len() / 2).as_str())
    );
    assert!(leftovers(&dir).is_empty());
}

#[test]
fn resumes_a_partial_file_left_by_an_earlier_run() {
    let bytes = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let server = serve(vec![("/a.ckpt", route(bytes.clone(), Mode::Normal))]);
    let dir = tmp_dir("earlier");
    let url = server.url("/a.ckpt");
    std::fs::write(dir.join("model.ckpt.part"), &bytes[..100_000]).unwrap();
    std::fs::write(dir.join("model.ckpt.part.url"), &url).unwrap();
    let f = entry("model.ckpt", &bytes, vec![url], true);
    let got = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    assert_eq!(
        server.requests(),
        vec![("/a.ckpt".to_string(), Some("bytes=100000-".to_string()))]
    );

    // A part from another source is not spliced onto this one: it starts over.
    let server2 = serve(vec![("/b.ckpt", route(bytes.clone(), Mode::Normal))]);
    std::fs::write(dir.join("other.ckpt.part"), &bytes[..100_000]).unwrap();
    std::fs::write(
        dir.join("other.ckpt.part.url"),
        "http://127.0.0.1:1/elsewhere",
    )
    .unwrap();
    let f = entry("other.ckpt", &bytes, vec![server2.url("/b.ckpt")], true);
    fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap();
    assert_eq!(server2.requests(), vec![("/b.ckpt".to_string(), None)]);
    assert!(leftovers(&dir).is_empty());
}

#[test]
fn checksum_mismatch_is_rejected_and_the_partial_removed() {
    let bytes = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let server = serve(vec![("/m.ckpt", route(bytes.clone(), Mode::Normal))]);
    let dir = tmp_dir("sha");
    let mut f = entry("model.ckpt", &bytes, vec![server.url("/m.ckpt")], false);
    f.sha256 = Some("0".repeat(64));
    let err = format!(
        "{:#}",
        fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap_err()
    );
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(err.contains(&sha256_hex(&bytes)), "{err}");
    assert!(!dir.join("model.ckpt").exists());
    assert!(
        leftovers(&dir).is_empty(),
        "left behind: {:?}",
        leftovers(&dir)
    );
}

#[test]
fn html_and_dead_mirrors_are_skipped_for_the_next() {
    let bytes = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let page = b"<!DOCTYPE html>\n<html><body>Link does not exist</body></html>".to_vec();
    let server = serve(vec![
        ("/html", route(Vec::new(), Mode::Html)),
        ("/gone", route(Vec::new(), Mode::NotFound)),
        // HTML served as a binary type is caught by its first bytes.
        ("/disguised", route(page, Mode::Normal)),
        ("/good", route(bytes.clone(), Mode::Normal)),
    ]);
    let dir = tmp_dir("html");
    let mut f = entry(
        "model.ckpt",
        &bytes,
        vec![
            server.url("/html"),
            server.url("/gone"),
            server.url("/disguised"),
            server.url("/good"),
        ],
        false,
    );
    f.size = None;
    let got = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet()).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.0).collect();
    assert_eq!(paths, ["/html", "/gone", "/disguised", "/good"]);
    assert!(leftovers(&dir).is_empty());

    // With no good source left the error names each failure.
    let f = entry(
        "yaml_only.yaml",
        b"x",
        vec![server.url("/html"), server.url("/gone")],
        false,
    );
    let err = fetch::fetch_file(&f, None, &dir, &quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTML page"), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(!dir.join("yaml_only.yaml").exists());
}

#[test]
fn a_file_of_the_wrong_kind_is_rejected_by_loading() {
    // No checksum published: the download must open as the expected kind of model.
    let clip = std::fs::read(fixture("clip_tiny_openclip.safetensors")).unwrap();
    let png = std::fs::read(fixture("not_a_model.png")).unwrap();
    let server = serve(vec![
        ("/clip", route(clip.clone(), Mode::Normal)),
        ("/png", route(png, Mode::Normal)),
    ]);
    let dir = tmp_dir("kind");
    let mut f = entry(
        "vq.safetensors",
        &clip,
        vec![server.url("/png"), server.url("/clip")],
        false,
    );
    f.size = None;
    let err = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a checkpoint"), "{err}");
    assert!(err.contains("does not open as a VQGAN checkpoint"), "{err}");
    assert!(!dir.join("vq.safetensors").exists());
    assert!(leftovers(&dir).is_empty());
    // The same bytes are fine as a CLIP model.
    fetch::fetch_file(&f, Some(ModelKind::Clip), &dir, &quiet()).unwrap();
}

#[test]
fn connection_refused_fails_fast_with_manual_steps() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tmp_dir("refused");
    let url = format!("http://127.0.0.1:{port}/imagenet.ckpt");
    let f = entry("imagenet_f16_16384.ckpt", b"", vec![url.clone()], false);
    let t = Instant::now();
    let err = fetch::fetch_file(&f, Some(ModelKind::Vqgan), &dir, &quiet())
        .unwrap_err()
        .to_string();
    // Loose bound: a refused connection must not wait for a timeout (8 s per host).
    assert!(
        t.elapsed() < Duration::from_secs(7),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("no network connection?"), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(
        err.contains(&dir.join("imagenet_f16_16384.ckpt").display().to_string()),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn fetch_model_gets_checkpoint_and_yaml_then_writes_the_cache() {
    let ckpt = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let yaml = std::fs::read(fixture("vqgan_tiny.yaml")).unwrap();
    let server = serve(vec![
        ("/c", route(ckpt.clone(), Mode::Normal)),
        ("/y", route(yaml.clone(), Mode::Normal)),
    ]);
    let dir = tmp_dir("model");
    let m = ModelEntry {
        name: "tiny".into(),
        kind: ModelKind::Vqgan,
        aliases: vec![],
        description: "test".into(),
        file: vec![
            entry("tiny.ckpt", &ckpt, vec![server.url("/c")], false),
            entry("tiny.yaml", &yaml, vec![server.url("/y")], false),
        ],
        alt: vec![],
        bundled: false,
        clip: None,
    };
    let got = fetch::fetch_model(&m, &dir, true).unwrap();
    assert_eq!(got, dir.join("tiny.safetensors"));
    assert_eq!(std::fs::read(dir.join("tiny.yaml")).unwrap(), yaml);
    // The cache holds exactly the autoencoder (no loss.*), equal to the reference export.
    let cache = read_st(&got);
    let want = read_st(&fixture("vqgan_tiny.safetensors"));
    let mut a: Vec<&String> = cache.keys().collect();
    let mut b: Vec<&String> = want.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(cache.len(), 183);
    // Same values as the reference, same dtype as the source checkpoint.
    let src = vqclip::weights::load_tensors(&dir.join("tiny.ckpt"), &|_| true).unwrap();
    for (k, t) in &want {
        assert_eq!(cache[k].kind(), src.get(k).unwrap().kind(), "{k}");
        assert_eq!(max_abs_diff(&cache[k], t), 0.0, "{k}");
    }
    // A second fetch downloads nothing.
    let n = server.requests().len();
    assert_eq!(fetch::fetch_model(&m, &dir, true).unwrap(), got);
    assert_eq!(server.requests().len(), n);
    assert_eq!(registry::find_present(&m, &dir), Some(got));
}

#[test]
fn fetch_model_falls_back_to_the_safetensors_mirror() {
    let st = std::fs::read(fixture("clip_tiny_openclip.safetensors")).unwrap();
    let server = serve(vec![("/st", route(st.clone(), Mode::Normal))]);
    let dir = tmp_dir("alt");
    let m = ModelEntry {
        name: "tinyclip".into(),
        kind: ModelKind::Clip,
        aliases: vec![],
        description: "test".into(),
        file: vec![FileEntry {
            name: "tinyclip.pt".into(),
            approx_mb: 0,
            sha256: Some("1".repeat(64)),
            size: None,
            member: None,
            archive_sha256: None,
            urls: vec![server.url("/dead")],
        }],
        alt: vec![entry(
            "tinyclip.safetensors",
            &st,
            vec![server.url("/st")],
            false,
        )],
        bundled: false,
        clip: None,
    };
    let got = fetch::fetch_model(&m, &dir, true).unwrap();
    assert_eq!(got, dir.join("tinyclip.safetensors"));
    assert_eq!(std::fs::read(&got).unwrap(), st);
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// Runs the binary with `VQCLIP_WEIGHTS=weights`, from the folder above it: (exit code, stdout, stderr).
fn run_weights(weights: &Path, args: &[&str]) -> (i32, String, String) {
    let out = common::vqclip()
        .args(args)
        .env("VQCLIP_WEIGHTS", weights)
        .current_dir(weights.parent().unwrap())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn list_shows_every_registry_entry_and_presence() {
    registry::check().unwrap();
    let dir = tmp_dir("list").join("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture("vqgan_tiny.yaml"),
        dir.join("imagenet_f16_16384.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("gumbel_f8_8192.ckpt.part"), vec![0u8; 2000]).unwrap();
    let (code, out, err) = run_weights(&dir, &["weights", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(registry::models().len() >= 9);
    for m in registry::models() {
        assert!(out.contains(&m.name), "{} missing from\n{out}", m.name);
        for f in m.file.iter().chain(m.alt.iter()) {
            assert!(out.contains(&f.name), "{} missing from\n{out}", f.name);
            if let Some(sha) = &f.sha256 {
                assert!(out.contains(sha.as_str()), "sha of {}", f.name);
            }
        }
    }
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("imagenet_f16_16384.yaml").contains("present"), "{out}");
    assert!(line("imagenet_f16_16384.ckpt").contains("missing"), "{out}");
    assert!(line("gumbel_f8_8192.ckpt").contains("partial"), "{out}");
    assert!(
        line("imagenet_f16_16384.ckpt").contains("size only"),
        "{out}"
    );
    for name in [
        "ViT-B/32",
        "ViT-B/16",
        "ViT-L/14",
        "ViT-L/14@336px",
        "sflckr",
        "wikiart_16384",
        "gumbel_f8_8192",
    ] {
        assert!(out.contains(name), "{name}");
    }
}

#[test]
fn path_prints_the_weights_directory() {
    let dir = tmp_dir("path").join("somewhere");
    let (code, out, _) = run_weights(&dir, &["weights", "path"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), dir.display().to_string());
}

#[test]
fn unknown_model_is_a_usage_error_listing_the_names() {
    let dir = tmp_dir("unknown").join("w");
    for args in [
        &["weights", "fetch", "imagenet_f16_99"][..],
        &["weights", "verify", "nope"][..],
    ] {
        let (code, out, err) = run_weights(&dir, args);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty());
        assert!(err.starts_with("vqclip: error: unknown model"), "{err}");
        assert!(
            err.contains("imagenet_f16_16384") && err.contains("ViT-L/14@336px"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn verify_passes_good_files_and_flags_a_corrupted_one() {
    let dir = tmp_dir("verify").join("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture("vqgan_tiny.ckpt"),
        dir.join("imagenet_f16_16384.ckpt"),
    )
    .unwrap();
    std::fs::copy(
        fixture("vqgan_tiny.yaml"),
        dir.join("imagenet_f16_16384.yaml"),
    )
    .unwrap();
    std::fs::copy(
        fixture("clip_tiny_openclip.safetensors"),
        dir.join("ViT-B-16.safetensors"),
    )
    .unwrap();
    let (code, out, err) = run_weights(&dir, &["weights", "verify"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("ok   ") && out.contains("imagenet_f16_16384.ckpt"),
        "{out}"
    );
    assert!(
        out.contains("loads as VQGAN") && out.contains("loads as CLIP"),
        "{out}"
    );
    assert!(out.contains("expected about 980 MB"), "size remark: {out}");

    // A truncated checkpoint (first 60%) and an HTML page saved as the config.
    let ckpt = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    std::fs::write(
        dir.join("imagenet_f16_16384.ckpt"),
        &ckpt[..ckpt.len() * 6 / 10],
    )
    .unwrap();
    std::fs::write(
        dir.join("imagenet_f16_16384.yaml"),
        "<!DOCTYPE html><html>Link does not exist</html>",
    )
    .unwrap();
    let (code, out, err) = run_weights(&dir, &["weights", "verify", "imagenet_f16_16384"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let bad: Vec<&str> = out.lines().filter(|l| l.starts_with("BAD")).collect();
    assert_eq!(bad.len(), 2, "{out}");
    assert!(
        bad.iter().any(
            |l| l.contains("imagenet_f16_16384.ckpt") && l.contains("does not open as a VQGAN")
        )
    );
    assert!(
        bad.iter()
            .any(|l| l.contains("imagenet_f16_16384.yaml") && l.contains("HTML"))
    );
    assert!(bad.iter().all(|l| l.contains("fix: delete it and run `vqclip weights fetch imagenet_f16_16384`")));
    assert!(err.starts_with("vqclip: error: 2 problem(s)"), "{err}");
    assert!(!out.contains("ViT-B-16"), "only the named model: {out}");

    // A published checksum catches a file that loads fine but is not the official one.
    std::fs::copy(fixture("clip_tiny.pt"), dir.join("ViT-B-32.pt")).unwrap();
    let (code, out, _) = run_weights(&dir, &["weights", "verify", "ViT-B/32"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("BAD  ") && out.contains("ViT-B-32.pt: sha256 mismatch"),
        "{out}"
    );

    // Naming a model that is not there says how to get it.
    let (code, out, _) = run_weights(&dir, &["weights", "verify", "wikiart_16384"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("run `vqclip weights fetch wikiart_16384`"),
        "{out}"
    );
}

#[test]
fn verify_file_checks_sha256_with_a_custom_entry() {
    let dir = tmp_dir("verify_sha");
    let bytes = std::fs::read(fixture("vqgan_tiny.safetensors")).unwrap();
    let p = dir.join("v.safetensors");
    std::fs::write(&p, &bytes).unwrap();
    let good = entry("v.safetensors", &bytes, vec![], true);
    let (detail, _) = verify::verify_file(
        &p,
        Some(&good),
        ModelKind::Vqgan,
        Some(&vqclip::cmd::weights::load_model),
    )
    .unwrap();
    assert!(detail.contains("sha256 ok"), "{detail}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40; // inside tensor data: loads fine, only the checksum sees it
    std::fs::write(&p, &flipped).unwrap();
    let err = verify::verify_file(
        &p,
        Some(&good),
        ModelKind::Vqgan,
        Some(&vqclip::cmd::weights::load_model),
    )
    .unwrap_err();
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(
        verify::verify_file(
            &p,
            None,
            ModelKind::Vqgan,
            Some(&vqclip::cmd::weights::load_model)
        )
        .is_ok()
    );
}

#[test]
fn convert_writes_the_inference_subset_and_keeps_the_yaml() {
    let root = tmp_dir("convert");
    let dir = root.join("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture("vqgan_tiny.ckpt"),
        dir.join("imagenet_f16_16384.ckpt"),
    )
    .unwrap();
    std::fs::copy(
        fixture("vqgan_tiny.yaml"),
        dir.join("imagenet_f16_16384.yaml"),
    )
    .unwrap();
    let (code, out, err) = run_weights(&dir, &["weights", "convert", "imagenet_f16_16384"]);
    assert_eq!(code, 0, "{err}");
    let cache = dir.join("imagenet_f16_16384.safetensors");
    assert_eq!(out.trim(), cache.display().to_string());
    assert!(err.contains("183 VQGAN tensors"), "{err}");
    let got = read_st(&cache);
    let want = read_st(&fixture("vqgan_tiny.safetensors"));
    assert_eq!(got.len(), want.len());
    for (k, t) in &want {
        assert_eq!(max_abs_diff(&got[k], t), 0.0, "{k}");
    }
    // Loading now prefers the cache.
    let m = registry::find("imagenet_f16_16384", ModelKind::Vqgan).unwrap();
    assert_eq!(registry::find_present(m, &dir), Some(cache.clone()));

    // Never overwrite without --force.
    let (code, _, err) = run_weights(&dir, &["weights", "convert", "imagenet_f16_16384"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists; pass --force"), "{err}");
    let (code, _, err) = run_weights(
        &dir,
        &["weights", "convert", "imagenet_f16_16384", "--force"],
    );
    assert_eq!(code, 0, "{err}");

    // --out elsewhere takes the yaml along under the new stem.
    let other = root.join("out/fast.safetensors");
    let (code, _, err) = run_weights(
        &dir,
        &[
            "weights",
            "convert",
            dir.join("imagenet_f16_16384.ckpt").to_str().unwrap(),
            "-o",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(root.join("out/fast.yaml")).unwrap(),
        std::fs::read(fixture("vqgan_tiny.yaml")).unwrap()
    );
    // A safetensors file cannot be converted onto itself.
    let (code, _, err) = run_weights(&dir, &["weights", "convert", cache.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already a .safetensors file"), "{err}");
    // A model that is not there points at fetch.
    let (code, _, err) = run_weights(&dir, &["weights", "convert", "gumbel_f8_8192"]);
    assert_eq!(code, 1);
    assert!(err.contains("vqclip weights fetch gumbel_f8_8192"), "{err}");
}

#[test]
fn convert_clip_torchscript_keeps_dtypes_and_drops_the_settings() {
    let dir = tmp_dir("convert_clip");
    let src = dir.join("clip.pt");
    std::fs::copy(fixture("clip_tiny.pt"), &src).unwrap();
    let out = dir.join("clip.safetensors");
    let r = vqclip::weights::convert::convert_file(&src, None, &out, false).unwrap();
    assert_eq!(r.kind, ModelKind::Clip);
    let got = read_st(&out);
    let want = read_st(&fixture("clip_tiny_openclip.safetensors"));
    assert_eq!(got.len(), 62);
    for k in ["input_resolution", "context_length", "vocab_size"] {
        assert!(!got.contains_key(k));
    }
    // Values equal the reference export; every dtype is the one stored in the TorchScript file.
    let source = vqclip::weights::load_tensors(&src, &|_| true).unwrap();
    for (k, t) in &want {
        assert_eq!(max_abs_diff(&got[k], t), 0.0, "{k}");
        assert_eq!(got[k].kind(), source.get(k).unwrap().kind(), "{k}");
    }
    assert_eq!(got["visual.conv1.weight"].kind(), Kind::Half);
}

#[test]
fn convert_strips_the_net2net_prefix_and_drops_the_transformer() {
    let dir = tmp_dir("convert_n2n");
    let want = read_st(&fixture("vqgan_tiny.safetensors"));
    let mut tensors: Vec<(String, Tensor)> = want
        .iter()
        .map(|(k, t)| (format!("first_stage_model.{k}"), t.shallow_clone()))
        .collect();
    tensors.push((
        "transformer.tok_emb.weight".into(),
        Tensor::zeros([4, 4], (Kind::Float, tch::Device::Cpu)),
    ));
    tensors.push((
        "cond_stage_model.decoder.conv_in.weight".into(),
        Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu)),
    ));
    let src = dir.join("sflckr_like.safetensors");
    Tensor::write_safetensors(&tensors, &src).unwrap();
    let out = dir.join("vq.safetensors");
    let r =
        vqclip::weights::convert::convert_file(&src, Some(ModelKind::Vqgan), &out, false).unwrap();
    assert_eq!(r.tensors, want.len());
    let got = read_st(&out);
    for (k, t) in &want {
        assert_eq!(max_abs_diff(&got[k], t), 0.0, "{k}");
    }
    // Asking for the wrong kind is refused.
    let err = vqclip::weights::convert::convert_file(
        &src,
        Some(ModelKind::Clip),
        &dir.join("x.safetensors"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a CLIP checkpoint"), "{err}");
}

#[test]
fn content_sniffing() {
    assert!(verify::check_head("a.ckpt", b"PK\x03\x04rest").is_ok());
    assert!(verify::check_head("a.yaml", b"model:\n  base_learning_rate: 4.5e-06\n").is_ok());
    assert!(verify::check_head("a.yaml", b"  <!doctype html><html>").is_err());
    assert!(verify::check_head("a.ckpt", b"<html><head>").is_err());
    assert!(verify::check_head("a.ckpt", b"not a checkpoint").is_err());
    assert!(verify::check_head("a.yaml", b"\x00\x01\x02").is_err());
    assert!(verify::check_head("a.pt", b"").is_err());
    let st = std::fs::read(fixture("clip_tiny_hf.safetensors")).unwrap();
    assert!(verify::check_head("a.safetensors", &st[..64]).is_ok());
    let legacy = std::fs::read(fixture("vqgan_tiny_legacy.pt")).unwrap();
    assert!(verify::check_head("a.pt", &legacy[..64]).is_ok());
    assert_eq!(
        fetch::host_of("https://huggingface.co/openai/x?dl=1"),
        "huggingface.co"
    );
}

#[test]
fn user_registry_and_mirror_through_the_command_line() {
    let ckpt = std::fs::read(fixture("vqgan_tiny.ckpt")).unwrap();
    let yaml = std::fs::read(fixture("vqgan_tiny.yaml")).unwrap();
    // The mirror has both files; the registry's own URLs are dead.
    let server = serve(vec![
        ("/mirror/mine.ckpt", route(ckpt.clone(), Mode::CutFirst)),
        ("/mirror/mine.yaml", route(yaml.clone(), Mode::Normal)),
    ]);
    let root = tmp_dir("user-registry");
    let weights = root.join("w");
    std::fs::create_dir_all(&weights).unwrap();
    let reg = root.join("registry.toml");
    std::fs::write(
        &reg,
        format!(
            "[[model]]\nname = \"mine\"\nkind = \"vqgan\"\ndescription = \"a user's model\"\n\
             [[model.file]]\nname = \"mine.ckpt\"\nsha256 = \"{}\"\nsize = {}\nurls = [\"http://127.0.0.1:1/dead\"]\n\
             [[model.file]]\nname = \"mine.yaml\"\nsha256 = \"{}\"\nurls = [\"http://127.0.0.1:1/dead\"]\n",
            sha256_hex(&ckpt),
            ckpt.len(),
            sha256_hex(&yaml)
        ),
    )
    .unwrap();
    let run = |args: &[&str], mirror: Option<String>, reg: &Path| {
        let mut c = common::vqclip();
        c.args(args)
            .env("VQCLIP_WEIGHTS", &weights)
            .env("VQCLIP_REGISTRY", reg)
            .env_remove("VQCLIP_MIRROR");
        if let Some(m) = mirror {
            c.env("VQCLIP_MIRROR", m);
        }
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&["weights", "list"], None, &reg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mine"), "{out}");
    // Without the mirror: every source fails, exit 1.
    let (code, _, err) = run(&["weights", "fetch", "mine"], None, &reg);
    assert_eq!(code, 1, "{err}");
    // With it: fetched (resuming the cut transfer) and verified.
    let (code, _, err) = run(
        &["weights", "fetch", "mine"],
        Some(server.url("/mirror/")),
        &reg,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(weights.join("mine.ckpt")).unwrap(), ckpt);
    assert!(
        server
            .requests()
            .iter()
            .any(|(p, r)| p == "/mirror/mine.ckpt" && r.is_some()),
        "the cut transfer was not resumed: {:?}",
        server.requests()
    );
    // A registry that would write outside the weights folder, or with a bad checksum or URL: exit 2.
    for (bad, says) in [
        (
            "name = \"../evil.ckpt\"\nurls = [\"http://a/b\"]",
            "inside the weights folder",
        ),
        (
            "name = \"/etc/evil\"\nurls = [\"http://a/b\"]",
            "inside the weights folder",
        ),
        ("name = \"x.ckpt\"\nsha256 = \"abc\"", "64 hex digits"),
        (
            "name = \"x.ckpt\"\nurls = [\"file:///etc/passwd\"]",
            "not an http(s) URL",
        ),
    ] {
        std::fs::write(
            &reg,
            format!(
                "[[model]]\nname = \"x\"\nkind = \"vqgan\"\ndescription = \"d\"\n[[model.file]]\n{bad}\n"
            ),
        )
        .unwrap();
        let (code, _, err) = run(&["weights", "list"], None, &reg);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains(says) && err.contains("VQCLIP_REGISTRY"),
            "{err}"
        );
    }
}

/// The loss models by name: `verify` and `convert` know the ResMem and the aesthetic head (every
/// kind, not only VQGAN and CLIP), and the cache of a ResMem loads to the same tensors.
#[test]
fn verify_and_convert_know_every_kind_of_model() {
    let dir = tmp_dir("lossmodels").join("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        common::fixture("resmem_tiny.pt"),
        dir.join("resmem_model.pt"),
    )
    .unwrap();
    let (code, out, err) = run_weights(&dir, &["weights", "verify", "resmem"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("loads as ResMem"), "{out}");
    let (code, _, err) = run_weights(&dir, &["weights", "verify", "ava_vit_b_16_linear"]);
    assert!(!err.contains("unknown model"), "{err}");
    assert_ne!(code, 0, "the head is missing: {err}");
    let (code, out, err) = run_weights(&dir, &["weights", "convert", "resmem"]);
    assert_eq!(code, 0, "{out}{err}");
    let cache = read_st(&dir.join("resmem_model.safetensors"));
    let original =
        vqclip::weights::load_tensors(&common::fixture("resmem_tiny.pt"), &|_| true).unwrap();
    assert!(!cache.contains_key("features.bn1.num_batches_tracked"));
    assert_eq!(
        cache.len()
            + original
                .names()
                .filter(|n| n.ends_with("num_batches_tracked"))
                .count(),
        original.len()
    );
    for (name, t) in &cache {
        assert_eq!(max_abs_diff(t, original.get(name).unwrap()), 0.0, "{name}");
    }
    let (code, out, err) = run_weights(&dir, &["weights", "verify", "resmem"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("resmem_model.safetensors") && out.contains("loads as ResMem"),
        "{out}"
    );
}

/// A file served inside a zip archive (ResMem's weights inside PyPI's resmem wheel): the archive's
/// sha256 is checked, the member unpacked and checked as the file (its sha256, loading), and a wrong
/// archive or one without the member is another source's failure, leaving nothing behind.
#[test]
fn a_member_of_an_archive_is_unpacked_and_checked() {
    use std::io::Write;
    let model = std::fs::read(fixture("resmem_tiny.pt")).unwrap();
    let wheel = |member: &str| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("resmem/__init__.py", opts).unwrap();
        z.write_all(b"# the package\n").unwrap();
        z.start_file(member, opts).unwrap();
        z.write_all(&model).unwrap();
        z.finish().unwrap();
        buf.into_inner()
    };
    let good = wheel("resmem/model.pt");
    let other = wheel("resmem/other.pt");
    let server = serve(vec![
        ("/good.whl", route(good.clone(), Mode::Normal)),
        ("/other.whl", route(other, Mode::Normal)),
    ]);
    let dir = tmp_dir("member");
    let mut f = entry(
        "resmem_model.pt",
        &model,
        vec![server.url("/good.whl")],
        true,
    );
    f.size = None;
    f.member = Some("resmem/model.pt".into());
    f.archive_sha256 = Some(sha256_hex(&good));
    let got = fetch::fetch_file(&f, Some(ModelKind::Resmem), &dir, &quiet()).unwrap();
    assert_eq!(
        std::fs::read(&got).unwrap(),
        model,
        "the member, byte for byte"
    );
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    vqclip::models::resmem::ResMem::load(&got, tch::Device::Cpu).unwrap();
    std::fs::remove_file(&got).unwrap();
    // Wrong archive hash, then an archive without the member: both refused, nothing kept.
    f.archive_sha256 = Some(sha256_hex(b"something else"));
    let err = fetch::fetch_file(&f, Some(ModelKind::Resmem), &dir, &quiet()).unwrap_err();
    assert!(
        format!("{err:#}").contains("archive sha256 mismatch"),
        "{err:#}"
    );
    f.urls = vec![server.url("/other.whl")];
    f.archive_sha256 = None;
    let err = fetch::fetch_file(&f, Some(ModelKind::Resmem), &dir, &quiet()).unwrap_err();
    assert!(
        format!("{err:#}").contains("holds no resmem/model.pt"),
        "{err:#}"
    );
    assert!(!dir.join("resmem_model.pt").exists());
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    // The registry's entry: pixray's copy first, then the wheel's member with both hashes.
    let entry = vqclip::weights::registry::find("resmem", ModelKind::Resmem).unwrap();
    let alt = &entry.alt[0];
    assert_eq!(alt.member.as_deref(), Some("resmem/model.pt"));
    assert!(alt.sha256.is_some() && alt.archive_sha256.is_some());
    assert!(alt.urls[0].starts_with("https://files.pythonhosted.org/"));
}
