//! The township worklist of children (issue 11): `child::service::worklist` for a township
//! clinician, with `MCH_BENCH_CHILDREN` children (100,000) in `MCH_BENCH_TOWNSHIPS` townships
//! (100) of one county, each with visits and programme doses along her schedule; every listed
//! child audited (the audit rows committed before the answer, as in use).
//!
//! Run: `cargo bench --bench child_worklist` (SQLite in target/tmp); with
//! `MCH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/postgres` also on PostgreSQL.
//! `MCH_BENCH_RUNS` (200). Prints p50 / p95 / max; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench binary: a failure should stop it loudly

use std::time::Instant;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use mch_chain::Application;
use mch_chain::auth::model::Role;
use mch_chain::config::Settings;
use mch_chain::facility::model::NewFacility;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn seed(db: &mch_chain::storage::Db, facility_id: String, children: usize, townships: usize) {
    let started = Instant::now();
    let today = mch_chain::ids::today_china();
    let per_txn = 5_000;
    let mut done = 0;
    while done < children {
        let n = per_txn.min(children - done);
        let fid = facility_id.clone();
        let base = done;
        db.write(move |c| {
            let mut persons = Vec::new();
            let mut kids = Vec::new();
            let mut visits = Vec::new();
            let mut doses = Vec::new();
            for k in 0..n {
                let seq = base + k;
                let township = format!("340524{:03}", 101 + seq % townships);
                // Ages spread over 0–6 years.
                let age = (seq * 7919) % 2190;
                let born = today - chrono::Days::new(age as u64);
                let (mother, child) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
                persons.push(format!(
                    "('{mother}', '母亲{seq}', 'female', '1995-01-01', '340524', '{township}', '{fid}', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
                ));
                persons.push(format!(
                    "('{child}', '儿童{seq}', '{}', '{born}', '340524', '{township}', '{fid}', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)",
                    if seq % 2 == 0 { "female" } else { "male" }
                ));
                kids.push(format!(
                    "('{child}', '{mother}', NULL, '{born} 02:00:00', TRUE, 1, 1, 275, 3200, 50.0, 9, 10, '', '[]', '[]', NULL, '县医院', NULL, NULL, '340524', '{township}', 'bench', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
                ));
                // The contacts that have opened, one in three missed.
                for (i, d) in [3u64, 30, 95, 185, 245, 370, 550, 735, 915, 1100, 1465, 1830].iter().enumerate() {
                    if *d > age as u64 || (seq + i) % 3 == 0 {
                        continue;
                    }
                    let day = born + chrono::Days::new(*d);
                    visits.push(format!(
                        "('{}', '{child}', '{day}', {d}, 8.0, 70.0, 'lying', NULL, NULL, '', '[]', '', NULL, NULL, NULL, '', '', '', NULL, '{fid}', 'bench', '2026-01-01 00:00:00', '340524', '{township}')",
                        uuid::Uuid::now_v7()
                    ));
                }
                for (code, d) in [("HepB", 0u64), ("BCG", 0), ("HepB", 32), ("IPV", 62), ("DTaP", 95), ("MMR", 245), ("DTaP", 550)] {
                    if d > age as u64 {
                        continue;
                    }
                    let at = born + chrono::Days::new(d);
                    doses.push(format!(
                        "('{}', '{child}', '340524', '{township}', 'completed', 'urn:mch-chain:nip-vaccine', '{code}', '{code}', '{at}', '{at} 02:00:00', 'L1', '{fid}', 'bench', NULL, '2026-01-01 00:00:00')",
                        uuid::Uuid::now_v7()
                    ));
                }
            }
            let q = |c: &mut mch_chain::storage::AnyConnection, head: &str, rows: &[String]| -> Result<(), mch_chain::error::ServiceError> {
                for chunk in rows.chunks(500) {
                    c.batch_execute(&format!("{head} VALUES {}", chunk.join(",")))
                        .map_err(mch_chain::error::ServiceError::from)?;
                }
                Ok(())
            };
            q(c, "INSERT INTO persons (id, name, sex, birth_date, jurisdiction, township_code, created_by_facility_id, created_at, updated_at, version)", &persons)?;
            q(c, "INSERT INTO children (person_id, mother_id, pregnancy_id, birth_at, birth_time_known, birth_order, plurality, gestation_days, birth_weight_g, birth_length_cm, apgar_1, apgar_5, malformations, conditions, exposures, discharge_date, birth_facility, certificate_number, certificate, jurisdiction, township_code, recorded_by, created_at, updated_at, version)", &kids)?;
            q(c, "INSERT INTO child_visits (id, child_id, visit_date, age_days, weight_kg, length_cm, position, head_circumference_cm, feeding, development_warning, rickets_signs, exam, hb_g_l, hearing, vision, illness, advice, referral, next_appointment, facility_id, recorded_by, recorded_at, jurisdiction, township_code)", &visits)?;
            q(c, "INSERT INTO immunizations (id, person_id, jurisdiction, township_code, status, vaccine_system, vaccine_code, vaccine_text, occurrence, occurrence_at, lot_number, facility_id, recorded_by, received, created_at)", &doses)?;
            Ok::<_, mch_chain::error::ServiceError>(())
        })
        .await
        .unwrap();
        done += n;
    }
    println!(
        "  seeded {children} children in {townships} townships in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn run(url: &str, label: &str) {
    let children = env("MCH_BENCH_CHILDREN", 100_000);
    let townships = env("MCH_BENCH_TOWNSHIPS", 100).max(1);
    let runs = env("MCH_BENCH_RUNS", 200).max(1);
    let settings = Settings::for_url(url);
    let app = Application::build(&settings).unwrap();
    let db = app.db();
    tokio::spawn(app.run_until_stopped());
    let f = mch_chain::facility::service::add(
        &db,
        NewFacility {
            code: "TWN-1".into(),
            name: "一号乡镇卫生院".into(),
            level: "township".into(),
            kind: "health_centre".into(),
            jurisdiction: "340524".into(),
            township_code: Some("340524101".into()),
            capabilities: vec![],
        },
    )
    .await
    .unwrap();
    println!("{label}:");
    seed(&db, f.id.clone(), children, townships).await;
    let actor = mch_chain::auth::service::system_actor(f, Role::Clinician);
    let mut times = Vec::with_capacity(runs);
    let mut listed = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let w = mch_chain::child::service::worklist(&db, &actor, 100).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        listed = w.overdue_total + w.due_total;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "  township worklist ({} children in the township, {listed} with something to chase, first 100 shown and audited): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {runs} runs",
        children / townships,
        pct(0.5),
        pct(0.95),
        times[times.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    run(&format!("sqlite://{}", tmp.path().join("child.db").display()), "SQLite").await;
    if let Ok(admin) = std::env::var("MCH_BENCH_DATABASE_URL") {
        let name = format!("child_bench_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').unwrap().0.to_string();
        run(&format!("{base}/{name}"), "PostgreSQL").await;
        let _ = c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
