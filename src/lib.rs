//! dshare: a peer-to-peer, signed, encrypted broadcast channel for a set of machines.
//!
//! How the parts fit: the command line ([`cli`], [`commands`]) talks HTTP to a node
//! started by `dshare serve`, which [`node`] assembles from its parts, runs and stops
//! (tests and benches start one in-process the same way). The node ([`net`]) answers
//! the client API (token) and the peer API (sealed with the network key) on tiny_http
//! connection threads; every message that arrives goes through the box's one writer
//! ([`mbox::Writer`], one group commit at a time), which appends it to the message box
//! (a hash-chained, plain-text file) and fsyncs before anyone is told it is stored.
//! [`replicate`] pushes new messages to peers and pulls what it lacks, so every node
//! ends with the same conversation. [`message`], [`chain`] and [`seal`] are pure
//! functions with their tests beside them. The client API's requests and answers are
//! typed once, in [`api`], for the node and the command line alike. Layers run one
//! way: nothing below [`cli`] and [`commands`] imports them, and the module graph has
//! no cycle (tests/layers.rs).

pub mod api;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod diag;
pub mod durable;
pub mod exit;
pub mod hex;
pub mod home;
pub mod hooks;
pub mod identity;
pub mod invite;
pub mod mbox;
pub mod message;
pub mod metrics;
pub mod net;
pub mod node;
pub mod node_url;
pub mod par;
pub mod replicate;
pub mod runs;
pub mod seal;
pub mod secret;
pub mod signature;
pub mod spool;
pub mod time;
