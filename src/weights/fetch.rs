//! Downloading the registry's files: sources tried in order, `NAME.part` resumed with HTTP Range,
//! HTML and error pages rejected by their first bytes, size and sha256 (or, without a published
//! checksum, loading) checked before the file is renamed into place.
use super::convert;
use super::registry::{self, FileEntry, ModelEntry, ModelKind};
use super::verify::{self, HEAD_LEN, human_bytes, quote_name};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many times in a row one source is resumed without getting further.
const MAX_RESUMES: usize = 5;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// No progress bar and no notices (errors still come back).
    pub quiet: bool,
    /// Try the safetensors mirror before the official checkpoint.
    pub prefer_safetensors: bool,
    /// Write the fast-load `.safetensors` cache after fetching an official checkpoint.
    pub convert: bool,
    /// Per-host limit for name resolution and for connecting: no network fails within seconds.
    pub connect_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            quiet: false,
            prefer_safetensors: false,
            convert: true,
            connect_timeout: Duration::from_secs(8),
        }
    }
}

/// Why every source of a file failed, with the manual steps. Displayed as one line.
#[derive(Debug)]
pub struct DownloadError {
    /// The model (for the `verify` hint), if known.
    pub model: Option<String>,
    /// Each file that could not be downloaded, with the reason per source.
    pub files: Vec<FileFailure>,
    /// Files still missing that the manual steps should name too (a model's yaml).
    pub also_needed: Vec<(String, PathBuf)>,
}

