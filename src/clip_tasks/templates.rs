//! Prompt templates for zero-shot classification: `{}` stands for the label.
//!
//! Source of both lists: OpenAI's `notebooks/Prompt_Engineering_for_ImageNet.ipynb`,
//! https://github.com/openai/CLIP/blob/d05afc4/notebooks/Prompt_Engineering_for_ImageNet.ipynb
//! (`imagenet_templates`, and the 7 that sequential forward selection kept, in its order; the
//! notebook reports they do a bit better than all 80, especially for the smaller models, and
//! pixray's `--labels` uses them).
use crate::error::usage;
use anyhow::Result;

/// What `{}` is replaced with.
pub const PLACEHOLDER: &str = "{}";

/// The 80 templates of CLIP's ImageNet prompt ensemble, in the notebook's order.
pub const IMAGENET: [&str; 80] = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
];

/// The 7 of [`IMAGENET`] chosen by sequential forward selection, in the order selected.
pub const IMAGENET_SELECTED: [&str; 7] = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
];

/// The names `--templates` accepts, with their lists.
pub fn named_sets() -> [(&'static str, &'static [&'static str]); 2] {
    [("imagenet", &IMAGENET), ("imagenet7", &IMAGENET_SELECTED)]
}

/// A named set (case-insensitive); an unknown name is a usage error listing the known ones.
pub fn named(name: &str) -> Result<&'static [&'static str]> {
    let wanted = name.trim().to_ascii_lowercase();
    named_sets()
        .into_iter()
        .find(|(n, _)| *n == wanted)
        .map(|(_, list)| list)
        .ok_or_else(|| {
            let names: Vec<&str> = named_sets().iter().map(|(n, _)| *n).collect();
            usage(format!(
                "--templates: unknown template set '{name}'; known sets: {}",
                names.join(", ")
            ))
        })
}

/// Checks a user template: exactly one `{}` (as Python's `str.format` with one argument needs).
pub fn check(template: &str) -> Result<()> {
    match template.matches(PLACEHOLDER).count() {
        1 => Ok(()),
        0 => Err(usage(format!(
            "--template '{template}': has no {{}} where the label goes (e.g. \"a photo of a {{}}.\")"
        ))),
        n => Err(usage(format!(
            "--template '{template}': has {n} {{}} placeholders; use exactly one"
        ))),
    }
}

/// The prompt for `label`: the template with `{}` replaced.
pub fn fill(template: &str, label: &str) -> String {
    template.replacen(PLACEHOLDER, label, 1)
}

/// The templates to use: the `--template`s given, then the named set's, each once, in order.
/// Empty means "labels as given".
pub fn resolve(given: &[String], set: Option<&str>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in given {
        check(t)?;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    if let Some(name) = set {
        for t in named(name)? {
            if !out.iter().any(|o| o == t) {
                out.push((*t).to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_well_formed() {
        for (_, list) in named_sets() {
            for t in list {
                check(t).unwrap();
            }
        }
        for t in IMAGENET_SELECTED {
            assert!(IMAGENET.contains(&t), "{t}");
        }
        let mut sorted = IMAGENET.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 80);
    }

    #[test]
    fn resolve_checks_and_deduplicates() {
        let given = vec!["a {}".to_string(), "a {}".to_string()];
        assert_eq!(resolve(&given, None).unwrap(), vec!["a {}"]);
        assert_eq!(resolve(&[], Some("ImageNet7")).unwrap().len(), 7);
        assert_eq!(resolve(&given, Some("imagenet")).unwrap().len(), 81);
        for bad in ["no placeholder", "{} and {}"] {
            let err = resolve(&[bad.to_string()], None).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2);
        }
        let err = resolve(&[], Some("cifar")).unwrap_err();
        assert!(err.to_string().contains("imagenet, imagenet7"), "{err}");
        assert_eq!(fill("a photo of a {}.", "cat"), "a photo of a cat.");
    }
}
