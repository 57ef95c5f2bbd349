//! Run pages, the gallery and the result pages, opened in a real headless Chromium from file://:
//! what a person would see (the prompt as text, the frames, one plot point per logged step, the
//! image's pixels in a screenshot), no console messages, and hostile prompts shown, never run.
//! `.ci/run` installs Debian's chromium and sets VQCLIP_REQUIRE_CHROMIUM=1; elsewhere, without a
//! Chromium, the browser checks say clearly that they checked nothing.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::{CLIP, stderr, tmp_dir, vqclip};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOSTILE: &str = "<script>alert(1)</script> \"quoted\" & ampersand";

/// Runs the binary and asserts that it succeeded (naming the arguments if not).
fn run_ok(args: &[&str]) -> Output {
    let o = common::run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

/// A fast_pixel run on the tiny CLIP (48x32, a frame every 5 steps).
fn run(prompt: &str, out: &Path, extra: &[&str]) {
    let mut a = vec![
        "generate",
        prompt,
        "--drawer",
        "fast_pixel",
        "--clip",
        CLIP,
        "--size",
        "48x32",
        "--cutouts",
        "4",
        "--device",
        "cpu",
        "--quiet",
        "--save-every",
        "5",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    run_ok(&a);
}

fn chromium() -> Option<PathBuf> {
    let found = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("VQCLIP_REQUIRE_CHROMIUM").is_err(),
            "VQCLIP_REQUIRE_CHROMIUM is set but no chromium is on PATH"
        );
        eprintln!(
            "pages: no headless Chromium on PATH: the browser checks of this test checked NOTHING"
        );
    }
    found
}

/// What Chromium made of `page`: the DOM after scripts ran, the console messages, a screenshot.
struct Seen {
    dom: String,
    console: Vec<String>,
    shot: image::RgbImage,
}

fn open(browser: &Path, page: &Path, name: &str) -> Seen {
    let url = format!("file://{}", std::fs::canonicalize(page).unwrap().display());
    let profile = tmp_dir(&format!("profile-{name}"));
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1000,1400",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    };
    let mut c = Command::new(browser);
    base(&mut c);
    let dump = c.arg("--dump-dom").arg(&url).output().unwrap();
    let shot_path = profile.join("shot.png");
    let mut c = Command::new(browser);
    base(&mut c);
    let shot = c
        .arg(format!("--screenshot={}", shot_path.display()))
        .arg(&url)
        .output()
        .unwrap();
    let console = [&dump.stderr, &shot.stderr]
        .iter()
        .flat_map(|e| {
            String::from_utf8_lossy(e)
                .lines()
                .filter(|l| l.contains(":CONSOLE"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    Seen {
        dom: String::from_utf8_lossy(&dump.stdout).into_owned(),
        console,
        shot: vqclip::image_io::load_rgb(&shot_path).unwrap(),
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_run_page_shows_the_run_and_never_runs_a_prompt() {
    let dir = tmp_dir("run");
    let run_dir = dir.join("hostile");
    let prompt = format!("{HOSTILE} | a red apple:0.5");
    run(
        &prompt,
        &run_dir,
        &["--steps", "20", "--palette", "#ff00ff", "--loss", "tv:0.1"],
    );
    let html = std::fs::read_to_string(run_dir.join("index.html")).unwrap();
    // static checks (no browser needed): escaped, finished, no refresh, relative paths only
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; ampersand")
    );
    assert!(!html.contains("<script>alert"), "raw prompt in the page");
    assert!(html.contains("finished: 20 steps"), "status");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished page must not reload"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://")
            || html.contains("http://www.w3.org/2000/svg")
    );
    assert!(html.contains("src=\"final.png\"") && html.contains("src=\"frames/000005.png\""));
    let Some(browser) = chromium() else { return };
    let seen = open(&browser, &run_dir.join("index.html"), "run");
    assert!(seen.console.is_empty(), "console: {:?}", seen.console);
    // the prompt is text in the heading, and no script element carries it
    assert!(
        seen.dom
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; \"quoted\" &amp; ampersand"),
        "{}",
        seen.dom
    );
    assert!(!seen.dom.contains("<script>alert"));
    // three saved frames (steps 5, 10, 15; step 20 is final.png) in the strip
    let strip = &seen.dom[seen.dom.find("id=\"strip\"").unwrap()..];
    assert_eq!(count(&strip[..strip.find("</div>").unwrap()], "<img"), 3);
    // one point per logged step on every series (20 steps), in both the linear and log copies
    assert_eq!(
        count(&seen.dom, "data-points=\"20\""),
        2 * 5,
        "5 series: total, 2 prompts, tv, palette"
    );
    // the screenshot shows the image: 512 CSS px wide, all palette magenta
    let magenta = seen
        .shot
        .pixels()
        .filter(|p| p[0] > 240 && p[1] < 20 && p[2] > 240)
        .count();
    let shown = 512.0 * 512.0 * 32.0 / 48.0;
    assert!(
        magenta as f64 > 0.9 * shown,
        "{magenta} magenta pixels, image area {shown}"
    );
}

#[test]
fn long_runs_are_downsampled_and_running_pages_reload() {
    use vqclip::report::run_page::{Status, write};
    let dir = tmp_dir("long");
    let mut log = String::new();
    for s in 1..=10_000 {
        log.push_str(&format!(
            "{{\"step\":{s},\"loss\":{},\"prompts\":[{}],\"image_prompts\":[],\"noise_prompts\":[],\"extra\":[],\"palette\":0.0,\"lr\":0.1,\"seconds\":0.1}}\n",
            1.0 / s as f64,
            1.0 / s as f64
        ));
    }
    std::fs::write(dir.join("log.jsonl"), log).unwrap();
    std::fs::write(
        dir.join("run.toml"),
        "prompts = [\"a long run\"]\nsteps = 20000\nseed = 1\n",
    )
    .unwrap();
    write(
        &dir,
        &Status::Running {
            step: 10_000,
            total: 20_000,
            rate: Some(12.5),
        },
    )
    .unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.len() < 400_000, "page of {} bytes", html.len());
    assert_eq!(
        count(&html, "data-points=\"2000\""),
        4,
        "2 series x (linear, log)"
    );
    assert!(html.contains("http-equiv=\"refresh\""));
    assert!(
        html.contains("running: step 10000 of 20000 (12.50 it/s, about 13 min 20 s left)"),
        "{html}"
    );
    write(
        &dir,
        &Status::Stopped {
            step: 10_000,
            total: 20_000,
        },
    )
    .unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("stopped at step 10000 of 20000") && html.contains("--resume"));
    assert!(!html.contains("http-equiv=\"refresh\""));
    let Some(browser) = chromium() else { return };
    let seen = open(&browser, &dir.join("index.html"), "long");
    assert!(seen.console.is_empty(), "console: {:?}", seen.console);
    assert_eq!(count(&seen.dom, "data-points=\"2000\""), 4);
}