#[derive(Debug)]
pub struct FileFailure {
    pub name: String,
    pub dest: PathBuf,
    pub first_url: String,
    /// (url, reason, whether the failure was at the network level: no DNS, refused, timed out)
    pub sources: Vec<(String, String, bool)>,
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.model {
            Some(m) => m.clone(),
            None => self
                .files
                .first()
                .map(|x| x.name.clone())
                .unwrap_or_default(),
        };
        let all_network = self
            .files
            .iter()
            .all(|x| !x.sources.is_empty() && x.sources.iter().all(|s| s.2));
        write!(f, "cannot download {what}")?;
        if all_network {
            write!(f, " (no network connection?)")?;
        }
        let parts: Vec<String> = self
            .files
            .iter()
            .map(|file| {
                if file.sources.is_empty() {
                    return format!("{} has no download source", file.name);
                }
                // Sources that failed the same way are named together: "a, b: host not found".
                let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
                for (url, why, _) in &file.sources {
                    let host = host_of(url);
                    match groups.iter_mut().find(|g| &g.0 == why) {
                        Some(g) if !g.1.contains(&host) => g.1.push(host),
                        Some(_) => {}
                        None => groups.push((why.clone(), vec![host])),
                    }
                }
                let tried: Vec<String> = groups
                    .iter()
                    .map(|(why, hosts)| format!("{}: {why}", hosts.join(", ")))
                    .collect();
                format!("{} from {}", file.name, tried.join("; "))
            })
            .collect();
        write!(f, ": {}", parts.join("; "))?;
        let mut steps: Vec<String> = self
            .files
            .iter()
            .filter(|x| !x.first_url.is_empty())
            .map(|x| format!("{} and save it as {}", x.first_url, x.dest.display()))
            .collect();
        // Only the first choice of interchangeable files is needed (official checkpoint or its mirror).
        steps.truncate(1);
        steps.extend(
            self.also_needed
                .iter()
                .map(|(url, dest)| format!("{url} and save it as {}", dest.display())),
        );
        if !steps.is_empty() {
            write!(
                f,
                ". To install it by hand, download {}",
                steps.join(", and ")
            )?;
            match &self.model {
                Some(m) => write!(f, ", then run `vqclip weights verify {}`", quote_name(m))?,
                None => write!(f, ", then run `vqclip weights verify`")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for DownloadError {}

/// `fetch` for `generate --fetch`: every missing file of `entry` into `dir`, then the fast-load cache.
/// Returns the file that loading will use.
pub fn fetch_model(entry: &ModelEntry, dir: &Path, quiet: bool) -> Result<PathBuf> {
    fetch_model_with(
        entry,
        dir,
        &FetchOptions {
            quiet,
            ..FetchOptions::default()
        },
    )
}

pub fn fetch_model_with(entry: &ModelEntry, dir: &Path, opts: &FetchOptions) -> Result<PathBuf> {
    if entry.bundled {
        // Shipped with vqclip: nothing to download, only to find.
        let p = registry::find_present(entry, dir)
            .ok_or_else(|| registry::missing_error(entry, dir))?;
        note(
            opts,
            &format!("{} ships with vqclip: {}", entry.name, p.display()),
        );
        return Ok(p);
    }
    let main = entry
        .file
        .first()
        .with_context(|| format!("registry entry {} lists no files", entry.name))?;
    let agent = make_agent(opts);
    // The checkpoint: the official file or any of its safetensors mirrors, in the preferred order.
    let mut choices: Vec<&FileEntry> = Vec::new();
    if opts.prefer_safetensors {
        choices.extend(entry.alt.iter());
        choices.push(main);
    } else {
        choices.push(main);
        choices.extend(entry.alt.iter());
    }
    if opts.prefer_safetensors && entry.alt.is_empty() && !opts.quiet {
        eprintln!(
            "{} has no safetensors mirror: fetching {} and converting it",
            entry.name, main.name
        );
    }
    let configs: Vec<&FileEntry> = entry.file.iter().skip(1).collect();
    let missing_configs = |dir: &Path| -> Vec<(String, PathBuf)> {
        configs
            .iter()
            .filter(|f| !dir.join(&f.name).is_file())
            .map(|f| {
                (
                    f.urls.first().cloned().unwrap_or_default(),
                    dir.join(&f.name),
                )
            })
            .collect()
    };

    if let Some(p) = registry::find_present(entry, dir) {
        note(
            opts,
            &format!(
                "{} is already present (check it with `vqclip weights verify {}`)",
                p.display(),
                quote_name(&entry.name)
            ),
        );
    } else {
        let mut failures = Vec::new();
        let mut done = false;
        for (i, f) in choices.iter().enumerate() {
            match fetch_file_inner(&agent, f, Some(entry.kind), dir, opts) {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(Failed::Sources(ff)) => {
                    if let Some(next) = choices.get(i + 1) {
                        note(
                            opts,
                            &format!("{} is unavailable; trying {} instead", f.name, next.name),
                        );
                    }
                    failures.push(ff);
                }
                Err(Failed::Local(e)) => return Err(e),
            }
        }
        if !done {
            return Err(DownloadError {
                model: Some(entry.name.clone()),
                files: failures,
                also_needed: missing_configs(dir),
            }
            .into());
        }
    }
    for f in &configs {
        if dir.join(&f.name).is_file() {
            continue;
        }
        match fetch_file_inner(&agent, f, None, dir, opts) {
            Ok(_) => {}
            Err(Failed::Sources(ff)) => {
                return Err(DownloadError {
                    model: Some(entry.name.clone()),
                    files: vec![ff],
                    also_needed: Vec::new(),
                }
                .into());
            }
            Err(Failed::Local(e)) => return Err(e),
        }
    }
    let official = dir.join(&main.name);
    if opts.convert && official.is_file() {
        auto_convert(entry, &official, opts);
    }
    registry::find_present(entry, dir).with_context(|| {
        format!(
            "{} was downloaded but no loadable file was found in {}",
            entry.name,
            dir.display()
        )
    })
}

/// After a fetch: write the fast-load cache unless a file of that name is already there
/// (it may be the user's own download; `convert --force` replaces it).
fn auto_convert(entry: &ModelEntry, official: &Path, opts: &FetchOptions) {
    if !official.is_file() || convert::is_safetensors(official) {
        return;
    }
    let out = convert::default_output(official);
    if out.exists() {
        if is_older(&out, official) {
            note(
                opts,
                &format!(
                    "kept {} (older than {}, so that one is loaded); rebuild the fast-load cache with `vqclip weights convert {} --force`",
                    out.display(),
                    official.display(),
                    quote_name(&entry.name)
                ),
            );
        }
        return;
    }
    note(
        opts,
        &format!("writing the fast-load cache {}", out.display()),
    );
    match convert::convert_file(official, Some(entry.kind), &out, false) {
        Ok(r) => note(opts, &convert::summary(&r)),
        Err(e) => {
            if !opts.quiet {
                eprintln!("vqclip: warning: could not write the fast-load cache: {e:#}");
            }
        }
    }
}

fn is_older(a: &Path, b: &Path) -> bool {
    let t = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((t(a), t(b)), (Some(x), Some(y)) if x < y)
}

/// Downloads one file into `dir` (skipping nothing: the caller decides whether it is needed).
/// `kind`, when given, makes a checkpoint without a published sha256 prove itself by loading.
/// Every failure of every source is reported in one [`DownloadError`].
pub fn fetch_file(
    file: &FileEntry,
    kind: Option<ModelKind>,
    dir: &Path,
    opts: &FetchOptions,
) -> Result<PathBuf> {
    let agent = make_agent(opts);
    match fetch_file_inner(&agent, file, kind, dir, opts) {
        Ok(p) => Ok(p),
        Err(Failed::Sources(ff)) => Err(DownloadError {
            model: None,
            files: vec![ff],
            also_needed: Vec::new(),
        }
        .into()),
        Err(Failed::Local(e)) => Err(e),
    }
}

/// The URLs to try for `file`: `$VQCLIP_MIRROR/<file name>` first when that is set (a local or
/// institutional mirror, for machines that cannot reach the publishers), then the registry's.
fn source_urls(file: &FileEntry) -> Vec<String> {
    let mut urls = Vec::new();
    if let Ok(m) = std::env::var("VQCLIP_MIRROR")
        && !m.trim().is_empty()
    {
        urls.push(format!("{}/{}", m.trim().trim_end_matches('/'), file.name));
    }
    urls.extend(file.urls.iter().cloned());
    urls
}

enum Failed {
    /// Every source failed (network, HTTP, wrong content): try another file or give the manual steps.
    Sources(FileFailure),
    /// A local problem (disk full, permissions): no other source can help.
    Local(anyhow::Error),
}

/// Outcome of one request to one source.
enum Attempt {
    Done,
    /// The connection dropped after some bytes arrived: resume from the same source.
    Resume(String),
    /// This source is no good (the bool: a network-level failure).
    NextSource(String, bool),
}

fn make_agent(opts: &FetchOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_resolve(Some(opts.connect_timeout))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .user_agent(format!("vqclip/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

struct Paths {
    dest: PathBuf,
    part: PathBuf,
    /// The URL the `.part` came from: resuming from another source could splice two different files.
    source: PathBuf,
    lock: PathBuf,
}

fn fetch_file_inner(
    agent: &ureq::Agent,
    file: &FileEntry,
    kind: Option<ModelKind>,
    dir: &Path,
    opts: &FetchOptions,
) -> std::result::Result<PathBuf, Failed> {
    if file.name.is_empty() || file.name.contains(['/', '\\']) || file.name.starts_with('.') {
        return Err(Failed::Local(anyhow::anyhow!(
            "registry file name '{}' is not a plain file name",
            file.name
        )));
    }
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the weights directory {}", dir.display()))
        .map_err(Failed::Local)?;
    let paths = Paths {
        dest: dir.join(&file.name),
        part: dir.join(format!("{}.part", file.name)),
        source: dir.join(format!("{}.part.url", file.name)),
        lock: dir.join(format!("{}.lock", file.name)),
    };
    // Two processes appending to one .part would corrupt it; the OS drops the lock if we die.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .with_context(|| format!("cannot create {}", paths.lock.display()))
        .map_err(Failed::Local)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Failed::Local(anyhow::anyhow!(
                "another vqclip is downloading {} into {}; wait for it to finish",
                file.name,
                dir.display()
            )));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(Failed::Local(
                anyhow::Error::new(e).context(format!("cannot lock {}", paths.lock.display())),
            ));
        }
    }
    let result = fetch_locked(agent, file, kind, &paths, opts);
    drop(lock);
    let _ = fs::remove_file(&paths.lock);
    result
}

fn fetch_locked(
    agent: &ureq::Agent,
    file: &FileEntry,
    kind: Option<ModelKind>,
    paths: &Paths,
    opts: &FetchOptions,
) -> std::result::Result<PathBuf, Failed> {
    let mut sources = Vec::new();
    for url in &source_urls(file) {
        // Resumes in a row that did not get further than before: a flaky link that keeps moving
        // forward is followed to the end, a source that keeps failing at one point is given up.
        let mut resumes = 0;
        let mut furthest = 0;
        loop {
            match attempt(agent, url, file, kind, paths, opts).map_err(Failed::Local)? {
                Attempt::Done => {
                    fs::rename(&paths.part, &paths.dest)
                        .with_context(|| {
                            format!(
                                "cannot rename {} to {}",
                                paths.part.display(),
                                paths.dest.display()
                            )
                        })
                        .map_err(Failed::Local)?;
                    let _ = fs::remove_file(&paths.source);
                    note(opts, &format!("saved {}", paths.dest.display()));
                    return Ok(paths.dest.clone());
                }
                Attempt::Resume(why) if resumes < MAX_RESUMES => {
                    let have = fs::metadata(&paths.part).map(|m| m.len()).unwrap_or(0);
                    if have > furthest {
                        furthest = have;
                        resumes = 0;
                    } else {
                        resumes += 1;
                    }
                    note(opts, &format!("{why}; resuming"));
                }
                Attempt::Resume(why) => {
                    note(
                        opts,
                        &format!("{}: {why}; giving up on this source", host_of(url)),
                    );
                    sources.push((url.clone(), why, false));
                    break;
                }
                Attempt::NextSource(why, network) => {
                    if !opts.quiet {
                        eprintln!("vqclip: {} from {}: {why}", file.name, host_of(url));
                    }
                    sources.push((url.clone(), why, network));
                    break;
                }
            }
        }
    }
    Err(Failed::Sources(FileFailure {
        name: file.name.clone(),
        dest: paths.dest.clone(),
        first_url: file.urls.first().cloned().unwrap_or_default(),
        sources,
    }))
}

/// Drops a partial download and its source note.
fn discard(paths: &Paths) {
    let _ = fs::remove_file(&paths.part);
    let _ = fs::remove_file(&paths.source);
}

/// One request: resume or start `.part`, stream it, then check it. `Err` is a local failure only.
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    file: &FileEntry,
    kind: Option<ModelKind>,
    paths: &Paths,
    opts: &FetchOptions,
) -> Result<Attempt> {
    let same_source = fs::read_to_string(&paths.source)
        .map(|s| s.trim() == url)
        .unwrap_or(false);
    let mut offset = match fs::metadata(&paths.part) {
        Ok(m) if same_source => m.len(),
        _ => 0,
    };
    // A member file's size is the member's, not the archive's download.
    let size = file.size.filter(|_| file.member.is_none());
    if offset > 0 && size.is_some_and(|s| offset > s) {
        discard(paths);
        offset = 0;
    }
    if offset > 0 && size == Some(offset) {
        // Complete already (a previous run stopped before checking it).
        return finish(file, kind, paths, opts);
    }
    if offset > 0 {
        // The part we keep must itself look right, or resuming only extends garbage.
        let head = verify::read_head(&paths.part)?;
        if verify::check_head(&file.name, &head).is_err() {
            discard(paths);
            offset = 0;
        }
    }

    let mut req = agent.get(url);
    if offset > 0 {
        req = req.header("Range", format!("bytes={offset}-"));
    }
    if !opts.quiet {
        if offset > 0 {
            eprintln!(
                "resuming {} from {} at {}",
                file.name,
                host_of(url),
                human_bytes(offset)
            );
        } else {
            eprintln!("downloading {} from {}", file.name, host_of(url));
        }
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(e) => {
            let (why, network) = describe_error(&e);
            return Ok(Attempt::NextSource(why, network));
        }
    };
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string())
    };
    let content_type = header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let content_range = header("content-range");

