//! The node's HTTP side: the server and its limits, the client API (its types are
//! [`crate::api`]'s) and page, and the HTTP client the command line uses to reach a node.

mod archive_route;
pub mod client;
pub mod client_api;
pub mod client_keys;
mod exchange;
pub mod http;
pub mod idempotency;
mod page;
pub mod peer_api;
pub mod query;
pub mod waits;
