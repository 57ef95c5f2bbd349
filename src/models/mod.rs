//! Model code mirroring the upstream modules and checkpoint key names:
//! taming-transformers' VQGAN and OpenAI's CLIP.
pub mod clip;
pub mod vqgan;
