//! The VQGAN+CLIP generator: the loop (`engine`), its differentiable pieces and its saved state.
pub mod augments;
pub mod checkpoint;
pub mod cutouts;
pub mod engine;
pub mod grad;
pub mod init;
pub mod losses;
pub mod optim;
pub mod pixray_cuts;
pub mod zoom;