    let (start, total) = match status.as_u16() {
        206 => match content_range.as_deref().and_then(parse_content_range) {
            Some((first, total)) if first == offset => (offset, total),
            _ => {
                discard(paths);
                return Ok(Attempt::Resume(
                    "the server answered the resume request with another range".into(),
                ));
            }
        },
        200 => {
            if offset > 0 {
                note(
                    opts,
                    &format!("{} does not resume downloads; starting over", host_of(url)),
                );
            }
            (0, content_length)
        }
        416 if offset > 0 => {
            // Nothing after `offset`: either the part is complete or it is not this file.
            let total = content_range
                .as_deref()
                .and_then(|v| v.rsplit('/').next()?.trim().parse::<u64>().ok());
            if total == Some(offset) {
                return finish(file, kind, paths, opts);
            }
            discard(paths);
            return Ok(Attempt::Resume(
                "the partial download does not fit this source; starting over".into(),
            ));
        }
        code => {
            let reason = status.canonical_reason().unwrap_or("");
            return Ok(Attempt::NextSource(
                format!("HTTP {code} {reason}").trim_end().to_string(),
                false,
            ));
        }
    };
    if content_type.starts_with("text/html") || content_type.starts_with("application/xhtml") {
        return Ok(Attempt::NextSource(
            "it serves an HTML page instead of the file (a dead link or an error page)".into(),
            false,
        ));
    }
    let total = total.or(content_length.map(|n| n + start));
    if let Some(t) = total
        && file.member.is_none()
        && let Err(why) = verify::plausible_size(file, t)
    {
        return Ok(Attempt::NextSource(
            format!("it serves the wrong file: {why}"),
            false,
        ));
    }

    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 18];
    // The first bytes of a new download decide whether this is the file at all, before anything is written.
    let mut filled = 0;
    if start == 0 {
        while filled < HEAD_LEN {
            match body.read(&mut buf[filled..HEAD_LEN]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    return Ok(Attempt::NextSource(
                        format!("connection lost: {}", io_why(&e)),
                        false,
                    ));
                }
            }
        }
        if let Err(why) = verify::check_head(&file.name, &buf[..filled]) {
            return Ok(Attempt::NextSource(format!("wrong content: {why}"), false));
        }
    }

    let mut out = if start == 0 {
        fs::write(&paths.source, url)
            .with_context(|| format!("cannot write {}", paths.source.display()))?;
        File::create(&paths.part)
            .with_context(|| format!("cannot create {}", paths.part.display()))?
    } else {
        OpenOptions::new()
            .append(true)
            .open(&paths.part)
            .with_context(|| format!("cannot open {}", paths.part.display()))?
    };
    let pb = progress_bar(opts, &file.name, total, start);
    let mut received: u64 = 0;
    let mut pending = filled;
    let cut = loop {
        if pending > 0 {
            out.write_all(&buf[..pending])
                .with_context(|| format!("cannot write {}", paths.part.display()))?;
            received += pending as u64;
            pb.inc(pending as u64);
        }
        match body.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => pending = n,
            Err(e) => break Some(io_why(&e)),
        }
    };
    out.flush()
        .with_context(|| format!("cannot write {}", paths.part.display()))?;
    out.sync_all()
        .with_context(|| format!("cannot write {}", paths.part.display()))?;
    drop(out);
    pb.finish_and_clear();
    let have = start + received;
    let short = total.is_some_and(|t| have < t);
    if let Some(why) = cut.or_else(|| short.then(|| "the connection closed early".to_string())) {
        let msg = format!("connection lost after {}: {why}", human_bytes(have));
        return Ok(if received > 0 {
            Attempt::Resume(msg)
        } else {
            Attempt::NextSource(msg, false)
        });
    }
    finish(file, kind, paths, opts)
}

