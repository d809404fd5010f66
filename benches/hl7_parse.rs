//! ER7 parse throughput: the public conformance corpus and our 14-segment antenatal ORU^R01, beside
//! a bare split-on-separators baseline (the floor: it only finds segment and field boundaries).
//! Run: `cargo bench --bench hl7_parse`. Prints figures; asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use mch_chain::hl7::er7::{Charset, Message};

fn bare_split(bytes: &[u8]) -> usize {
    let mut n = 0;
    for seg in bytes.split(|b| *b == b'\r' || *b == b'\n') {
        n += seg.split(|b| *b == b'|').count();
    }
    n
}

fn time<F: FnMut() -> usize>(label: &str, messages: usize, iterations: u32, mut f: F) -> f64 {
    for _ in 0..(iterations / 10).max(1) {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(f());
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations) / messages as f64;
    println!("{label:<58} {per:>10.2} µs/message");
    per
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../shared/conformance/hl7v2/fhir-converter-samples");
    let corpus: Vec<Vec<u8>> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
            .filter_map(|p| std::fs::read(p).ok())
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            Vec::new()
        }
    };
    let oru = std::fs::read(root.join("hl7/samples/oru-r01-antenatal-utf8.hl7")).unwrap_or_default();
    let iterations: u32 = std::env::var("MCH_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("ER7 parsing, {} corpus messages, {iterations} rounds", corpus.len());
    let deep = |m: &Message| {
        // Touch every segment's fields as mapping code would: MSH-9, MSH-10, PID-3, PID-5, OBX-3/5.
        let mut n = 0;
        for p in ["MSH-9.1", "MSH-10", "PID-3[1].1", "PID-5.1", "OBX-3.1", "OBX-5"] {
            n += m.get(p).ok().flatten().map_or(0, |v| v.len());
        }
        n
    };
    time("corpus: parse", corpus.len(), iterations, || {
        corpus
            .iter()
            .filter_map(|b| Message::parse(b, Charset::Utf8).ok())
            .count()
    });
    time("corpus: parse + read 6 paths", corpus.len(), iterations, || {
        corpus
            .iter()
            .filter_map(|b| Message::parse(b, Charset::Utf8).ok())
            .map(|m| deep(&m))
            .sum()
    });
    time("corpus: parse + encode", corpus.len(), iterations, || {
        corpus
            .iter()
            .filter_map(|b| Message::parse(b, Charset::Utf8).ok())
            .map(|m| m.encode().len())
            .sum()
    });
    time("corpus: bare split on CR/LF and |", corpus.len(), iterations, || {
        corpus.iter().map(|b| bare_split(b)).sum()
    });
    let many = iterations * 20;
    time("antenatal ORU^R01 (14 segments): parse + read 6 paths", 1, many, || {
        Message::parse(&oru, Charset::Utf8).map(|m| deep(&m)).unwrap_or(0)
    });
    time("antenatal ORU^R01 (14 segments): bare split", 1, many, || {
        bare_split(&oru)
    });
}
