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
async fn parallel_password_guesses_all_count_towards_the_wait() {
    // A long base delay, so that the wait cannot run out before the last attempt.
    let app = crate::helpers::spawn_app_with(|s| s.login_base_delay_secs = 30).await;
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
    // Five guesses are free, the sixth starts a wait: no other may be checked meanwhile.
    assert!(refused >= 19, "at most 6 guesses may be checked: {statuses:?}");
    let mut c = app.client();
    assert_eq!(
        c.login(&user, crate::helpers::PASSWORD).await.status(),
        429,
        "the address waits, even for the right password"
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

/// Reads run on pooled connections that cannot write; their audit rows go through the writer
/// (`audit::service::read_audited`) before the answer, and the rows of a failed read are not kept.
#[tokio::test]
async fn pooled_connections_cannot_write_and_audited_reads_keep_their_audit_rows_in_the_chain() {
    use mch_chain::audit::service::{read_audited, record};
    use mch_chain::auth::model::Role;
    use mch_chain::error::AuditTarget;
    use mch_chain::storage::schema::audit_events::dsl as a;

    let app = spawn_app().await;
    let refused = app.db.read(|c| insert_facility(c, "R-WRITE")).await;
    assert!(refused.is_err(), "a pooled connection must refuse a write");

    let actor = app.system_actor("COUNTY", Role::Clinician).await;
    let target = |id: &str| AuditTarget {
        entity_type: "read_audited_test",
        entity_id: Some(id.to_string()),
        person_id: None,
    };
    let (a1, t1) = (actor.clone(), target("kept"));
    let n: i64 = read_audited(&app.db, move |c| {
        let n = f::facilities.count().get_result::<i64>(c).map_err(ServiceError::from)?;
        record(c, &a1, "read", t1, "test read")?;
        Ok::<_, ServiceError>(n)
    })
    .await
    .unwrap();
    assert!(n >= 5, "the read itself answered: {n}");
    let (a2, t2) = (actor.clone(), target("dropped"));
    let failed = read_audited(&app.db, move |c| {
        record(c, &a2, "read", t2, "test read")?;
        Err::<(), _>(ServiceError::Conflict("the read failed after recording".into()))
    })
    .await;
    assert!(matches!(failed, Err(ServiceError::Conflict(_))));

    let rows: Vec<String> = app
        .db
        .read(|c| {
            a::audit_events
                .filter(a::entity_type.eq("read_audited_test"))
                .select(a::entity_id.assume_not_null())
                .load(c)
                .map_err(ServiceError::from)
        })
        .await
        .unwrap();
    assert_eq!(rows, vec!["kept".to_string()]);
    let report = app.db.read(mch_chain::audit::service::verify_chain).await.unwrap();
    assert!(report.ok, "{report:?}");
}
