//! The ER7 parser against the public conformance corpus nobody here wrote
//! (../shared/conformance/hl7v2: 139 messages, 60 trigger events, escapes, repetitions, BOMs,
//! CR/LF/CRLF).

use mch_chain::hl7::er7::{Charset, Message};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/hl7v2/fhir-converter-samples");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The documented normalisation: BOM removed, CR/LF/CRLF → CR, blank lines dropped, every
/// segment ended by CR.
fn normalised(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes).to_vec()).unwrap();
    text.split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r"))
        .collect()
}

#[test]
fn every_conformance_message_parses_and_encodes_back_to_the_same_text() {
    let files = corpus();
    assert!(files.len() >= 139, "found {} samples", files.len());
    let mut types = std::collections::BTreeSet::new();
    for (name, bytes) in &files {
        let m = Message::parse(bytes, Charset::Utf8).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m.encode(),
            normalised(bytes),
            "{name}: parse → encode changed the message"
        );
        let kind = m.get("MSH-9.1").unwrap().unwrap_or_default();
        let event = m.get("MSH-9.2").unwrap().unwrap_or_default();
        assert!(!kind.is_empty(), "{name}: MSH-9.1 readable");
        assert!(
            m.get("MSH-10").unwrap().is_some_and(|v| !v.is_empty()),
            "{name}: MSH-10 readable"
        );
        assert_eq!(m.segments().next().map(|s| s.id()), Some("MSH"));
        types.insert(format!("{kind}^{event}"));
    }
    assert!(types.len() >= 55, "trigger events seen: {}", types.len());
}

#[test]
fn our_chinese_samples_parse_in_utf8_and_gb18030_alike() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hl7/samples");
    let utf8 = std::fs::read(dir.join("oru-r01-antenatal-utf8.hl7")).unwrap();
    let gb = std::fs::read(dir.join("oru-r01-antenatal-gb18030.hl7")).unwrap();
    assert!(
        std::str::from_utf8(&gb).is_err(),
        "the GB 18030 sample really is GB 18030"
    );
    let a = Message::parse(&utf8, Charset::Utf8).unwrap();
    let b = Message::parse(&gb, Charset::Utf8).unwrap();
    for path in [
        "PID-5.1",
        "PID-5.2",
        "PID-11.1",
        "OBX-3.5",
        "OBX[5]-5.2",
        "NTE-3",
        "ZMC-2",
    ] {
        assert_eq!(a.get(path).unwrap(), b.get(path).unwrap(), "{path}");
    }
    assert_eq!(a.get("PID-5.2").unwrap().as_deref(), Some("小红"));
    assert_eq!(a.get("PID-11.1").unwrap().as_deref(), Some("东关镇红星村&3组"));
    assert_eq!(
        a.get("NTE-3").unwrap().as_deref(),
        Some("复查|建议：一周内复查血常规\\.br\\已电话通知")
    );
    assert_eq!(a.get("PID-3[1].5").unwrap().as_deref(), Some("NNCHN"));
    assert_eq!(a.get("PID-3[2].5").unwrap().as_deref(), Some("HC"));
    assert_eq!(a.segments().count(), 14);
    assert_eq!(b.encode_bytes(), gb, "GB 18030 encodes back to the same bytes");
    assert_eq!(a.encode().as_bytes(), utf8.as_slice());
}