/// Checks a complete `.part`: content, size, sha256 (or loading when none is published).
/// A bad part is removed so the next source starts clean.
fn finish(
    file: &FileEntry,
    kind: Option<ModelKind>,
    paths: &Paths,
    opts: &FetchOptions,
) -> Result<Attempt> {
    let bad = |why: String| -> Result<Attempt> {
        discard(paths);
        Ok(Attempt::NextSource(why, false))
    };
    if let Some(member) = &file.member
        && let Err(why) = unpack(file, member, paths, opts)?
    {
        return bad(why);
    }
    let head = verify::read_head(&paths.part)?;
    if let Err(why) = verify::check_head(&file.name, &head) {
        return bad(format!("wrong content: {why}"));
    }
    let len = fs::metadata(&paths.part)
        .with_context(|| format!("cannot stat {}", paths.part.display()))?
        .len();
    if let Err(why) = verify::plausible_size(file, len) {
        return bad(format!("wrong file: {why}"));
    }
    if let Some(want) = &file.sha256 {
        let spinner = spinner(opts, &format!("checking the sha256 of {}", file.name));
        let got = verify::sha256_file(&paths.part)?;
        spinner.finish_and_clear();
        if !got.eq_ignore_ascii_case(want) {
            return bad(format!(
                "sha256 mismatch: got {got}, expected {want}; the partial file was removed"
            ));
        }
    } else if let Some(kind) = kind
        && verify::expect_for(&file.name) == verify::Expect::Checkpoint
        && let Err(e) = verify::check_kind_light(&paths.part, kind)
    {
        return bad(format!(
            "it does not open as a {} checkpoint: {e:#}",
            kind.as_str()
        ));
    } else if verify::expect_for(&file.name) == verify::Expect::Yaml
        && let Err(e) = verify::check_yaml(&paths.part)
    {
        return bad(format!("{e:#}"));
    }
    Ok(Attempt::Done)
}

