//! Maintainers' model work: reading ESConv, training, and evaluation.

pub mod bpe;
pub mod metrics;
pub mod data;
pub mod eval;
pub mod optim;
pub mod trainer;
