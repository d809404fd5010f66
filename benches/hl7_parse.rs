//! ER7 parse throughput side by side, in one run: our `hl7::er7`, the HL7 v2 crates on crates.io
//! (dev-dependencies), python-hl7 (run through `benches/python_hl7_parse.py` when `import hl7`
//! works) and a bare split-on-separators floor, on the public conformance corpus and on our
//! 14-segment antenatal ORU^R01. Then a correctness check of every contender on the same bytes
//! and on a few hazards (Chinese before an escape, MSH numbering, truncated input), panics caught.
//!
//! Run: `cargo bench --bench hl7_parse`. Prints figures; asserts nothing about time.
//! `MCH_BENCH_SECONDS` (default 1) is the time spent on each figure; `MCH_BENCH_PY_ROUNDS`
//! (default 5) the rounds python-hl7 makes over the corpus (the ORU gets 20 times as many).
//!
//! Every parser gets the same bytes: each file with a UTF-8 byte-order mark removed and CRLF/LF
//! turned into CR (python-hl7 and hl7-parser's default mode only split segments on CR, and the
//! corpus files use LF). Ours is also timed on the corpus as stored, which it normalises itself.

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mch_chain::hl7::er7::{Charset, Message};

/// The values mapping code reads from every message (our path syntax).
const PATHS: [&str; 6] = ["MSH-9.1", "MSH-10", "PID-3[1].1", "PID-5.1", "OBX-3.1", "OBX-5"];
/// The same positions in hl7-parser's syntax and in rust-hl7's.
const PATHS_HL7_PARSER: [&str; 6] = ["MSH.9.1", "MSH.10", "PID.3[1].1", "PID.5.1", "OBX.3.1", "OBX.5"];
const PATHS_RUST_HL7: [&str; 6] = [
    "MSH.F9.R1.C1",
    "MSH.F10",
    "PID.F3.R1.C1",
    "PID.F5.R1.C1",
    "OBX.F3.R1.C1",
    "OBX.F5",
];

/// One parser under test: `parse` returns something derived from the parse (so it is not
/// optimised away), `read` parses and reads [`PATHS`] (unescaped where the crate can), returning
/// the values; `None` for a message the parser refused.
struct Contender {
    name: &'static str,
    parse: fn(&str) -> usize,
    read: fn(&str) -> Option<Vec<Option<String>>>,
}

fn ours_parse(t: &str) -> usize {
    Message::parse(t.as_bytes(), Charset::Utf8).map_or(0, |m| m.segments().count())
}
fn ours_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = Message::parse(t.as_bytes(), Charset::Utf8).ok()?;
    Some(PATHS.iter().map(|p| m.get(p).ok().flatten()).collect())
}

fn er7_parse(t: &str) -> usize {
    er7::parse(t).map_or(0, |m| m.segments.len())
}
fn er7_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = er7::parse(t).ok()?;
    Some(PATHS.iter().map(|p| m.query(p).ok().flatten()).collect())
}

fn hl7_2_parse(t: &str) -> usize {
    hl7_2::parse(t).map_or(0, |m| m.raw().segments.len())
}
fn hl7_2_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = hl7_2::parse(t).ok()?;
    Some(PATHS.iter().map(|p| m.get(p).ok().flatten()).collect())
}

fn hl7kit_parse(t: &str) -> usize {
    hl7kit::Message::parse(t).map_or(0, |m| m.segment_count())
}
fn hl7kit_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = hl7kit::Message::parse(t).ok()?;
    Some(PATHS.iter().map(|p| m.get_decoded(p).map(|v| v.into_owned())).collect())
}

fn hl7_parser_parse(t: &str) -> usize {
    hl7_parser::Message::parse(t).map_or(0, |m| m.segments().count())
}
fn hl7_parser_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = hl7_parser::Message::parse(t).ok()?;
    let decode = |p: &str| m.query(p).map(|v| m.separators.decode(v.raw_value()).to_string());
    Some(PATHS_HL7_PARSER.iter().map(|p| decode(p)).collect())
}

fn rust_hl7_parse(t: &str) -> usize {
    rusthl7::message::Message::try_from(t).map_or(0, |m| m.segments.len())
}
fn rust_hl7_read(t: &str) -> Option<Vec<Option<String>>> {
    let m = rusthl7::message::Message::try_from(t).ok()?;
    // Its `query` panics on a missing segment: look first. Values come back raw (not unescaped).
    let read = |p: &str| {
        let has = m.segments_by_name(&p[..3]).is_ok_and(|s| !s.is_empty());
        has.then(|| m.query(p)).filter(|v| !v.is_empty()).map(str::to_string)
    };
    Some(PATHS_RUST_HL7.iter().map(|p| read(p)).collect())
}

