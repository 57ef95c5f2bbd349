//! vqclip: VQGAN+CLIP text-to-image generation, zero-shot classification and image search,
//! on libtorch through tch, reading the official checkpoints natively.
pub mod aten;
pub mod batch;
pub mod cli;
pub mod clip_tasks;
pub mod cmd;
pub mod device;
pub mod error;
pub mod generate;
pub mod image_io;
pub mod interrupt;
pub mod models;
pub mod palette;
pub mod panics;
pub mod precision;
pub mod presets;
pub mod report;
pub mod rundir;
pub mod runplan;
pub mod settings;
pub mod tokenizer;
pub mod video;
pub mod weights;
