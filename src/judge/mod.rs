//! Generative judges' transport: the chat HTTP client ([`client`]), its two wire formats
//! ([`wire`]), servers' `Retry-After` ([`retry_after`]) and model routing ([`route`]).

pub mod client;
pub mod retry_after;
pub mod route;
pub mod wire;
