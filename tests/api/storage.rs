//! The group-commit writer and the audit chain under concurrent use.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mch_chain::error::ServiceError;
use mch_chain::storage::schema::facilities::dsl as f;

use crate::helpers::spawn_app;

fn insert_facility(c: &mut mch_chain::storage::AnyConnection, code: &str) -> Result<(), ServiceError> {
    c.batch_execute(&format!(
        "INSERT INTO facilities (id, code, name, level, kind, jurisdiction, capabilities, created_at) \
         VALUES ('{code}', '{code}', 'x', 'county', 'clinic', '340524', '', '2026-01-01 00:00:00')"
    ))
    .map_err(|e| ServiceError::Storage(e.into()))
}

#[tokio::test]
async fn a_failing_or_panicking_unit_rolls_back_alone_and_the_others_commit() {
    let app = spawn_app().await;
    let db = app.db.clone();
    let ok1 = db.write(|c| insert_facility(c, "W-OK-1"));
    let bad = db.write(|c| {
        insert_facility(c, "W-BAD")?;
        Err::<(), _>(ServiceError::Conflict("refused after writing".into()))
    });
    let boom = db.write(|c| -> Result<(), ServiceError> {
        insert_facility(c, "W-PANIC")?;
        panic!("a bug in one unit");
    });
    let ok2 = db.write(|c| insert_facility(c, "W-OK-2"));
    let (r1, rb, rp, r2) = tokio::join!(ok1, bad, boom, ok2);
    assert!(r1.is_ok() && r2.is_ok());
    assert!(matches!(rb, Err(ServiceError::Conflict(_))));
    assert!(rp.is_err(), "the caller of a panicking unit gets an error, not a hang");
    let codes: Vec<String> = db
        .read(|c| {
            f::facilities
                .filter(f::code.like("W-%"))
                .select(f::code)
                .order(f::code)
                .load::<String>(c)
                .map_err(|e| ServiceError::Storage(e.into()))
        })
        .await
        .unwrap();
    assert_eq!(codes, vec!["W-OK-1", "W-OK-2"]);
    // The writer goes on after all that.
    db.write(|c| insert_facility(c, "W-OK-3")).await.unwrap();
    let stats = db.writer_stats();
    assert!(stats.units >= 4 && stats.commits >= 1);
}

#[tokio::test]
async fn the_audit_chain_verifies_while_records_are_being_opened() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, _) = crate::pregnancy::booked(&mut c, "审计并发", 96, 12).await;
    let writers = (0..4).map(|_| {
        let base = app.base.clone();
        let cookie = c.cookie.clone().unwrap();
        let person = person.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..15 {
                http.get(format!("{base}/api/persons/{person}"))
                    .header("cookie", format!("mch_session={cookie}"))
                    .send()
                    .await
                    .unwrap();
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    for _ in 0..20 {
        let report = app.db.read(mch_chain::audit::service::verify_chain).await.unwrap();
        assert!(report.ok, "a live system is not tampered with: {report:?}");
    }
    for w in writers {
        w.await.unwrap();
    }
    let report = app.db.read(mch_chain::audit::service::verify_chain).await.unwrap();
    assert!(report.ok && report.rows > 60, "{report:?}");
}

#[tokio::test]
async fn parallel_password_guesses_all_count_towards_the_lock() {
    let app = spawn_app().await;
    let user = crate::helpers::username("clinician", "TWN-A");
    let guesses = (0..25).map(|i| {
        let base = app.base.clone();
        let user = user.clone();
        tokio::spawn(async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(format!("{base}/login"))
                .form(&[("username", user.as_str()), ("password", &format!("guess-{i}"))])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for g in guesses.collect::<Vec<_>>() {
        statuses.push(g.await.unwrap());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 15, "at most 10 guesses may be checked: {statuses:?}");
    let mut c = app.client();
    assert_eq!(
        c.login(&user, crate::helpers::PASSWORD).await.status(),
        429,
        "locked even for the right password"
    );
}

/// The database this service opens reports the settings that make a commit survive a power cut.
#[tokio::test]
async fn the_open_database_is_in_power_cut_safe_mode() {
    let app = spawn_app().await;
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    let d = mch_chain::storage::durability(&mut conn).unwrap();
    assert!(d.check().is_ok(), "{d:?}");
    match d {
        mch_chain::storage::DurabilitySettings::Sqlite {
            journal_mode,
            synchronous,
        } => assert_eq!((journal_mode.as_str(), synchronous), ("wal", 2)),
        mch_chain::storage::DurabilitySettings::Postgres {
            synchronous_commit,
            fsync,
        } => assert_eq!((synchronous_commit.as_str(), fsync.as_str()), ("on", "on")),
    }
}
