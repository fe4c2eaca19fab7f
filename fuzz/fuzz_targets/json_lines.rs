//! The JSON-lines framing: however the bytes arrive, every line is within
//! the limit and holds no newline, and over-long lines are reported.
#![no_main]

use banter_protocol::LineDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how the rest is chopped into reads.
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk % 64) + 1;
    let mut decoder = LineDecoder::new(32);
    for piece in rest.chunks(chunk) {
        decoder.feed(piece);
        while let Some(line) = decoder.next_line() {
            if let Ok(line) = line {
                assert!(line.len() <= 32);
                assert!(!line.contains(&b'\n'));
            }
        }
    }
});
