//! The one integration-test binary: real `dshare` processes on loopback.

mod util;

mod browser;
mod cli;
mod cookbook;
mod durability;
mod format_spec;
mod generated;
mod http_limits;
mod scripting;
mod single_node;
mod tamper;
