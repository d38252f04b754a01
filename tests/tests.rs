//! The one integration-test binary: real `dshare` processes on loopback.

mod util;

mod attack_client;
mod attack_clock;
mod attack_http;
mod attack_peers;
mod attack_store;
mod browser;
mod checkpoint;
mod cli;
mod cookbook;
mod cron_bugs;
mod cron_run;
mod diagnostics;
mod doctor;
mod durability;
mod epochs;
mod format_spec;
mod generated;
mod history_index;
mod hostile;
mod http_limits;
mod in_process;
mod json_shapes;
mod layers;
mod metrics;
mod network;
mod package;
mod privacy;
mod props;
mod reconcile;
mod reload;
mod scripting;
mod single_node;
mod tamper;
mod transport;
