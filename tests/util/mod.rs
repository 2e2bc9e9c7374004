//! Helpers shared by the integration suites.

pub mod hub_server;
