//! The one integration-test binary: real `dshare` processes on loopback.

mod util;

mod browser;
mod cli;
mod doctor;
mod durability;
mod format_spec;
mod generated;
mod http_limits;
mod single_node;
mod tamper;
