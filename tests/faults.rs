//! The fault suite: real `dshare serve` processes under crashes (`kill -9`), torn
//! writes, network partitions between network namespaces, a full disk, load, and
//! slow or dead peers. Each test is bounded in time and prints its figures (load
//! held, faults injected, messages checked) on stderr. Run it with
//! `cargo test --test faults`; docs/RELIABILITY.md says which promise each test proves.

#[path = "util/mod.rs"]
mod util;

#[path = "faults/harness.rs"]
mod harness;

#[path = "faults/crash.rs"]
mod crash;

#[path = "faults/partition.rs"]
mod partition;

#[path = "faults/disk_full.rs"]
mod disk_full;

#[path = "faults/load.rs"]
mod load;

#[path = "faults/slow_peers.rs"]
mod slow_peers;
