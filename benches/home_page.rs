//! The home page of a township clinician (issue 16: "page time stays < 100 ms server side with the
//! demo region"): the demo region (`demo::seed_if_empty`, through the services) plus
//! `MCH_BENCH_WOMEN` women (10,000) bulk-loaded into 东关镇 (340524101), each with a pregnancy at a
//! spread gestational age (one in seven delivered in the last four months, her postpartum visits
//! and her baby's record along their schedules), antenatal visits along the schedule with one in
//! three missed, a booking screening (one in four positive, some not yet graded), confirmed grades
//! with open high-risk cases for the orange and red ones, one in twenty with a re-grade proposal
//! waiting for confirmation, and `MCH_BENCH_COUPLES` couples (500) with a pre-pregnancy follow-up.
//!
//! Measured: `GET /` over HTTP from the same process (the real actix app, logged in through
//! `POST /login` as the township clinician `doctor.dongguan`, then as the county clinician
//! `doctor.county`, who sees the whole county and the grade proposals), from sending the request to the last byte of the
//! body; then each service call the handler makes, called alone with the session's actor, to show
//! where the time goes.
//!
//! Run: `cargo bench --bench home_page` (SQLite in target/tmp); with
//! `MCH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/postgres` also on PostgreSQL (a fresh
//! database, dropped afterwards). `MCH_BENCH_RUNS` (200) page loads, `MCH_BENCH_STEP_RUNS` (50)
//! calls of each service. Prints p50 / p95 / p99 / max; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench binary: a failure should stop it loudly

use std::future::Future;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use mch_chain::Application;
use mch_chain::auth::model::Actor;
use mch_chain::config::Settings;
use mch_chain::error::ServiceError;
use mch_chain::storage::{AnyConnection, Db};

const COUNTY: &str = "340524";
const TOWNSHIP: &str = "340524101";
const FACILITY: &str = "TWN-DONGGUAN";
const TOWNSHIP_USER: &str = "doctor.dongguan";
const COUNTY_USER: &str = "doctor.county";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// p50 / p95 / p99 / max of some times in ms.
fn figures(times: &mut [f64]) -> String {
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.95),
        pct(0.99),
        times[times.len() - 1]
    )
}

/// Rows of one table, inserted 500 to a statement.
fn insert(c: &mut AnyConnection, head: &str, rows: &[String]) -> Result<(), ServiceError> {
    for chunk in rows.chunks(500) {
        c.batch_execute(&format!("{head} VALUES {}", chunk.join(",")))
            .map_err(ServiceError::from)?;
    }
    Ok(())
}

#[derive(Default)]
struct Rows {
    persons: Vec<String>,
    pregnancies: Vec<String>,
    deliveries: Vec<String>,
    visits: Vec<String>,
    screenings: Vec<String>,
    assessments: Vec<String>,
    cases: Vec<String>,
    children: Vec<String>,
    child_visits: Vec<String>,
    doses: Vec<String>,
    couples: Vec<String>,
    exams: Vec<String>,
    followups: Vec<String>,
}

