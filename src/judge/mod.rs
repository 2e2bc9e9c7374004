//! Generative judges' transport: the chat HTTP client ([`client`]) and model routing ([`route`]).

pub mod client;
pub mod route;