/// The floor: find every segment and field boundary and keep the pieces, nothing else (no MSH
/// reading, no delimiters from the message, no validation, no escapes).
fn bare_split(t: &str) -> usize {
    let segments: Vec<Vec<&str>> = t
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .map(|s| s.split('|').collect())
        .collect();
    segments.len()
}

/// Median µs per message over five batches filling `budget`.
fn time(messages: usize, budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    black_box(f());
    let probe = Instant::now();
    black_box(f());
    let once = probe.elapsed().max(Duration::from_nanos(1));
    let rounds = ((budget / 5).as_secs_f64() / once.as_secs_f64()).clamp(1.0, 1e7) as u32;
    let mut per: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(f());
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds) / messages.max(1) as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per[2]
}

/// Remove a UTF-8 BOM and make every segment end in CR, as every contender gets it.
fn prepare(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(raw);
    let text = std::str::from_utf8(raw).ok()?;
    Some(text.replace("\r\n", "\r").replace('\n', "\r"))
}

/// python-hl7's figures by label (`corpus parse`, `oru parse+paths` …), or why there are none.
fn python_hl7(files: &[PathBuf], oru: &Path, rounds: u32) -> Result<Vec<(String, f64)>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_hl7_parse.py");
    let import = Command::new("python3").args(["-c", "import hl7"]).output();
    if !import.is_ok_and(|o| o.status.success()) {
        return Err("python3 -c 'import hl7' failed (pip install hl7)".into());
    }
    let out = Command::new("python3")
        .arg(script)
        .arg(rounds.to_string())
        .args(files)
        .arg(oru)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect())
}

/// What a contender made of one input: refused, panicked, or the values read.
enum Outcome {
    Refused,
    Panicked,
    Values(Vec<Option<String>>),
}

