//! A WebSocket text frame or a TCP line, as the server parses a request:
//! any bytes give a request or a precise error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = banter_protocol::parse_request(data) {
        assert!(!e.message.is_empty());
    }
});
