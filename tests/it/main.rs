//! Kindred's integration tests, in one binary: every test binary links candle, sqlx,
//! serenity and teloxide, so one binary instead of eight saves minutes of linking and
//! gigabytes of disk on every CI run.
//!
//! * `conversation`: whole conversations through the engine (SQLite file, tiny models).
//! * `telegram`, `discord`: the daemon against loopback stand-ins of the platforms.
//! * `cli`: the `kindred` binary as a user runs it.
//! * `model_parity`, `llama_parity`: both architectures against transformers.
//! * `training`, `metrics_reference`: training, evaluation and the metrics.

#[allow(dead_code)]
mod helpers;
#[allow(dead_code)]
mod standins;

mod cli;
mod conversation;
mod discord;
mod harness;
mod hub;
mod instances;
mod llama_parity;
mod metrics_reference;
mod model_parity;
mod operations;
mod plots;
mod reliability;
mod store;
mod telegram;
mod training;
