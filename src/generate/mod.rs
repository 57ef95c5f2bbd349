//! The CLIP-guided generator: the loop (`engine`), the drawers it optimizes (`drawers`), its
//! differentiable pieces and its saved state.
pub mod animation;
pub mod augments;
pub mod auto_stop;
pub mod checkpoint;
pub mod cutouts;
pub mod drawers;
pub mod engine;
pub mod extra_losses;
pub mod grad;
pub mod init;
pub mod load;
pub mod loss_row;
pub mod losses;
pub mod memory;
pub mod optim;
pub mod outputs;
pub mod pixray_cuts;
pub mod profile;
pub mod rng;
pub mod session;
pub mod spot;
pub mod style_loss;
pub mod transparent;
pub mod wallpaper;
pub mod zoom;