#[test]
fn the_gallery_lists_runs_groups_and_broken_folders() {
    let root = tmp_dir("gallery");
    run("a red apple", &root.join("apple"), &["--steps", "5"]);
    run(
        "a blue sky",
        &root.join("sky"),
        &["--steps", "5", "--count", "2"],
    );
    run(HOSTILE, &root.join("hostile"), &["--steps", "5"]);
    // a broken folder: frames but an unreadable run.toml
    let broken = root.join("broken");
    std::fs::create_dir_all(broken.join("frames")).unwrap();
    std::fs::write(broken.join("run.toml"), "this is = not [toml").unwrap();
    std::fs::create_dir_all(root.join("not-a-run")).unwrap();
    let out = run_ok(&["gallery", root.to_str().unwrap()]);
    let page = root.join("index.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string()
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        count(&html, "<div class=\"card\""),
        4,
        "apple, sky group, hostile, broken"
    );
    assert!(
        html.contains("count: 2 runs")
            && html.contains("seed-7/index.html")
            && html.contains("seed-8/index.html")
    );
    assert!(html.contains("run.toml missing or unreadable"));
    assert!(html.contains("href=\"apple/index.html\""));
    assert!(!html.contains("<script>alert"));
    // the newest run first
    assert!(html.find("hostile/index.html").unwrap() < html.find("apple/index.html").unwrap());
    // a missing folder is a usage error
    let o = vqclip()
        .args(["gallery", root.join("nope").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let Some(browser) = chromium() else { return };
    let seen = open(&browser, &page, "gallery");
    assert!(seen.console.is_empty(), "console: {:?}", seen.console);
    assert_eq!(count(&seen.dom, "class=\"card\""), 4);
    assert!(seen.dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(seen.dom.contains("id=\"filter\""));
}

#[test]
fn classify_and_search_write_result_pages() {
    let dir = tmp_dir("results");
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for f in ["clip_input.png", "recon_input.png"] {
        std::fs::copy(Path::new("tests/fixtures").join(f), imgs.join(f)).unwrap();
    }
    let cpage = dir.join("classify.html");
    run_ok(&[
        "classify",
        imgs.join("clip_input.png").to_str().unwrap(),
        imgs.join("recon_input.png").to_str().unwrap(),
        "--labels",
        "a cat|an apple|<b>bold</b>",
        "--clip",
        CLIP,
        "--device",
        "cpu",
        "--html",
        cpage.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&cpage).unwrap();
    assert_eq!(count(&html, "class=\"card result\""), 2);
    assert_eq!(count(&html, "class=\"bar\""), 6);
    assert!(
        html.contains("&lt;b&gt;bold&lt;/b&gt;") && html.contains("src=\"imgs/clip_input.png\"")
    );
    let spage = dir.join("search.html");
    run_ok(&[
        "search",
        imgs.to_str().unwrap(),
        "--query",
        "an apple",
        "--top",
        "2",
        "--clip",
        CLIP,
        "--device",
        "cpu",
        "--html",
        spage.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&spage).unwrap();
    assert_eq!(count(&html, "class=\"card result\""), 2);
    assert!(html.contains("2 results for <b id=\"query\">an apple</b>"));
    let Some(browser) = chromium() else { return };
    for (page, name) in [(&cpage, "classify"), (&spage, "search")] {
        let seen = open(&browser, page, name);
        assert!(
            seen.console.is_empty(),
            "{name} console: {:?}",
            seen.console
        );
        // the images load: the screenshot is not only the page's background and text
        let colourful = seen
            .shot
            .pixels()
            .filter(|p| p[0].abs_diff(p[1]) > 40 || p[1].abs_diff(p[2]) > 40)
            .count();
        assert!(colourful > 5_000, "{name}: {colourful} colourful pixels");
    }
}
