//! Kindred: an emotional-support conversation daemon.
//!
//! The library holds everything the `kindred` binary runs: the Joint model
//! ([`model`]), the conversation engine ([`engine`]), the SQLite store ([`store`]),
//! crisis screening ([`safety`]), settings ([`configuration`]) and the maintainers'
//! tools ([`train`], [`export`]).
#![deny(unsafe_code)] // allowed only in `model::kernels`

pub mod bench;
pub mod cli;
pub mod commands;
pub mod configuration;
pub mod domain;
pub mod engine;
pub mod export;
pub mod metrics;
pub mod model;
pub mod operations;
pub mod safety;
pub mod startup;
pub mod store;
pub mod train;