impl Rows {
    fn write(&self, c: &mut AnyConnection) -> Result<(), ServiceError> {
        insert(
            c,
            "INSERT INTO persons (id, name, sex, birth_date, phone, jurisdiction, township_code, created_by_facility_id, created_at, updated_at, version)",
            &self.persons,
        )?;
        insert(
            c,
            "INSERT INTO pregnancies (id, person_id, status, booking_date, booking_facility_id, lmp, ultrasound_date, ultrasound_ga_days, dating_method, edd, gravidity, parity, jurisdiction, township_code, created_by, created_at, updated_at, version)",
            &self.pregnancies,
        )?;
        insert(
            c,
            "INSERT INTO deliveries (id, pregnancy_id, person_id, delivery_date, discharge_date, facility_name, mode, live_births, stillbirths, maternal_death, complications, recorded_by, jurisdiction, township_code, created_at)",
            &self.deliveries,
        )?;
        insert(
            c,
            "INSERT INTO visits (id, pregnancy_id, person_id, kind, visit_date, facility_id, weight_kg, systolic_mmhg, diastolic_mmhg, hb_g_l, complaints, advice, jurisdiction, township_code, recorded_by, created_at, postpartum_recovered)",
            &self.visits,
        )?;
        insert(
            c,
            "INSERT INTO risk_screenings (id, pregnancy_id, person_id, positive, items, screened_by, facility_id, follow_up_due, graded_at, jurisdiction, township_code, created_at)",
            &self.screenings,
        )?;
        insert(
            c,
            "INSERT INTO risk_assessments (id, pregnancy_id, person_id, status, colour, purple, factors, removed, facts, rule_set, trigger, note, assessed_by, facility_id, decided_by, decided_at, jurisdiction, township_code, created_at)",
            &self.assessments,
        )?;
        insert(
            c,
            "INSERT INTO risk_cases (id, pregnancy_id, person_id, status, colour, purple, case_manager_id, delivery_level, delivery_facility_id, follow_up_days, next_follow_up, last_contact, opened_at, opened_by, escalation, jurisdiction, township_code, version)",
            &self.cases,
        )?;
        insert(
            c,
            "INSERT INTO children (person_id, mother_id, pregnancy_id, birth_at, birth_time_known, birth_order, plurality, gestation_days, birth_weight_g, birth_length_cm, apgar_1, apgar_5, malformations, conditions, exposures, discharge_date, birth_facility, certificate_number, certificate, jurisdiction, township_code, recorded_by, created_at, updated_at, version)",
            &self.children,
        )?;
        insert(
            c,
            "INSERT INTO child_visits (id, child_id, visit_date, age_days, weight_kg, length_cm, position, head_circumference_cm, feeding, development_warning, rickets_signs, exam, hb_g_l, hearing, vision, illness, advice, referral, next_appointment, facility_id, recorded_by, recorded_at, jurisdiction, township_code)",
            &self.child_visits,
        )?;
        insert(
            c,
            "INSERT INTO immunizations (id, person_id, jurisdiction, township_code, status, vaccine_system, vaccine_code, vaccine_text, occurrence, occurrence_at, lot_number, facility_id, recorded_by, received, created_at)",
            &self.doses,
        )?;
        insert(
            c,
            "INSERT INTO couples (id, wife_id, husband_id, marriage_date, marriage_cert_no, wife_remarriage, husband_remarriage, wife_province, husband_province, status, ended_on, end_reason, jurisdiction, township_code, created_at, created_by, version)",
            &self.couples,
        )?;
        insert(
            c,
            "INSERT INTO prepregnancy_exams (id, couple_id, exam_date, wife_findings, husband_findings, risk_class, factors, advice, rule_set, facility_id, recorded_by, created_at)",
            &self.exams,
        )?;
        insert(
            c,
            "INSERT INTO prepregnancy_followups (id, couple_id, exam_id, kind, due, done_on, result, note, pregnancy_id, recorded_by, jurisdiction, township_code)",
            &self.followups,
        )?;
        Ok(())
    }

