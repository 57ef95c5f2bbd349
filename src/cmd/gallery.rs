//! `vqclip gallery [DIR] [--open]`.
use crate::cli::GalleryArgs;
use anyhow::Result;

pub fn run(args: &GalleryArgs) -> Result<()> {
    let page = crate::report::gallery::write(&args.dir)?;
    println!("{}", page.display());
    if args.open {
        open(&page);
    }
    Ok(())
}

/// Opens `page` with the desktop's opener; says so when there is none (not an error: the page is written).
fn open(page: &std::path::Path) {
    let opener = ["xdg-open", "open"].into_iter().find(|o| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(o).is_file()))
    });
    match opener {
        Some(o) => {
            if let Err(e) = std::process::Command::new(o)
                .arg(page)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                eprintln!(
                    "vqclip: warning: cannot run {o}: {e}; open {} yourself",
                    page.display()
                );
            }
        }
        None => eprintln!(
            "vqclip: no desktop opener (xdg-open or open) found; open {} in a browser",
            page.display()
        ),
    }
}
