//! Maintainers' model work: reading ESConv, training, and evaluation.

pub mod bpe;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod optim;
pub mod trainer;