    fn person(&mut self, id: uuid::Uuid, name: &str, sex: &str, born: NaiveDate, fid: &str) {
        self.persons.push(format!(
            "('{id}', '{name}', '{sex}', '{born}', '139{:08}', '{COUNTY}', '{TOWNSHIP}', '{fid}', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)",
            id.as_u128() % 100_000_000
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        preg: uuid::Uuid,
        woman: uuid::Uuid,
        kind: &str,
        day: NaiveDate,
        fid: &str,
        seq: usize,
        recovered: &str,
    ) {
        self.visits.push(format!(
            "('{}', '{preg}', '{woman}', '{kind}', '{day}', '{fid}', {:.1}, {}, {}, {}, '', '注意营养，按时产检', '{COUNTY}', '{TOWNSHIP}', 'bench', '{day} 02:00:00', {recovered})",
            id(),
            55.0 + (seq % 20) as f64,
            100 + seq % 38,
            60 + seq % 28,
            95 + seq % 40,
        ));
    }
}

/// One woman `seq` of the township: her person, pregnancy, visits, screening, grades, case, and a
/// baby when she has delivered.
fn woman(r: &mut Rows, seq: usize, today: NaiveDate, fid: &str, case_manager: &str) {
    let (w, preg) = (id(), id());
    r.person(
        w,
        &format!("孕妇{seq}"),
        "female",
        NaiveDate::from_ymd_opt(1986 + (seq % 18) as i32, 1 + (seq % 12) as u32, 1 + (seq % 28) as u32).unwrap(),
        fid,
    );
    let spread = (seq * 7919) % 10_007;
    let delivered = seq % 7 == 3;
    // Active: 4–42 weeks today; delivered: 1–120 days ago, at 38–40 weeks.
    let (lmp, ga_end, delivery) = if delivered {
        let delivery = today - Days::new(1 + (spread % 120) as u64);
        let ga = 266 + (seq % 20) as u64;
        (delivery - Days::new(ga), ga as i64, Some(delivery))
    } else {
        let ga = 28 + (spread % 267) as u64;
        (today - Days::new(ga), ga as i64, None)
    };
    let edd = lmp + Days::new(280);
    let booking_ga = (42 + (seq * 31) % 99).min(ga_end as usize) as i64;
    let booking = lmp + Days::new(booking_ga as u64);
    let gravidity = 1 + seq % 4;
    r.pregnancies.push(format!(
        "('{preg}', '{w}', '{}', '{booking}', '{fid}', '{lmp}', NULL, NULL, 'lmp', '{edd}', {gravidity}, {}, '{COUNTY}', '{TOWNSHIP}', 'bench', '{booking} 02:00:00', '{booking} 02:00:00', 1)",
        if delivered { "delivered" } else { "active" },
        (seq / 4) % gravidity,
    ));
    // The booking visit, then one in each contact window that has opened, one in three missed.
    r.visit(preg, w, "antenatal_first", booking, fid, seq, "NULL");
    let mut last_visit = booking;
    for (i, c) in mch_chain::visits::schedule::national().contacts.iter().enumerate() {
        if c.from_days <= booking_ga || c.from_days > ga_end || (seq + i).is_multiple_of(3) {
            continue;
        }
        let day = lmp + Days::new((c.from_days + (seq as i64 % (c.to_days - c.from_days + 1))).min(ga_end) as u64);
        r.visit(preg, w, "antenatal", day, fid, seq + i, "NULL");
        last_visit = day;
    }
    if let Some(delivery) = delivery {
        let discharge = (delivery + Days::new(2)).min(today);
        r.deliveries.push(format!(
            "('{}', '{preg}', '{w}', '{delivery}', '{discharge}', '示范县妇幼保健院', '{}', 1, 0, FALSE, '', 'bench', '{COUNTY}', '{TOWNSHIP}', '{delivery} 12:00:00')",
            id(),
            if seq.is_multiple_of(3) { "caesarean" } else { "vaginal" },
        ));
        // The home visit a week after discharge (two in three), the 42-day check (one in two).
        let since = (today - delivery).num_days();
        if since > 10 && !seq.is_multiple_of(3) {
            r.visit(preg, w, "postpartum_home", discharge + Days::new(3), fid, seq, "NULL");
        }
        if since > 45 && seq.is_multiple_of(2) {
            r.visit(preg, w, "postpartum_42d", delivery + Days::new(43), fid, seq, "TRUE");
        }
        // Her baby, with the child visits and doses of the contacts that have opened.
        let kid = id();
        r.person(
            kid,
            &format!("孕妇{seq}之子"),
            if seq.is_multiple_of(2) { "female" } else { "male" },
            delivery,
            fid,
        );
        r.children.push(format!(
            "('{kid}', '{w}', '{preg}', '{delivery} 02:00:00', TRUE, 1, 1, {ga_end}, 3200, 50.0, 9, 10, '', '[]', '[]', '{discharge}', '示范县妇幼保健院', NULL, NULL, '{COUNTY}', '{TOWNSHIP}', 'bench', '{delivery} 12:00:00', '{delivery} 12:00:00', 1)"
        ));
        for (i, d) in [3u64, 30, 95].iter().enumerate() {
            if *d as i64 > since || (seq + i).is_multiple_of(3) {
                continue;
            }
            let day = delivery + Days::new(*d);
            r.child_visits.push(format!(
                "('{}', '{kid}', '{day}', {d}, 4.5, 55.0, 'lying', NULL, NULL, '', '[]', '', NULL, NULL, NULL, '', '', '', NULL, '{fid}', 'bench', '{day} 02:00:00', '{COUNTY}', '{TOWNSHIP}')",
                id()
            ));
        }
        for (code, d) in [("HepB", 0u64), ("BCG", 0), ("HepB", 32), ("IPV", 62), ("DTaP", 95)] {
            if d as i64 > since {
                continue;
            }
            let at = delivery + Days::new(d);
            r.doses.push(format!(
                "('{}', '{kid}', '{COUNTY}', '{TOWNSHIP}', 'completed', 'urn:mch-chain:nip-vaccine', '{code}', '{code}', '{at}', '{at} 02:00:00', 'L1', '{fid}', 'bench', NULL, '{at} 02:00:00')",
                id()
            ));
        }
    }
    // The booking screening: one in four positive; positive ones are graded within two weeks,
    // except one woman in sixty (still pregnant) whose grading result the township is waiting for.
    let positive = seq.is_multiple_of(4);
    let waiting = positive && !delivered && seq.is_multiple_of(60);
    r.screenings.push(format!(
        "('{}', '{preg}', '{w}', {}, '{}', 'bench', '{fid}', {}, {}, '{COUNTY}', '{TOWNSHIP}', '{booking} 02:00:00')",
        id(),
        if positive { "TRUE" } else { "FALSE" },
        if positive {
            r#"[{"code":"S1.3","reason":"体质指数（BMI）>25 或 <18.5"}]"#
        } else {
            "[]"
        },
        if positive {
            format!("'{}'", booking + Days::new(14))
        } else {
            "NULL".into()
        },
        if positive && !waiting {
            format!("'{} 02:00:00'", booking + Days::new(7))
        } else {
            "NULL".into()
        },
    ));
    if positive && !waiting {
        // Graded: three in five yellow, one orange, one red; orange and red are managed as cases.
        let (colour, code) = match (seq / 4) % 5 {
            0..=2 => ("yellow", "Y1.5"),
            3 => ("orange", "O3.7"),
            _ => ("red", "R2.2"),
        };
        let graded = booking + Days::new(7);
        r.assessments.push(format!(
            "('{}', '{preg}', '{w}', 'confirmed', '{colour}', FALSE, '[{{\"code\":\"{code}\",\"colour\":\"{colour}\",\"reason\":\"筛查阳性\"}}]', '[]', '{{}}', '{}', 'grading', '', 'bench', '{fid}', 'bench', '{graded} 02:00:00', '{COUNTY}', '{TOWNSHIP}', '{graded} 02:00:00')",
            id(),
            mch_chain::risk::model::DEFAULT_RULE_SET,
        ));
        if colour != "yellow" && !delivered {
            // Next follow-up from a month ago to two weeks ahead: some overdue, to escalate.
            let next = today - Days::new(30) + Days::new((spread % 45) as u64);
            let days = if colour == "red" { 7 } else { 14 };
            r.cases.push(format!(
                "('{}', '{preg}', '{w}', 'active', '{colour}', FALSE, {case_manager}, '{}', NULL, {days}, '{next}', '{last_visit}', '{graded} 02:00:00', '赵医生', 0, '{COUNTY}', '{TOWNSHIP}', 1)",
                id(),
                if colour == "red" { "city" } else { "county" },
            ));
        }
    }
    // One in twenty: a re-grade proposed after her last visit, waiting for a clinician.
    if seq % 20 == 1 {
        r.assessments.push(format!(
            "('{}', '{preg}', '{w}', 'proposed', 'yellow', FALSE, '[{{\"code\":\"Y1.5\",\"colour\":\"yellow\",\"reason\":\"血红蛋白 95 g/L\"}}]', '[]', '{{}}', '{}', '{}', '', 'system', '{fid}', NULL, NULL, '{COUNTY}', '{TOWNSHIP}', '{last_visit} {:02}:{:02}:00')",
            id(),
            mch_chain::risk::model::DEFAULT_RULE_SET,
            if delivered { "产后访视" } else { "产前检查" },
            seq % 24,
            seq % 60,
        ));
    }
}

/// A couple of the township before pregnancy: both partners, the pre-pregnancy screening, and its
/// open 早孕随访, due from two months ago to two months ahead (half of them overdue).
fn couple(r: &mut Rows, k: usize, today: NaiveDate, fid: &str) {
    let (wife, husband, cid, exam) = (id(), id(), id(), id());
    r.person(
        wife,
        &format!("备孕妻子{k}"),
        "female",
        NaiveDate::from_ymd_opt(1996, 5, 1).unwrap(),
        fid,
    );
    r.person(
        husband,
        &format!("备孕丈夫{k}"),
        "male",
        NaiveDate::from_ymd_opt(1994, 5, 1).unwrap(),
        fid,
    );
    let exam_day = today - Days::new(120 + (k % 60) as u64);
    r.couples.push(format!(
        "('{cid}', '{wife}', '{husband}', '2025-10-01', NULL, FALSE, FALSE, '34', '34', 'current', NULL, NULL, '{COUNTY}', '{TOWNSHIP}', '{exam_day} 02:00:00', 'bench', 1)"
    ));
    r.exams.push(format!(
        "('{exam}', '{cid}', '{exam_day}', '{{}}', '{{}}', '{}', '[]', '', 'prepregnancy-2010', '{fid}', 'bench', '{exam_day} 02:00:00')",
        if k.is_multiple_of(5) { "high" } else { "general" }
    ));
    let due = today - Days::new(60) + Days::new((k % 120) as u64);
    r.followups.push(format!(
        "('{}', '{cid}', '{exam}', 'early_pregnancy', '{due}', NULL, NULL, NULL, NULL, NULL, '{COUNTY}', '{TOWNSHIP}')",
        id()
    ));
}

async fn seed(db: &Db, women: usize, couples: usize) {
    let started = Instant::now();
    mch_chain::demo::seed_if_empty(db)
        .await
        .unwrap()
        .expect("an empty database");
    println!(
        "  demo region seeded through the services in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let fid = mch_chain::facility::service::by_code(db, FACILITY).await.unwrap().id;
    // The open cases are managed by the county MCH centre's clinician, who graded them.
    let case_manager: String = db
        .read(|c| Ok::<_, ServiceError>(mch_chain::auth::repo::user_by_username(c, COUNTY_USER)?))
        .await
        .unwrap()
        .map(|u| format!("'{}'", u.id))
        .expect("the county clinician");
    let today = mch_chain::ids::today_china();
    let per_txn = 2_000;
    let mut done = 0;
    while done < women.max(couples) {
        let (base, fid, cm) = (done, fid.clone(), case_manager.clone());
        db.write(move |c| {
            let mut r = Rows::default();
            for seq in base..(base + per_txn).min(women) {
                woman(&mut r, seq, today, &fid, &cm);
            }
            for k in base..(base + per_txn).min(couples) {
                couple(&mut r, k, today, &fid);
            }
            r.write(c)
        })
        .await
        .unwrap();
        done += per_txn;
    }
    println!(
        "  seeded {women} women and {couples} couples in 东关镇 ({TOWNSHIP}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Time `runs` calls of a service with the session's actor.
async fn step<T, F, Fut>(label: &str, runs: usize, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f().await.unwrap());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("    {label:<44} {}", figures(&mut times));
    last.unwrap()
}

async fn steps(db: &Db, actor: &Actor, token: &str, runs: usize) {
    use mch_chain::{child, couple, identity, risk, visits};
    println!("  each service call of the handler alone ({runs} runs each):");
    step("session (cookie → actor)", runs, || {
        mch_chain::auth::service::session(db, token, Some("127.0.0.1".into()))
    })
    .await;
    let w = step("visits::worklist (100 shown)", runs, || {
        visits::service::worklist(db, actor, 100)
    })
    .await;
    step("identity::recent_card_reads", runs, || {
        identity::service::recent_card_reads(db, actor)
    })
    .await;
    let t = step("risk::tasks (proposals page 1, screenings, cases)", runs, || {
        risk::service::tasks(db, actor, 0, 10)
    })
    .await;
    let ch = step("child::worklist (100 shown)", runs, || {
        child::service::worklist(db, actor, 100)
    })
    .await;
    let fr = step("child::frail_tasks", runs, || child::service::frail_tasks(db, actor)).await;
    let co = step("couple::overdue_tasks (10 shown)", runs, || {
        couple::service::overdue_tasks(db, actor, 10)
    })
    .await;
    println!(
        "  what the page lists: {} women overdue and {} due ({} shown), {} proposals to confirm ({} on page 1), {} positive screenings waiting, {} cases for me ({} named), {} children overdue and {} due, {} frail-child tasks, {} couple follow-ups overdue",
        w.overdue_total,
        w.due_total,
        w.items.len(),
        t.proposals_total,
        t.proposals.len(),
        t.screenings_total,
        t.cases_total,
        t.cases.len(),
        ch.overdue_total,
        ch.due_total,
        fr.len(),
        co.followups_total + co.registrations_total,
    );
}

async fn run(url: &str, label: &str) {
    let women = env("MCH_BENCH_WOMEN", 10_000);
    let couples = env("MCH_BENCH_COUPLES", 500);
    let runs = env("MCH_BENCH_RUNS", 200).max(1);
    let step_runs = env("MCH_BENCH_STEP_RUNS", 50).max(1);
    let settings = Settings::for_url(url);
    let app = Application::build(&settings).unwrap();
    let base = format!("http://127.0.0.1:{}", app.http_port());
    let db = app.db();
    tokio::spawn(app.run_until_stopped());
    println!("{label}:");
    seed(&db, women, couples).await;
    if label == "PostgreSQL" {
        // Planner statistics, as autovacuum keeps them on a live database after a bulk load.
        db.write(|c| c.batch_execute("ANALYZE").map_err(ServiceError::from))
            .await
            .unwrap();
    }

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The township clinician (her township's worklist; she may not grade), then the county
    // clinician (the whole county, and the grade proposals to confirm).
    for (username, markers) in [
        (TOWNSHIP_USER, &[r#"id="worklist-card""#, r#"id="worklist""#][..]),
        (
            COUNTY_USER,
            &[r#"id="worklist-card""#, r#"id="worklist""#, r#"id="proposals-table""#][..],
        ),
    ] {
        page(&http, &base, &db, username, markers, runs, step_runs).await;
    }
}

/// Log in as `username` through the login form (the cookie is `Secure`, so it is carried by hand
/// over plain http, as tests/api/helpers.rs does), time `GET /`, then each service call.
async fn page(
    http: &reqwest::Client,
    base: &str,
    db: &Db,
    username: &str,
    markers: &[&str],
    runs: usize,
    step_runs: usize,
) {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", username), ("password", mch_chain::demo::DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login of {username} failed");
    let token = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("mch_session=")?.split(';').next())
        .next()
        .expect("a session cookie")
        .to_string();
    let cookie = format!("mch_session={token}");
    let get = || async {
        let r = http
            .get(format!("{base}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap())
    };
    let (status, body) = get().await;
    assert_eq!(status, 200, "GET / answered {status}: {body}");
    for marker in markers {
        assert!(body.contains(marker), "the home page of {username} has no {marker}");
    }
    for _ in 0..3 {
        get().await;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let (status, body) = get().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            status == 200 && body.contains(r#"id="worklist-card""#),
            "GET / answered {status}"
        );
    }
    println!(
        "  {username}: GET / over HTTP, in-process client ({} KiB page): {} over {runs} runs",
        body.len() / 1024,
        figures(&mut times)
    );
    let actor = mch_chain::auth::service::session(db, &token, Some("127.0.0.1".into()))
        .await
        .unwrap()
        .expect("the session")
        .0;
    steps(db, &actor, &token, step_runs).await;
}

#[tokio::main]
async fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir_in(&dir).unwrap();
    run(&format!("sqlite://{}", tmp.path().join("home.db").display()), "SQLite").await;
    if let Ok(admin) = std::env::var("MCH_BENCH_DATABASE_URL") {
        let name = format!("home_bench_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').unwrap().0.to_string();
        run(&format!("{base}/{name}"), "PostgreSQL").await;
        let _ = c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
