//! Resolving a merged layer into `Settings`: each setting by its declaration, then the rules
//! that join settings; and what the resolved settings answer about a run.
use super::{
    Colour, DrawerKind, FilterKind, InitKind, LossKind, Move, Owner, PartialSettings, Prompt,
    Settings, SmoothnessType, StyleSpace, WallpaperType,
};
use super::{DECLARATIONS, prompts::check_prompt_limits};
use crate::error::usage;
use anyhow::{Context, Result};
use std::path::Path;

impl PartialSettings {
    /// Parses a TOML settings file (`--config`); unknown keys name the key and the file.
    pub fn from_toml(text: &str, origin: &Path) -> Result<PartialSettings> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            usage(format!(
                "{}: {}",
                origin.display(),
                unknown_key_message(&message).unwrap_or(message)
            ))
        })
    }

    /// Resolves and validates: every missing key takes its default, every value is checked once.
    /// A missing seed is drawn at random here (and then recorded).
    pub fn resolve(&self) -> Result<Settings> {
        let s = PartialSettings::resolve_fields(self)?;
        s.check_together(self)?;
        Ok(s)
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`, …" (every key, a hundred of them) as
/// one short line with the nearest key.
fn unknown_key_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let nearest = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    let hint = match nearest {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    };
    Some(format!(
        "unknown setting `{key}`{hint}; the keys are the long flags of `vqclip generate --help` without the --"
    ))
}

/// Levenshtein distance (short ASCII keys).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl Settings {
    /// The rules that join settings (each setting's own check is in its declaration).
    fn check_together(&self, layer: &PartialSettings) -> Result<()> {
        if self.change_prompt_every > 0 && self.prompts.iter().all(|p| p.phase == 0) {
            return Err(usage(
                "--change-prompt-every needs story phases: separate the prompts of each phase with ^ \
                 (e.g. \"a forest ^ a city\")",
            ));
        }
        if self.drawer == DrawerKind::Vqgan
            && (self.size.width % 16 != 0 || self.size.height % 16 != 0)
        {
            return Err(usage(format!(
                "--size {}: the vqgan drawer needs both sides multiples of 16 (its latent grid); \
                 e.g. --size {}x{}, or another --drawer",
                self.size,
                (self.size.width + 8) / 16 * 16,
                (self.size.height + 8) / 16 * 16
            )));
        }
        if self.init == InitKind::Codes && self.drawer != DrawerKind::Vqgan {
            return Err(usage(format!(
                "--init codes picks random VQGAN codebook entries; with --drawer {} use random (the default), perlin, gradient or snow",
                self.drawer
            )));
        }
        if matches!(self.drawer, DrawerKind::Clipdraw | DrawerKind::LineSketch) {
            if self.min_stroke_width > self.max_stroke_width {
                return Err(usage(format!(
                    "--min-stroke-width {} is wider than --max-stroke-width {}",
                    self.min_stroke_width, self.max_stroke_width
                )));
            }
            if self.zoom_every > 0 {
                return Err(usage(format!(
                    "--zoom-every: --drawer {} cannot zoom (its strokes are not an image to enlarge); use pixel, fast-pixel, fft or vqgan",
                    self.drawer
                )));
            }
        }
        if self.spot_file.is_some() && self.spot.is_empty() && self.spot_off.is_empty() {
            return Err(usage(
                "--spot-file names the mask of --spot and --spot-off prompts: add one of them",
            ));
        }
        if self
            .spot
            .iter()
            .chain(&self.spot_off)
            .chain(&self.labels)
            .any(|p| p.phase != 0)
        {
            return Err(usage(
                "--spot, --spot-off and --label take one prompt each (no ^ story phases): repeat the flag",
            ));
        }
        if self.init_weight_pix > 0.0 && self.init_image.is_none() {
            return Err(usage(
                "--init-weight-pix pulls the picture toward --init-image: add one",
            ));
        }
        if let Some(a) = self.overlay_alpha
            && !(0..=255).contains(&a)
        {
            return Err(usage(format!(
                "--overlay-alpha: invalid value {a}: must be from 0 to 255"
            )));
        }
        if let Some(n) = self.overlay_until
            && n < 0
        {
            return Err(usage(format!(
                "--overlay-until: invalid value {n}: must be 0 or more"
            )));
        }
        if self.overlay_image.is_some() {
            if matches!(self.drawer, DrawerKind::Clipdraw | DrawerKind::LineSketch) {
                return Err(usage(format!(
                    "--overlay-image: --drawer {} cannot take a picture back into its strokes; use vqgan, pixel, fast-pixel or fft",
                    self.drawer
                )));
            }
            if self.transparent {
                return Err(usage(
                    "--overlay-image pastes over a flat picture: drop --transparent or the overlay",
                ));
            }
        } else if self.overlay_alpha.is_some() || self.overlay_until.is_some() {
            return Err(usage(
                "--overlay-alpha and --overlay-until apply to --overlay-image: add it",
            ));
        }
        self.check_animation()?;
        self.check_loss_settings()?;
        self.check_filters()?;
        if self.image_labels.is_some()
            && matches!(self.drawer, DrawerKind::Clipdraw | DrawerKind::LineSketch)
        {
            return Err(usage(format!(
                "--image-labels: --drawer {} cannot take a picture into its strokes; use vqgan, pixel, fast-pixel or fft",
                self.drawer
            )));
        }
        if self.image_labels.is_none() && self.image_label_weight != 1.0 {
            return Err(usage("--image-label-weight weighs --image-labels: add it"));
        }
        if self.transparent_weight > 0.0 && !self.transparent {
            return Err(usage(
                "--transparent-weight penalizes alpha, which only --transparent draws: add --transparent",
            ));
        }
        if self.transparent && self.zoom_every > 0 {
            return Err(usage(
                "--zoom-every cannot enlarge a transparent drawing (zoom works on the flat image): drop --transparent or --zoom-every",
            ));
        }
        if self.transparent && self.allow_paper_color {
            return Err(usage(
                "--allow-paper-color: a --transparent line-sketch has no paper; drop one of the two",
            ));
        }
        if self.drawer == DrawerKind::LineSketch
            && (self.init_image.is_some() || self.init != InitKind::Random)
        {
            return Err(usage(
                "--drawer line-sketch draws black strokes on paper from pixray's random start: it takes no --init-image or --init (clipdraw colours its strokes from an init image)",
            ));
        }
        for d in layer.set_declarations() {
            if let Owner::Only(owners) = d.owner
                && !owners.contains(&self.drawer)
            {
                let names: Vec<&str> = owners.iter().map(|o| o.as_str()).collect();
                return Err(usage(format!(
                    "{} applies to --drawer {}, not to --drawer {}",
                    d.flag(),
                    names.join(" or "),
                    self.drawer
                )));
            }
        }
        if self.vqgan.trim().is_empty() {
            return Err(usage("--vqgan: empty value"));
        }
        if self.clip.is_empty() || self.clip.iter().any(|c| c.is_empty()) {
            return Err(usage(
                "--clip: expected one or more model names or paths separated by commas",
            ));
        }
        crate::device::check_device_syntax(&self.device)?;
        check_prompt_limits(
            &self.prompts,
            self.image_prompts.len()
                + self.noise_prompts.len()
                + self.target_images.len()
                + self.spot.len()
                + self.spot_off.len()
                + self.labels.len()
                + self.vector_prompts.len(),
        )?;
        if let Some(p) = &self.init_image
            && p.to_str().is_none()
        {
            return Err(usage(format!(
                "--init-image {}: the path is not valid UTF-8, and vqclip records it in run.toml (UTF-8 text) \
                 for resume: rename the file or link it under a UTF-8 name",
                p.display()
            )));
        }
        if self.prompts.is_empty()
            && self.image_prompts.is_empty()
            && self.noise_prompts.is_empty()
            && self.target_images.is_empty()
            && self.spot.is_empty()
            && self.spot_off.is_empty()
            && self.labels.is_empty()
            && self.vector_prompts.is_empty()
        {
            return Err(usage(
                "no prompt: give a PROMPT argument (e.g. vqclip generate \"a lighthouse at dusk\"), \
                 --image-prompt, --target-image, or a --config/--preset that has prompts",
            ));
        }
        Ok(())
    }

    /// The filters' settings need their filter; a wallpaper that changes the picture's size
    /// cannot meet what is made at the run's size.
    fn check_filters(&self) -> Result<()> {
        let lookup = self.filters.iter().any(|f| f.kind == FilterKind::Lookup);
        if let Some(b) = self.lookup_beta {
            if !lookup {
                return Err(usage("--lookup-beta applies to --filters lookup: add it"));
            }
            if !b.is_finite() || b < 0.0 {
                return Err(usage(format!(
                    "--lookup-beta: invalid value {b}: must be a number >= 0"
                )));
            }
            if self.palette_weight != crate::settings::DEFAULT_PALETTE_WEIGHT {
                return Err(usage(
                    "--lookup-beta is pixray's name for --palette-weight: give one of them",
                ));
            }
        }
        let Some(_) = self.wallpaper() else {
            if self.wallpaper_type != WallpaperType::None || self.wallpaper_edge_match != 0 {
                return Err(usage(
                    "--wallpaper-type and --wallpaper-edge-match apply to --filters wallpaper: add it",
                ));
            }
            return Ok(());
        };
        let refused = [
            (self.tile, "--tile (it shifts the picture too)"),
            (self.zoom_every > 0, "--zoom-every"),
            (self.transparent, "--transparent"),
            (self.animation_dir.is_some(), "--animation-dir"),
        ];
        if let Some((_, flag)) = refused.iter().find(|(on, _)| *on) {
            return Err(usage(format!(
                "--filters wallpaper does not work with {flag}: drop one of them"
            )));
        }
        if crate::generate::wallpaper::resizes(self.wallpaper_type, self.wallpaper_edge_match) {
            let sized = [
                (!self.image_prompts.is_empty(), "--image-prompt"),
                (!self.spot.is_empty() || !self.spot_off.is_empty(), "--spot"),
                (self.init_weight_pix > 0.0, "--init-weight-pix"),
                (
                    self.loss.iter().any(|t| t.kind == LossKind::Edge),
                    "--loss edge",
                ),
                (
                    self.loss.iter().any(|t| t.kind == LossKind::Style),
                    "--loss style",
                ),
            ];
            if let Some((_, flag)) = sized.iter().find(|(on, _)| *on) {
                return Err(usage(format!(
                    "--filters wallpaper with --wallpaper-type shift or --wallpaper-edge-match changes the picture's size, which {flag} cannot follow: use another wallpaper type, no edge match, or drop {flag}"
                )));
            }
        }
        Ok(())
    }

    /// A loss's own settings need the loss.
    fn check_loss_settings(&self) -> Result<()> {
        let has = |k: LossKind| self.loss.iter().any(|t| t.kind == k);
        let smoothness = [
            (
                self.smoothness_type != SmoothnessType::Default,
                "--smoothness-type",
            ),
            (
                self.smoothness_gaussian_kernel != 0,
                "--smoothness-gaussian-kernel",
            ),
            (
                self.smoothness_gaussian_std != 1.0,
                "--smoothness-gaussian-std",
            ),
        ];
        let edge = [
            (self.edge_thickness != 5.0, "--edge-thickness"),
            (self.edge_margins.is_some(), "--edge-margins"),
            (self.edge_color != Colour([255, 255, 255]), "--edge-color"),
            (self.edge_color_weight != 0.1, "--edge-color-weight"),
            (self.global_color_weight != 0.05, "--global-color-weight"),
            (self.edge_input_image.is_some(), "--edge-input-image"),
            (self.edge_mask_image.is_some(), "--edge-mask-image"),
        ];
        let aesthetic = [
            (self.aesthetic_target != 10.0, "--aesthetic-target"),
            (
                self.aesthetic_model != "ava_vit_b_16_linear",
                "--aesthetic-model",
            ),
        ];
        let style = [
            (self.style_file.is_some(), "--style-file"),
            (
                self.styleloss_content_weight != 32.0,
                "--styleloss-content-weight",
            ),
            (
                self.styleloss_ospace != StyleSpace::Uniform,
                "--styleloss-ospace",
            ),
            (self.styleloss_skip != 100, "--styleloss-skip"),
            (self.styleloss_every != 1, "--styleloss-every"),
            (self.style_model != "vgg16", "--style-model"),
        ];
        let resmem = [(self.resmem_model != "resmem", "--resmem-model")];
        for (kind, flags) in [
            (LossKind::Resmem, &resmem[..]),
            (LossKind::Smoothness, &smoothness[..]),
            (LossKind::Edge, &edge[..]),
            (LossKind::Aesthetic, &aesthetic[..]),
            (LossKind::Style, &style[..]),
        ] {
            if let Some((_, flag)) = flags.iter().find(|(on, _)| *on)
                && !has(kind)
            {
                return Err(usage(format!(
                    "{flag} applies to --loss {kind}: add it (e.g. --loss {kind}:1)"
                )));
            }
        }
        if has(LossKind::Style) {
            if self.style_file.is_none() {
                return Err(usage(
                    "--loss style needs the picture whose style it draws: add --style-file IMAGE",
                ));
            }
            let short = self.size.width.min(self.size.height);
            if short < crate::generate::style_loss::MIN_SIDE {
                return Err(usage(format!(
                    "--loss style works on pictures at least {} px on their short side (its coarsest scale); this one is {}x{}",
                    crate::generate::style_loss::MIN_SIDE,
                    self.size.width,
                    self.size.height
                )));
            }
        }
        if self.edge_margins.is_some() && self.edge_thickness != 5.0 {
            return Err(usage(
                "--edge-margins sets each band, --edge-thickness all four: give one of them",
            ));
        }
        Ok(())
    }

    /// `--animation-dir`'s limits: the drawer must take pictures back (the blend between frames),
    /// and the settings that move one image through time (zoom, auto-stop) have no meaning per
    /// frame.
    fn check_animation(&self) -> Result<()> {
        if self.animation_dir.is_none() {
            let set = [
                (self.animation_alpha != 128, "--animation-alpha"),
                (self.init_image_alpha != 200, "--init-image-alpha"),
            ];
            if let Some((_, flag)) = set.iter().find(|(on, _)| *on) {
                return Err(usage(format!(
                    "{flag} applies to animation frames (as pixray's): add --animation-dir DIR"
                )));
            }
            return Ok(());
        }
        if matches!(self.drawer, DrawerKind::Clipdraw | DrawerKind::LineSketch) {
            return Err(usage(format!(
                "--animation-dir blends each frame with the previous one and takes the picture back into the drawer, which --drawer {} cannot; use vqgan, pixel, fast-pixel or fft",
                self.drawer
            )));
        }
        let refused = [
            (self.transparent, "--transparent"),
            (self.zoom_every > 0, "--zoom-every"),
            (self.auto_stop, "--auto-stop"),
            (self.init_weight_pix > 0.0, "--init-weight-pix"),
        ];
        if let Some((_, flag)) = refused.iter().find(|(on, _)| *on) {
            return Err(usage(format!(
                "{flag} does not work with --animation-dir (one run of frames in turn): drop one of them"
            )));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&self.to_partial()).context("cannot serialize settings")
    }

    /// The zoom-video move.
    pub fn zoom(&self) -> Move {
        Move {
            scale: self.zoom_scale,
            shift: self.zoom_shift,
            rotate_degrees: self.zoom_rotate,
        }
    }

    /// Whether the zoom move follows step `step` (1-based). Also true at the last step: the
    /// final image is saved first, then the checkpoint holds the moved state, so a run continued
    /// with `--resume --steps` zooms exactly where a longer straight run would have.
    pub fn zoom_due(&self, step: i64) -> bool {
        self.zoom_every > 0 && step >= self.zoom_start.max(1) && step % self.zoom_every == 0
    }

    /// The colours the picture is drawn in: `--palette`, or pixray's lookup table for
    /// `--filters lookup` without one.
    pub fn palette_colours(&self) -> Option<Vec<crate::palette::Rgb>> {
        match &self.palette {
            Some(p) => Some(p.colours.clone()),
            None => self
                .filters
                .iter()
                .any(|f| f.kind == FilterKind::Lookup)
                .then(|| crate::palette::PIXRAY_LOOKUP.to_vec()),
        }
    }

    /// The pull toward the palette: `--lookup-beta` (pixray's name) or `--palette-weight`.
    pub fn palette_pull_weight(&self) -> f64 {
        self.lookup_beta.unwrap_or(self.palette_weight)
    }

    /// `--filters wallpaper`'s weight, if it is on.
    pub fn wallpaper(&self) -> Option<f64> {
        self.filters
            .iter()
            .find(|f| f.kind == FilterKind::Wallpaper)
            .map(|f| f.weight)
    }

    /// `--init-image`'s files: the file, or a glob's matches in name order (animation frames; a
    /// run without animation starts from the first).
    pub fn init_image_files(&self) -> Result<Vec<std::path::PathBuf>> {
        match &self.init_image {
            None => Ok(Vec::new()),
            Some(p) => crate::settings::expand_glob(&p.to_string_lossy(), "--init-image"),
        }
    }

    /// Whether an overlay is pasted after `step` steps (0: before the first): pixray's
    /// `cur_it % every == offset`, up to `--overlay-until` inclusive.
    pub fn overlay_due(&self, step: i64) -> bool {
        self.overlay_image.is_some()
            && step % self.overlay_every == self.overlay_offset
            && self.overlay_until.is_none_or(|u| step <= u)
    }

    /// Number of story phases (1 without `^`).
    pub fn phase_count(&self) -> usize {
        self.prompts.iter().map(|p| p.phase + 1).max().unwrap_or(1)
    }

    /// The story phase whose prompts are active at `step` (1-based): phases take turns every
    /// `change_prompt_every` steps (wrapping around), or split the run evenly when that is 0.
    pub fn phase_at(&self, step: i64) -> usize {
        let n = self.phase_count() as i64;
        if n <= 1 {
            return 0;
        }
        let every = if self.change_prompt_every > 0 {
            self.change_prompt_every
        } else {
            (self.steps + n - 1) / n
        };
        (((step - 1).max(0) / every.max(1)) % n) as usize
    }

    /// The prompts as one line (`|` within a phase, `^` between phases), for metadata.
    pub fn prompt_line(&self) -> String {
        Prompt::join_list(&self.prompts)
    }

    /// The steps (1-based) after which the learning rate is divided by 10.
    pub fn lr_drop_steps(&self) -> Vec<i64> {
        self.lr_drops
            .iter()
            .map(|p| ((p / 100.0) * self.steps as f64).round().max(1.0) as i64)
            .collect()
    }
}

/// The flags that may be given with `--resume` (the declared ones, then the run options).
pub fn resume_flags() -> String {
    let mut flags: Vec<String> = DECLARATIONS
        .iter()
        .filter(|d| d.may_change_on_resume)
        .map(|d| d.flag())
        .collect();
    flags.extend(["--quiet".to_string(), "--video".to_string()]);
    let last = flags.pop().unwrap_or_default();
    format!("{} and {last}", flags.join(", "))
}

/// `--resume`: refuses a flag layer that changes a setting the run is bound to.
pub fn check_resume_layer(flags: &PartialSettings) -> Result<()> {
    match flags
        .set_declarations()
        .into_iter()
        .find(|d| !d.may_change_on_resume)
    {
        Some(d) => Err(usage(format!(
            "cannot change {} on resume (only {} may be given with --resume)",
            d.flag(),
            resume_flags()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::path::Path;

    #[test]
    fn an_unknown_key_is_one_short_line_with_the_nearest() {
        let err = |text: &str| {
            format!(
                "{:#}",
                PartialSettings::from_toml(text, Path::new("s.toml"))
                    .err()
                    .unwrap_or_else(|| panic!("{text} was accepted"))
            )
        };
        let e = err("stepz = 2\n");
        assert!(
            e.contains("unknown setting `stepz` (did you mean `steps`?)"),
            "{e}"
        );
        assert!(!e.contains("expected one of"), "{e}");
        let e = err("cut_pow = 2.0\n");
        assert!(e.contains("did you mean `cut-pow`?"), "{e}");
        let e = err("nonsense-thing = 1\n");
        assert!(
            e.contains("unknown setting `nonsense-thing`;") && !e.contains("did you mean"),
            "{e}"
        );
        assert_eq!(super::edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn story_phases_parse_schedule_and_round_trip() {
        let ps = Prompt::parse_list("a | b:-1 ^ c:2:-0.5").unwrap();
        let got: Vec<(&str, usize)> = ps.iter().map(|p| (p.text.as_str(), p.phase)).collect();
        assert_eq!(got, [("a", 0), ("b", 0), ("c", 1)]);
        assert_eq!(Prompt::join_list(&ps), "a | b:-1 ^ c:2:-0.5");
        assert!(Prompt::parse_list("a ^ ^ b").is_err());
        let mut partial = PartialSettings {
            prompts: Some(PromptList::One("x ^ y ^ z".into())),
            steps: Some(10),
            ..Default::default()
        };
        let s = partial.resolve().unwrap();
        assert_eq!(s.phase_count(), 3);
        // 10 steps over 3 phases: 4, 4, 2.
        let phases: Vec<usize> = (1..=10).map(|k| s.phase_at(k)).collect();
        assert_eq!(phases, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
        partial.change_prompt_every = Some(3);
        let s = partial.resolve().unwrap();
        let phases: Vec<usize> = (1..=10).map(|k| s.phase_at(k)).collect();
        assert_eq!(phases, [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]);
        // The serialized form parses back to the same settings.
        let again = PartialSettings::from_toml(&s.to_toml().unwrap(), Path::new("run.toml"))
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn seeds() {
        assert_eq!(seed_from_text("42").unwrap(), 42);
        let a = seed_from_text("my cat").unwrap();
        assert_eq!(a, seed_from_text("my cat").unwrap());
        assert!(a < 1 << 32);
        assert!(seed_from_text("-3").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(
            Size::parse("320x240").unwrap(),
            Size {
                width: 320,
                height: 240
            }
        );
        assert_eq!(Size::parse("250x90").unwrap().width, 250); // the vector drawers' sizes
        for bad in ["8x256", "0x16", "8192x16", "abc", "256"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("A Lighthouse, at dusk!"), "a-lighthouse-at-dusk");
        assert_eq!(slug("!!!"), "image");
    }

    #[test]
    fn old_spellings_read_and_kebab_written() {
        let p = PartialSettings::from_toml(
            "drawer = \"fast_pixel\"\noptimizer = \"adamw_amsgrad\"\nprompts = \"x\"\nseed = 1\n",
            Path::new("old.toml"),
        )
        .unwrap();
        let s = p.resolve().unwrap();
        assert_eq!(s.drawer, DrawerKind::FastPixel);
        assert_eq!(s.optimizer, OptimizerKind::AdamWAmsgrad);
        let t = s.to_toml().unwrap();
        assert!(t.contains("drawer = \"fast-pixel\""), "{t}");
        assert!(t.contains("optimizer = \"adamw-amsgrad\""), "{t}");
        // Case is ignored, as before.
        assert_eq!("FFT".parse::<DrawerKind>().unwrap(), DrawerKind::Fft);
    }

    #[test]
    fn every_declaration_has_a_flag_and_a_key() {
        use clap::Args;
        let cmd = SettingsArgs::augment_args(clap::Command::new("t"));
        let toml_keys = toml::to_string(&PartialSettings {
            presets: None,
            ..Settings::to_partial(
                &PartialSettings {
                    prompts: Some(PromptList::One("x".into())),
                    seed: Some(SeedValue::Int(1)),
                    ..Default::default()
                }
                .resolve()
                .unwrap(),
            )
        })
        .unwrap();
        for d in DECLARATIONS {
            assert!(
                cmd.get_arguments().any(|a| a.get_id() == d.key),
                "{} has no flag",
                d.key
            );
            let key = d.key.replace('_', "-");
            // Not in this run.toml: pixel-scale (folded into pixel-size), init-image (unset), and
            // auto-stop and target-images (written only when set).
            let unset = [
                "pixel_scale",
                "init_image",
                "auto_stop",
                "target_images",
                "spot",
                "spot_off",
                "spot_file",
                "overlay_image",
                "overlay_every",
                "overlay_offset",
                "overlay_until",
                "overlay_alpha",
                "init_weight_dist",
                "init_weight_cos",
                "init_weight_pix",
                "aspect",
                "ezsize",
                "scale",
                "image_prompt_shuffle",
                "labels",
                "animation_dir",
                "animation_alpha",
                "init_image_alpha",
                "image_labels",
                "image_label_weight",
                "save_intermediates",
                "smoothness_type",
                "smoothness_gaussian_kernel",
                "smoothness_gaussian_std",
                "edge_thickness",
                "edge_margins",
                "edge_color",
                "edge_color_weight",
                "global_color_weight",
                "edge_input_image",
                "edge_mask_image",
                "vector_prompts",
                "filters",
                "wallpaper_type",
                "wallpaper_edge_match",
                "lookup_beta",
                "aesthetic_target",
                "deterministic",
                "aesthetic_model",
                "style_file",
                "styleloss_content_weight",
                "styleloss_ospace",
                "styleloss_skip",
                "styleloss_every",
                "style_model",
                "resmem_model",
            ]
            .contains(&d.key);
            let recorded = d.owner.records(DrawerKind::Vqgan) && !unset;
            assert_eq!(
                toml_keys
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = "))),
                recorded,
                "{key} in run.toml: {toml_keys}"
            );
        }
        assert_eq!(flag_of("image_prompts"), "--image-prompt");
        assert_eq!(flag_of("prompts"), "PROMPT");
        assert_eq!(
            resume_flags(),
            "--steps, --save-every, --device, --deterministic, --quiet and --video"
        );
    }

    #[test]
    fn readme_names_every_setting_flag() {
        let readme = include_str!("../../README.md");
        for d in DECLARATIONS {
            let flag = d.flag();
            if flag.starts_with("--") {
                assert!(
                    readme.contains(&format!("`{flag}")),
                    "README does not document {flag}"
                );
            }
        }
    }
}