/// A `member` file: the downloaded `.part` is a zip archive (checked against `archive_sha256`);
/// its member replaces it, to be checked as the file itself. `Ok(Err(why))`: the archive is wrong.
fn unpack(
    file: &FileEntry,
    member: &str,
    paths: &Paths,
    opts: &FetchOptions,
) -> Result<std::result::Result<(), String>> {
    if let Some(want) = &file.archive_sha256 {
        let spinner = spinner(
            opts,
            &format!("checking the sha256 of {}'s archive", file.name),
        );
        let got = verify::sha256_file(&paths.part)?;
        spinner.finish_and_clear();
        if !got.eq_ignore_ascii_case(want) {
            return Ok(Err(format!(
                "archive sha256 mismatch: got {got}, expected {want}; the partial file was removed"
            )));
        }
    }
    let archive =
        File::open(&paths.part).with_context(|| format!("cannot open {}", paths.part.display()))?;
    let mut zip = match zip::ZipArchive::new(archive) {
        Ok(z) => z,
        Err(e) => {
            return Ok(Err(format!(
                "it is not a zip archive holding {member}: {e}"
            )));
        }
    };
    let mut entry = match zip.by_name(member) {
        Ok(e) => e,
        Err(_) => return Ok(Err(format!("the archive holds no {member}"))),
    };
    // Never unpack more than the file can be (a hostile archive could expand without end).
    let limit = file
        .size
        .unwrap_or_else(|| (file.approx_mb.max(1) * 1_000_000) * 5 / 2);
    if entry.size() > limit {
        return Ok(Err(format!(
            "its {member} is {} bytes, more than the {limit} expected",
            entry.size()
        )));
    }
    let tmp = paths.part.with_extension("part.member");
    let mut out = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let copied = std::io::copy(&mut (&mut entry).take(limit + 1), &mut out)
        .with_context(|| format!("cannot unpack {member} into {}", tmp.display()))?;
    drop(out);
    if copied > limit {
        let _ = fs::remove_file(&tmp);
        return Ok(Err(format!(
            "its {member} unpacks to more than {limit} bytes"
        )));
    }
    // The source note goes first: a .part without it is never resumed from the archive's URL.
    let _ = fs::remove_file(&paths.source);
    fs::rename(&tmp, &paths.part).with_context(|| {
        format!(
            "cannot rename {} to {}",
            tmp.display(),
            paths.part.display()
        )
    })?;
    note(
        opts,
        &format!("unpacked {member} ({})", human_bytes(copied)),
    );
    Ok(Ok(()))
}

