//! Arbitrary bytes through the ER7 parser under both default character sets. Nothing may panic;
//! a message that parses must encode back to its normalised text, and that encoding must parse
//! again, encode to the same text (normalisation is idempotent) and read the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser's own source file, compiled here (see Cargo.toml for why not the package).
#[path = "../../src/hl7/er7.rs"]
#[allow(dead_code)]
mod er7;

use er7::{Charset, Message};

const PATHS: [&str; 6] = ["MSH-9", "MSH-9.2", "MSH-18", "PID-3[2].1", "PID-5.1", "OBX-5"];

fuzz_target!(|data: &[u8]| {
    for charset in [Charset::Utf8, Charset::Gb18030] {
        let Ok(m) = Message::parse(data, charset) else {
            continue;
        };
        let first = m.encode();
        assert_eq!(first, m.text(), "encode does not give back the parsed text");
        let again = match Message::parse(&m.encode_bytes(), charset) {
            Ok(again) => again,
            Err(e) => panic!("the encoded message does not parse again: {e}\n{first:?}"),
        };
        assert_eq!(again.encode(), first, "encode is not idempotent");
        for path in PATHS {
            assert_eq!(m.get(path), again.get(path), "{path} differs after a round trip");
        }
        let _ = m.leaves();
        let _ = m.segments().map(|s| s.field_count()).sum::<usize>();
    }
});