fn outcome(f: fn(&str) -> Option<Vec<Option<String>>>, t: &str) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| f(t))) {
        Ok(Some(v)) => Outcome::Values(v),
        Ok(None) => Outcome::Refused,
        Err(_) => Outcome::Panicked,
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../shared/conformance/hl7v2/fhir-converter-samples");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
            .collect(),
        Err(e) => {
            eprintln!("{}: {e} (no corpus figures)", dir.display());
            Vec::new()
        }
    };
    files.sort();
    let raw: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let corpus: Vec<String> = raw.iter().filter_map(|b| prepare(b)).collect();
    let oru_path = root.join("hl7/samples/oru-r01-antenatal-utf8.hl7");
    let oru = std::fs::read(&oru_path)
        .ok()
        .and_then(|b| prepare(&b))
        .unwrap_or_default();
    let seconds: f64 = std::env::var("MCH_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(seconds);
    let py_rounds: u32 = std::env::var("MCH_BENCH_PY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    let contenders = [
        Contender {
            name: "mch-chain hl7::er7 (ours)",
            parse: ours_parse,
            read: ours_read,
        },
        Contender {
            name: "er7 0.1.4",
            parse: er7_parse,
            read: er7_read,
        },
        Contender {
            name: "hl7-2 0.2.7",
            parse: hl7_2_parse,
            read: hl7_2_read,
        },
        Contender {
            name: "hl7kit 0.2.0",
            parse: hl7kit_parse,
            read: hl7kit_read,
        },
        Contender {
            name: "hl7-parser 0.3.0",
            parse: hl7_parser_parse,
            read: hl7_parser_read,
        },
        Contender {
            name: "rust-hl7 0.5.0",
            parse: rust_hl7_parse,
            read: rust_hl7_read,
        },
    ];

    // Panics are expected from some crates below; keep their messages out of the table.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    println!(
        "ER7 parsing: {} corpus messages, antenatal ORU^R01 ({} segments, {} bytes); µs per message, median of 5",
        corpus.len(),
        oru.split('\r').filter(|s| !s.is_empty()).count(),
        oru.len()
    );
    println!(
        "{:<28} {:>12} {:>14} {:>12} {:>14}",
        "parser", "corpus parse", "corpus +paths", "ORU parse", "ORU +paths"
    );
    let row = |name: &str, cells: [Option<f64>; 4]| {
        let cell = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"));
        println!(
            "{name:<28} {:>12} {:>14} {:>12} {:>14}",
            cell(cells[0]),
            cell(cells[1]),
            cell(cells[2]),
            cell(cells[3])
        );
    };
    let mut figures: Vec<(&str, [Option<f64>; 4])> = Vec::new();
    for c in &contenders {
        // A contender that panics on an input is timed on the inputs it survives only.
        let safe = |t: &String| catch_unwind(AssertUnwindSafe(|| (c.read)(t))).is_ok();
        let usable: Vec<&String> = corpus.iter().filter(|t| safe(t)).collect();
        let oru_ok = safe(&oru);
        let n = usable.len();
        let cells = [
            (n > 0).then(|| time(n, budget, || usable.iter().map(|t| (c.parse)(t)).sum())),
            (n > 0).then(|| {
                time(n, budget, || {
                    usable.iter().map(|t| (c.read)(t).map_or(0, |v| v.len())).sum()
                })
            }),
            oru_ok.then(|| time(1, budget, || (c.parse)(&oru))),
            oru_ok.then(|| time(1, budget, || (c.read)(&oru).map_or(0, |v| v.len()))),
        ];
        row(c.name, cells);
        figures.push((c.name, cells));
    }
    let raw_corpus = time(raw.len(), budget, || {
        raw.iter().filter_map(|b| Message::parse(b, Charset::Utf8).ok()).count()
    });
    println!(
        "{:<28} {raw_corpus:>12.2}   (ours on the corpus files as stored: BOM, LF)",
        "  ours, bytes as stored"
    );
    let encode = time(corpus.len(), budget, || {
        corpus
            .iter()
            .filter_map(|t| Message::parse(t.as_bytes(), Charset::Utf8).ok())
            .map(|m| m.encode().len())
            .sum()
    });
    println!(
        "{:<28} {encode:>12.2}   (ours: parse + encode the whole tree)",
        "  ours, parse + encode"
    );
    let split_corpus = time(corpus.len(), budget, || corpus.iter().map(|t| bare_split(t)).sum());
    let split_oru = time(1, budget, || bare_split(&oru));
    let floor = [Some(split_corpus), Some(split_corpus), Some(split_oru), Some(split_oru)];
    row("bare split (floor)", floor);

    let python = python_hl7(&files, &oru_path, py_rounds);
    let py = match &python {
        Ok(v) => {
            let get = |k: &str| v.iter().find(|(l, _)| l == k).map(|(_, x)| *x);
            let cells = [
                get("corpus parse"),
                get("corpus parse+paths"),
                get("oru parse"),
                get("oru parse+paths"),
            ];
            row("python-hl7 0.4.5", cells);
            Some(cells)
        }
        Err(e) => {
            println!("python-hl7: skipped: {}", e.trim());
            None
        }
    };

    println!("\nratios on parse + read paths (corpus | ORU): × faster than python-hl7, × the bare split");
    for (name, cells) in &figures {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.0}", b / a),
            _ => "—".into(),
        };
        let times = |a: Option<f64>, b: f64| a.map_or_else(|| "—".into(), |a| format!("{:.1}", a / b));
        let (py_c, py_o) = py.map_or((None, None), |p| (p[1], p[3]));
        println!(
            "{name:<28} python ×{:>6} | ×{:>6}    split ×{:>5} | ×{:>5}",
            ratio(cells[1], py_c),
            ratio(cells[3], py_o),
            times(cells[1], split_corpus),
            times(cells[3], split_oru)
        );
    }

    // Correctness: the same values as ours on every message, and the hazards.
    println!("\ncorrectness on the same bytes (values compared with ours, panics caught)");
    let mut inputs: Vec<&str> = corpus.iter().map(String::as_str).collect();
    inputs.push(&oru);
    let reference: Vec<Outcome> = inputs.iter().map(|t| outcome(ours_read, t)).collect();
    let v27 = "MSH|^~\\&#|LIS|HOSP|MCH|CENTRE|20261124083000||ORU^R01|MSG1|P|2.7\rPID|1||123^^^HOSP^MR||王^小红\r";
    let escaped =
        "MSH|^~\\&|LIS|HOSP|MCH|CENTRE|20261124083000||ORU^R01|MSG1|P|2.5.1\rOBX|1|TX|X^Note^L||复查\\F\\一周\\T\\内\r";
    for c in &contenders {
        let (mut parsed, mut refused, mut panicked, mut differ) = (0, 0, 0, 0);
        let mut first_difference = None;
        for (t, r) in inputs.iter().zip(&reference) {
            match (outcome(c.read, t), r) {
                (Outcome::Values(v), Outcome::Values(r)) => {
                    parsed += 1;
                    if let Some(i) = (0..PATHS.len()).find(|i| v[*i] != r[*i]) {
                        differ += 1;
                        first_difference.get_or_insert((PATHS[i], r[i].clone(), v[i].clone()));
                    }
                }
                (Outcome::Values(_), _) => parsed += 1,
                (Outcome::Refused, _) => refused += 1,
                (Outcome::Panicked, _) => panicked += 1,
            }
        }
        let msh3 = |t: &str| match c.name {
            n if n.starts_with("rust-hl7") => catch_unwind(|| {
                rusthl7::message::Message::try_from(t)
                    .ok()
                    .map(|m| m.query("MSH.F3").to_string())
            }),
            n if n.starts_with("hl7-parser") => catch_unwind(|| {
                hl7_parser::Message::parse(t)
                    .ok()
                    .and_then(|m| m.query("MSH.3").map(|v| v.raw_value().to_string()))
            }),
            n if n.starts_with("hl7kit") => catch_unwind(|| {
                hl7kit::Message::parse(t)
                    .ok()
                    .and_then(|m| m.get("MSH-3").map(str::to_string))
            }),
            n if n.starts_with("er7") => {
                catch_unwind(|| er7::parse(t).ok().and_then(|m| m.query("MSH-3").ok().flatten()))
            }
            n if n.starts_with("hl7-2") => {
                catch_unwind(|| hl7_2::parse(t).ok().and_then(|m| m.get("MSH-3").ok().flatten()))
            }
            _ => catch_unwind(|| {
                Message::parse(t.as_bytes(), Charset::Utf8)
                    .ok()
                    .and_then(|m| m.get("MSH-3").ok().flatten())
            }),
        };
        let show = |r: std::thread::Result<Option<String>>| match r {
            Ok(Some(v)) => format!("{v:?}"),
            Ok(None) => "none".into(),
            Err(_) => "PANIC".into(),
        };
        let note = |o: Outcome| match o {
            Outcome::Values(v) => format!("{:?}", v.iter().map(|x| x.as_deref().unwrap_or("")).collect::<Vec<_>>()),
            Outcome::Refused => "refused".into(),
            Outcome::Panicked => "PANIC".into(),
        };
        println!("{}", c.name);
        println!(
            "  {} inputs: {parsed} read, {refused} refused, {panicked} panicked, {differ} with values unlike ours{}",
            inputs.len(),
            first_difference.map_or_else(String::new, |(p, r, v)| format!(
                " (first: {p} ours {r:?}, theirs {v:?})"
            ))
        );
        println!(
            "  MSH-3 (sending application, LIS): {}; in a v2.7 message: {}",
            show(msh3(escaped)),
            show(msh3(v27))
        );
        println!("  v2.7 MSH-2 ^~\\&#: {}", note(outcome(c.read, v27)));
        println!("  OBX-5 with Chinese before \\F\\ and \\T\\: {}", obx5(c.name, escaped));
        for (label, bad) in [
            ("truncated MSH|^~", "MSH|^~"),
            ("garbage", "garbage"),
            ("MSH only", "MSH|^~\\&|A"),
        ] {
            println!("  {label}: {}", note(outcome(c.read, bad)));
        }
    }
    std::panic::set_hook(hook);
}