/// `bytes 100-199/200` -> (100, Some(200)); `bytes 100-199/*` -> (100, None).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, _) = range.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first, total))
}

/// A one-line reason and whether it is a network-level failure (nothing reached a server).
fn describe_error(e: &ureq::Error) -> (String, bool) {
    match e {
        ureq::Error::HostNotFound => ("host not found".into(), true),
        ureq::Error::ConnectionFailed => ("connection failed".into(), true),
        ureq::Error::Timeout(t) => (format!("timed out ({t})"), true),
        ureq::Error::Io(io) => {
            use std::io::ErrorKind::*;
            let network = matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
                    | NetworkDown
                    | AddrNotAvailable
            );
            // The system resolver's failure comes as a plain I/O error.
            if io.to_string().contains("lookup address") {
                return ("host not found".into(), true);
            }
            (io_why(io), network)
        }
        other => (other.to_string(), false),
    }
}

fn io_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// `https://host:port/path` -> `host:port`.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

fn note(opts: &FetchOptions, msg: &str) {
    if !opts.quiet {
        eprintln!("{msg}");
    }
}

const BAR: &str = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}";
const SPINNER: &str = "{msg} {spinner} {bytes} {bytes_per_sec}";

fn progress_bar(opts: &FetchOptions, name: &str, total: Option<u64>, start: u64) -> ProgressBar {
    if opts.quiet {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() { BAR } else { SPINNER };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(name.to_string());
    pb.set_position(start);
    // Rate and ETA count only this session's bytes, not the resumed part.
    pb.reset_eta();
    pb
}

fn spinner(opts: &FetchOptions, msg: &str) -> ProgressBar {
    if opts.quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} {spinner}") {
        pb.set_style(style);
    }
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_templates_parse() {
        for t in [BAR, SPINNER, "{msg} {spinner}"] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
