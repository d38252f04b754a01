//! The seal opener: no bytes open without the key, and none make it panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ring = dshare::seal::Keyring::new(&dshare::secret::Secret::new([42; 32]));
    assert!(ring.open(b"dshare/1 req /v1/push", data, 1_000_000).is_err());
});
