//! FHIR Observation throughput and search latency (issue 6): a 50/50 mix of `POST Observation`
//! (validated, unit-converted, audited, group-committed durably before the 201) and
//! `GET Observation/{id}` (audited in the same durable commit) from concurrent clients, then
//! `Observation?patient=…&date=ge…` against a table of `MCH_BENCH_OBSERVATIONS` rows (1 M).
//!
//! Run: `cargo bench --bench fhir_crud` (SQLite in target/tmp); with
//! `MCH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/postgres` also on PostgreSQL.
//! Sizes: `MCH_BENCH_OBSERVATIONS` (1000000), `MCH_BENCH_PATIENTS` (2000), `MCH_BENCH_CLIENTS`
//! (32), `MCH_BENCH_SECONDS` (20), `MCH_BENCH_SEARCHES` (400). Prints figures; asserts nothing
//! about time (a failed request stops it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench binary: a failure should stop it loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use mch_chain::Application;
use mch_chain::config::Settings;
use mch_chain::facility::model::NewFacility;
use serde_json::{Value, json};

/// `MCH_BENCH_SQL=1`: count every statement the server runs during the mix (by SQL text, on the
/// writer thread or elsewhere) and which of them diesel caches as prepared statements; printed
/// per request after the mix. Off by default (the counting itself costs time).
mod census {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use diesel::connection::{Instrumentation, InstrumentationEvent};

    pub static ON: AtomicBool = AtomicBool::new(false);
    /// Runs on the writer, runs elsewhere, whether diesel cached it.
    type Counts = (u64, u64, bool);
    /// SQL text → its counts.
    static SEEN: Mutex<Option<HashMap<String, Counts>>> = Mutex::new(None);

    struct Counter;

    impl Instrumentation for Counter {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if !ON.load(Ordering::Relaxed) {
                return;
            }
            let (sql, cached) = match event {
                InstrumentationEvent::StartQuery { query, .. } => (query.to_string(), false),
                InstrumentationEvent::CacheQuery { sql, .. } => (sql.to_string(), true),
                _ => return,
            };
            let sql = sql.split(" -- binds").next().unwrap_or_default().to_string();
            let writer = std::thread::current().name() == Some("mch-db-writer");
            let mut seen = SEEN.lock().unwrap();
            let e = seen.get_or_insert_with(HashMap::new).entry(sql).or_default();
            if cached {
                e.2 = true;
            } else if writer {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }

    pub fn install() {
        diesel::connection::set_default_instrumentation(|| Some(Box::new(Counter))).unwrap();
    }

    pub fn report(requests: usize) {
        let seen = SEEN.lock().unwrap().take().unwrap_or_default();
        let mut rows: Vec<_> = seen.into_iter().collect();
        rows.sort_by_key(|(_, (w, o, _))| std::cmp::Reverse(w + o));
        let per = |n: u64| n as f64 / requests.max(1) as f64;
        let (w, o): (u64, u64) = rows.iter().fold((0, 0), |(a, b), (_, (w, o, _))| (a + w, b + o));
        println!(
            "  statements per request: {:.2} on the writer, {:.2} elsewhere",
            per(w),
            per(o)
        );
        for (sql, (w, o, cached)) in rows.iter().take(40) {
            let short: String = sql.chars().take(150).collect();
            println!(
                "    {:>6.2} {:>6.2} {} {short}",
                per(*w),
                per(*o),
                if *cached { "cached" } else { "PREPARE" }
            );
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0
}

/// Bulk-load persons and observations straight into the tables (the load under test is the HTTP
/// path, not the seeding), in large transactions of multi-row INSERTs.
async fn seed(db: &mch_chain::storage::Db, facility_id: String, patients: usize, observations: usize) -> Vec<String> {
    let person_ids: Vec<String> = (0..patients).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let ids = person_ids.clone();
    let fid = facility_id.clone();
    db.write(move |c| {
        for chunk in ids.chunks(500) {
            let rows: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    format!("('{id}', '测试{i}', 'female', '1995-01-01', '340524', '{fid}', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)")
                })
                .collect();
            c.batch_execute(&format!(
                "INSERT INTO persons (id, name, sex, birth_date, jurisdiction, created_by_facility_id, created_at, updated_at, version) VALUES {}",
                rows.join(",")
            ))
            .map_err(mch_chain::error::ServiceError::from)?;
        }
        Ok::<_, mch_chain::error::ServiceError>(())
    })
    .await
    .unwrap();
    let started = Instant::now();
    let per_txn = 50_000;
    let mut done = 0;
    while done < observations {
        let n = per_txn.min(observations - done);
        let persons = person_ids.clone();
        let fid = facility_id.clone();
        let base = done;
        db.write(move |c| {
            let mut i = 0;
            while i < n {
                let rows: Vec<String> = (i..(i + 1000).min(n))
                    .map(|k| {
                        let seq = base + k;
                        let person = &persons[seq % persons.len()];
                        // Spread over the last ~2 years, minute resolution.
                        let minutes = (seq / persons.len()) as i64 * 1440 + (seq % 1440) as i64;
                        let at = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap()
                            + chrono::Duration::minutes(minutes);
                        format!(
                            "('{}', '{person}', '340524', 'LN', '718-7', '血红蛋白', 'hb', '718-7', 'NM', '{v}', {v}, 'g/L', '{at}', 'bench', '{fid}', 'F', FALSE, '{at}')",
                            uuid::Uuid::now_v7(),
                            v = 100 + seq % 40,
                        )
                    })
                    .collect();
                c.batch_execute(&format!(
                    "INSERT INTO observations (id, person_id, jurisdiction, code_system, code, code_text, concept, loinc, value_type, value_text, value_num, unit, effective_at, source_message_id, facility_id, status, flagged_fetal_sex, created_at) VALUES {}",
                    rows.join(",")
                ))
                .map_err(mch_chain::error::ServiceError::from)?;
                i += 1000;
            }
            Ok::<_, mch_chain::error::ServiceError>(())
        })
        .await
        .unwrap();
        done += n;
    }
    println!(
        "  seeded {patients} patients and {observations} observations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    person_ids
}

fn observation(patient: &str, i: usize) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-11-20T08:00:00+08:00",
        "valueQuantity": {"value": 100 + (i % 40), "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}
    })
}

