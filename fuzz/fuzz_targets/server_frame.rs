//! What the web client and bots read: any text decodes to a server frame
//! or an error, and a decoded frame encodes back to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = banter_protocol::decode_server_frame(text) {
        let again = serde_json::to_string(&frame.body).unwrap();
        let back = banter_protocol::decode_server_frame(&again).unwrap();
        assert_eq!(back.body, frame.body);
    }
});
