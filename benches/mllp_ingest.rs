//! End-to-end MLLP ingest: ADT^A04 messages from several concurrent senders, each fully processed
//! (stored durably with its ACK, the woman found or registered, audited) before its AA comes back.
//! Run: `cargo bench --bench mllp_ingest` (SQLite in target/tmp), and with
//! `MCH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/postgres` also on PostgreSQL.
//! Sizes: `MCH_BENCH_SENDERS` (8 connections), `MCH_BENCH_MESSAGES` (per sender, 250).
//! Prints figures; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench binary: a failure should stop it loudly

use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use mch_chain::Application;
use mch_chain::config::Settings;
use mch_chain::facility::model::NewFacility;
use mch_chain::hl7::mllp::{Decoder, Event, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn id_number(seq: usize) -> String {
    let body = format!(
        "340524{}{:03}",
        19_700_101 + (seq / 500) as u32 * 10_000,
        (seq % 500) * 2
    );
    let w = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn message(sender: usize, i: usize, seq: usize) -> Vec<u8> {
    let id = id_number(seq);
    let birth = &id[6..14];
    frame(format!("MSH|^~\\&|HIS{sender}|HOSP|MCH|C|20261124||ADT^A04^ADT_A01|B-{sender}-{i}|P|2.5.1|||||CHN|UNICODE UTF-8\rPID|1||{id}^^^^NNCHN~M{seq}^^^HOSP^MR||王^秀英{seq}||{birth}|F\r").as_bytes())
}

async fn run(url: &str, label: &str, senders: usize, per_sender: usize) {
    let mut settings = Settings::for_url(url);
    settings.workers = Some(1);
    let app = Application::build(&settings).unwrap();
    let port = app.mllp_port().unwrap();
    let db = app.db();
    tokio::spawn(app.run_until_stopped());
    mch_chain::facility::service::add(
        &db,
        NewFacility {
            code: "HOSP".into(),
            name: "县医院".into(),
            level: "county".into(),
            kind: "hospital".into(),
            jurisdiction: "340524".into(),
            township_code: None,
            capabilities: vec![],
        },
    )
    .await
    .unwrap();
    for s in 0..senders {
        mch_chain::hl7::service::add_sender(&db, &format!("HIS{s}"), "HOSP", "HOSP", "utf8")
            .await
            .unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        tasks.push(tokio::spawn(async move {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut decoder = Decoder::new(1 << 20);
            let mut buf = vec![0u8; 8192];
            let mut lat = Vec::with_capacity(per_sender);
            for i in 0..per_sender {
                let t = Instant::now();
                conn.write_all(&message(s, i, s * per_sender + i)).await.unwrap();
                loop {
                    let n = conn.read(&mut buf).await.unwrap();
                    assert!(n > 0, "connection closed");
                    if let Some(Event::Frame(f)) = decoder.feed(&buf[..n]).into_iter().next() {
                        assert!(
                            f.windows(7).any(|w| w == b"MSA|AA|"),
                            "not AA: {}",
                            String::from_utf8_lossy(&f)
                        );
                        break;
                    }
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    let stats = db.writer_stats();
    println!(
        "{label:<11} {senders:>2} senders × {per_sender} ADT^A04: {:>6.0} msg/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({:.1} units/commit)",
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        stats.units as f64 / stats.commits.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let senders: usize = std::env::var("MCH_BENCH_SENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let per: usize = std::env::var("MCH_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    run(
        &format!("sqlite://{}", tmp.path().join("mllp.db").display()),
        "SQLite",
        senders,
        per,
    )
    .await;
    if let Ok(admin) = std::env::var("MCH_BENCH_DATABASE_URL") {
        let name = format!("mllp_bench_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').unwrap().0.to_string();
        run(&format!("{base}/{name}"), "PostgreSQL", senders, per).await;
        let _ = c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
