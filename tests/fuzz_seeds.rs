//! Replays the fuzz seeds (fuzz/seeds/<target>/*) through the same readers as the cargo-fuzz targets, on
//! stable Rust: each must end in a value or an error, never a panic. The seeds that are valid files must
//! also be read without error (so a reader that starts refusing good input is caught here too).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod common;

use common::ROOT;
use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join("fuzz/seeds").join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

#[test]
fn weight_readers_read_their_seeds() {
    use vqclip::weights::{pickle, safetensors_file, torch_file};
    for p in seeds("torch_zip") {
        let m = torch_file::read_zip(&p, &|_| true)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(!m.is_empty(), "{}", p.display());
    }
    for p in seeds("torch_legacy") {
        let m = torch_file::read_legacy(&p, &|_| true)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(!m.is_empty(), "{}", p.display());
    }
    for p in seeds("safetensors") {
        let m = safetensors_file::read(&p, &|_| true)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(m.len() >= 8, "{}", p.display());
    }
    for p in seeds("pickle") {
        let bytes = std::fs::read(&p).unwrap();
        pickle::load(&bytes, 0).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    // Protocol 0 writes 10**30 as a decimal LONG line, protocol 2 as LONG1 bytes: the same value.
    let big = |name: &str| {
        let bytes = std::fs::read(Path::new(ROOT).join("fuzz/seeds/pickle").join(name)).unwrap();
        let loaded = pickle::load(&bytes, 0).unwrap();
        let Some(pickle::Value::List(items)) = loaded.value.get("a") else {
            panic!("{name}: no list a")
        };
        let items = items.0.borrow();
        match &items[7] {
            pickle::Value::BigInt(b) => b.to_vec(),
            other => panic!("{name}: {}", other.type_name()),
        }
    };
    assert_eq!(big("plain_p0"), big("plain_p2"));
    assert_eq!(big("plain_p2").len(), 13);
    for p in seeds("clip_torchscript") {
        let c = vqclip::models::clip::Clip::load(&p, tch::Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert_eq!(c.config().vocab_size, 300, "{}", p.display());
    }
}

#[test]
fn text_and_image_readers_read_their_seeds() {
    for p in seeds("vqgan_yaml") {
        let text = std::fs::read_to_string(&p).unwrap();
        vqclip::models::vqgan::VqganConfig::from_yaml_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
    }
    for p in seeds("settings_toml")
        .into_iter()
        .filter(|p| p.ends_with("config.toml"))
        .chain(seeds("png_config"))
    {
        let s =
            vqclip::runplan::read_config(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(s.prompts.is_some(), "{}", p.display());
    }
    for p in seeds("image_decode") {
        vqclip::image_io::load_rgb(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
    }
    let story = std::fs::read_to_string(&seeds("prompts")[1]).unwrap();
    assert_eq!(
        vqclip::settings::Prompt::parse_list(&story).unwrap().len(),
        3
    );
    let palette = std::fs::read_to_string(&seeds("prompts")[0]).unwrap();
    assert_eq!(vqclip::palette::parse(&palette).unwrap().len(), 4);
    for p in seeds("registry_toml") {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(vqclip::weights::registry::parse(&text).unwrap().len() >= 9);
    }
    for p in seeds("search_index") {
        let bytes = std::fs::read(&p).unwrap();
        let idx = vqclip::clip_tasks::index::Index::parse(&bytes, "fuzz-model", 4)
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert_eq!(idx.entries.len(), 2);
    }
}
