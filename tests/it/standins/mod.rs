pub mod discord;
pub mod hub;
pub mod telegram;
