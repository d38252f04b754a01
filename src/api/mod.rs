//! The client API's routes, typed once for the node that answers them and the command line that calls them: one file per route group (as ruma has one per endpoint), each with the route's request and answer types; what the JSON looks like is written here and nowhere else.
//!
//! `/log`'s answer is messages, one JSON object a line ([`crate::message::Message`]);
//! the peer API (`/v1/*`, sealed) has its own types in [`crate::replicate::protocol`].

pub mod log;
pub mod peers;
pub mod send;
pub mod status;
mod want;

pub use crate::replicate::Fork;
pub use crate::replicate::peers::{PeerState, PeerView};
pub use log::LogQuery;
pub use peers::PeersAnswer;
pub use send::{RemoteAnswer, RemoteBody, RemoteSend, SendAnswer, SendQuery};
pub use status::Status;
pub use want::{BadWant, Want};
