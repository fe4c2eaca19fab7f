//! IRC lines with IRCv3 tags: any bytes parse or fail cleanly, and what
//! parses writes back to a line that parses the same.
#![no_main]

use banter::transport::irc::line::Line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = Line::parse(data) {
        let mut out = Vec::new();
        line.write(&mut out);
        assert!(out.ends_with(b"\r\n"));
        let again = Line::parse(&out[..out.len() - 2]).expect("what we write parses");
        assert_eq!(
            (&again.tags, &again.source, &again.command, &again.params),
            (&line.tags, &line.source, &line.command, &line.params)
        );
    }
});
