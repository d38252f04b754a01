//! A message as a peer sends it (JSON): decoded and checked, or refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<dshare::message::Message>(data) {
        let _ = m.check();
        let _ = dshare::message::canonical(&m.draft());
    }
});
