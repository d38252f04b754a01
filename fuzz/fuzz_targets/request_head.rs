//! HTTP request heads (request line, headers, body framing): refused or parsed,
//! never a panic; a head that parses has exactly one body length or none.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = tiny_http::parse_request_head(data) {
        let lengths = head
            .headers
            .iter()
            .filter(|h| h.field.equiv("Content-Length"))
            .count();
        assert!(lengths <= 1);
        assert_eq!(head.content_length.is_some(), lengths == 1);
    }
});
