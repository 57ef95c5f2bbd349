//! Model code mirroring the upstream modules and checkpoint key names:
//! taming-transformers' VQGAN and OpenAI's CLIP (and pixray's linear head on CLIP embeddings).
pub mod clip;
pub mod head;
pub mod resmem;
pub mod resnet;
pub mod vgg;
pub mod vqgan;
