//! `vqclip batch`: many generate runs from one file, spread over Slurm job arrays, Kubernetes
//! Indexed Jobs, several local devices or several shells, each job run exactly once and resumed
//! after preemption. No scheduler of its own: shards take their jobs by a fixed rule
//! ([`shard`]), and claim files ([`claim`]) keep two workers off one job.
pub mod claim;
pub mod jobs;
pub mod shard;
pub mod state;

pub use jobs::{Job, load_jobs};
