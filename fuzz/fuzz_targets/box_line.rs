//! The box line parser: any bytes are parsed or refused, never a panic; what parses
//! re-encodes to the same line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(line) = dshare::mbox::parse_line(text) {
            assert_eq!(dshare::mbox::encode_line(&line.chain, &line.message), text);
            let _ = line.message.check();
        }
    }
});
