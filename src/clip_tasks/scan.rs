//! Finding the images under a folder: recursive, by extension, sorted, with each file's size and
//! mtime (what the index keys on). Symlinked files are followed, symlinked folders are not (no
//! cycles), and the index folder itself is skipped.
use super::index::INDEX_DIR;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// File extensions searched, compared case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tiff"];

/// An image file found under the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the searched folder.
    pub rel: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
}

/// Everything under the folder: the images, and what could not be looked at.
#[derive(Debug, Default)]
pub struct Scan {
    /// Sorted by relative path.
    pub images: Vec<Found>,
    /// Folders that could not be listed and image files whose metadata could not be read.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Whether `path` has one of [`IMAGE_EXTENSIONS`].
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// `t` as nanoseconds since the Unix epoch, saturating outside ±292 years.
pub fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// Walks `dir` recursively. A `dir` that is not a readable folder is an error; anything below
/// it that cannot be read is listed in [`Scan::unreadable`].
pub fn scan(dir: &Path) -> Result<Scan> {
    let meta =
        std::fs::metadata(dir).with_context(|| format!("cannot open folder {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    std::fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))?;
    let mut out = Scan::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let abs = dir.join(&rel_dir);
        let entries = match std::fs::read_dir(&abs) {
            Ok(e) => e,
            Err(e) => {
                out.unreadable
                    .push((abs, format!("cannot list folder: {e}")));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.unreadable
                        .push((abs.clone(), format!("cannot list folder: {e}")));
                    continue;
                }
            };
            let rel = rel_dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                out.unreadable
                    .push((dir.join(&rel), "cannot read file type".into()));
                continue;
            };
            if kind.is_dir() {
                if !(rel_dir.as_os_str().is_empty() && entry.file_name() == INDEX_DIR) {
                    stack.push(rel);
                }
                continue;
            }
            if !is_image_path(&rel) {
                continue;
            }
            // follows a symlink to its file; a symlink to a folder is not walked
            match std::fs::metadata(dir.join(&rel)) {
                Ok(m) if m.is_file() => out.images.push(Found {
                    rel,
                    size: m.len(),
                    mtime_ns: m.modified().map_or(0, unix_nanos),
                }),
                Ok(_) => {}
                Err(e) => out.unreadable.push((dir.join(&rel), e.to_string())),
            }
        }
    }
    out.images.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_case_insensitive() {
        assert!(is_image_path(Path::new("a/b.PNG")));
        assert!(is_image_path(Path::new("x.tiff")));
        assert!(!is_image_path(Path::new("x.tif.txt")));
        assert!(!is_image_path(Path::new("png")));
    }

    #[test]
    fn nanos_before_and_after_the_epoch() {
        let d = std::time::Duration::from_nanos(1_500);
        assert_eq!(unix_nanos(UNIX_EPOCH + d), 1_500);
        assert_eq!(unix_nanos(UNIX_EPOCH - d), -1_500);
    }
}