/// OBX-5 read and unescaped by each crate (the read the STACK.md evaluation saw panic).
fn obx5(name: &str, t: &str) -> String {
    let r = catch_unwind(|| match name {
        n if n.starts_with("rust-hl7") => rusthl7::message::Message::try_from(t)
            .ok()
            .map(|m| m.query("OBX.F5").to_string()),
        n if n.starts_with("hl7-parser") => hl7_parser::Message::parse(t)
            .ok()
            .and_then(|m| m.query("OBX.5").map(|v| m.separators.decode(v.raw_value()).to_string())),
        n if n.starts_with("hl7kit") => hl7kit::Message::parse(t)
            .ok()
            .and_then(|m| m.get_decoded("OBX-5").map(|v| v.into_owned())),
        n if n.starts_with("er7") => er7::parse(t).ok().and_then(|m| m.query("OBX-5").ok().flatten()),
        n if n.starts_with("hl7-2") => hl7_2::parse(t).ok().and_then(|m| m.get("OBX-5").ok().flatten()),
        _ => Message::parse(t.as_bytes(), Charset::Utf8)
            .ok()
            .and_then(|m| m.get("OBX-5").ok().flatten()),
    });
    match r {
        Ok(Some(v)) => format!("{v:?}"),
        Ok(None) => "none".into(),
        Err(_) => "PANIC".into(),
    }
}