async fn run(url: &str, label: &str) {
    let observations = env("MCH_BENCH_OBSERVATIONS", 1_000_000);
    let patients = env("MCH_BENCH_PATIENTS", 2000).max(1);
    let clients = env("MCH_BENCH_CLIENTS", 32);
    let seconds = env("MCH_BENCH_SECONDS", 20) as u64;
    let searches = env("MCH_BENCH_SEARCHES", 400);
    let settings = Settings::for_url(url);
    let app = Application::build(&settings).unwrap();
    let base = format!("http://127.0.0.1:{}/fhir", app.http_port());
    let db = app.db();
    tokio::spawn(app.run_until_stopped());
    let f = mch_chain::facility::service::add(
        &db,
        NewFacility {
            code: "COUNTY".into(),
            name: "县妇幼保健院".into(),
            level: "county".into(),
            kind: "mch_centre".into(),
            jurisdiction: "340524".into(),
            township_code: None,
            capabilities: vec![],
        },
    )
    .await
    .unwrap();
    let token = mch_chain::auth::service::issue_token(&db, "COUNTY", "bench HIS")
        .await
        .unwrap();
    println!("{label}:");
    let person_ids = Arc::new(seed(&db, f.id.clone(), patients, observations).await);

    // 50/50 create + read from concurrent clients for a fixed time.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    census::ON.store(std::env::var("MCH_BENCH_SQL").is_ok(), Ordering::Relaxed);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..clients {
        let (http, base, token, stop, persons) = (
            http.clone(),
            base.clone(),
            token.clone(),
            stop.clone(),
            person_ids.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut creates = Vec::new();
            let mut reads = Vec::new();
            let mut mine: Vec<String> = Vec::new();
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let patient = &persons[i % persons.len()];
                let t0 = Instant::now();
                let r = http
                    .post(format!("{base}/Observation"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(observation(patient, i).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                let v: Value = r.json().await.unwrap();
                creates.push(t0.elapsed());
                mine.push(v["id"].as_str().unwrap().to_string());
                let id = &mine[(i * 7919) % mine.len()];
                let t1 = Instant::now();
                let r = http
                    .get(format!("{base}/Observation/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
                reads.push(t1.elapsed());
                i += clients;
            }
            (creates, reads)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut creates = Vec::new();
    let mut reads = Vec::new();
    for t in tasks {
        let (c, r) = t.await.unwrap();
        creates.extend(c);
        reads.extend(r);
    }
    let secs = started.elapsed().as_secs_f64();
    if census::ON.swap(false, Ordering::Relaxed) {
        census::report(creates.len() + reads.len());
    }
    let mut all: Vec<Duration> = creates.iter().chain(reads.iter()).copied().collect();
    all.sort();
    creates.sort();
    reads.sort();
    let stats = db.writer_stats();
    println!(
        "  {clients} clients, 50/50 create+read for {seconds} s: {:>6.0} req/s ({} creates, {} reads)  p50 {:.2} ms  p99 {:.2} ms  | create p99 {:.2} ms  read p99 {:.2} ms  ({:.1} units/commit)",
        all.len() as f64 / secs,
        creates.len(),
        reads.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&creates, 0.99),
        pct(&reads, 0.99),
        stats.units as f64 / stats.commits.max(1) as f64
    );

    // Search latency: one patient's observations since a date, against the full table.
    let mut lat = Vec::with_capacity(searches);
    let mut matches = 0u64;
    for s in 0..searches {
        let patient = &person_ids[(s * 7919) % person_ids.len()];
        let t0 = Instant::now();
        let r = http
            .get(format!(
                "{base}/Observation?patient=Patient/{patient}&date=ge2026-06-01&_count=50"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        matches += v["total"].as_u64().unwrap_or(0);
        lat.push(t0.elapsed());
    }
    lat.sort();
    println!(
        "  search Observation?patient=…&date=ge2026-06-01&_count=50 over {observations} rows: p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  (mean {:.0} matches)",
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        matches as f64 / searches.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    if std::env::var("MCH_BENCH_SQL").is_ok() {
        census::install();
    }
    run(&format!("sqlite://{}", tmp.path().join("fhir.db").display()), "SQLite").await;
    if let Ok(admin) = std::env::var("MCH_BENCH_DATABASE_URL") {
        let name = format!("fhir_bench_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').unwrap().0.to_string();
        run(&format!("{base}/{name}"), "PostgreSQL").await;
        let _ = c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
