//! Roles, jurisdiction and the audit trail (RELIABILITY.md 22, 27, 28, 29).

use serde_json::json;

use crate::helpers::{id_number, spawn_app};
use crate::pregnancy::booked;

#[tokio::test]
async fn a_township_clinician_is_refused_another_townships_woman_and_the_refusal_is_audited() {
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut a, "王秀英", 50, 12).await;
    let mut b = app.login("clinician", "TWN-B").await;
    for path in [
        format!("/persons/{person}"),
        format!("/pregnancies/{preg}"),
        format!("/pregnancies/{preg}/visits/new"),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, 403, "{path}");
        assert!(
            !p.body.contains("王秀英"),
            "nothing of her record leaks into the refusal page"
        );
    }
    for path in [format!("/api/persons/{person}"), format!("/api/pregnancies/{preg}")] {
        let (s, body) = b.get_json(&path).await;
        assert_eq!(s, 403, "{path}");
        assert!(!body.to_string().contains("王秀英"));
    }
    let (s, _) = b
        .post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"weight_kg": "60"}))
        .await;
    assert_eq!(s, 403);
    let (s, _) = b
        .post_json(
            &format!("/api/persons/{person}/pregnancies"),
            &json!({"lmp": "2026-10-01", "gravidity": "1"}),
        )
        .await;
    assert_eq!(s, 403);
    // The neighbouring county is refused too; her own county sees her.
    let mut nbr = app.login("clinician", "NBR").await;
    assert_eq!(nbr.get(&format!("/pregnancies/{preg}")).await.status, 403);
    let mut county = app.login("clinician", "COUNTY").await;
    assert_eq!(county.get(&format!("/pregnancies/{preg}")).await.status, 200);
    // The auditor finds the denied attempts for this woman in the audit table.
    let mut auditor = app.login("auditor", "PROV").await;
    let (s, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert_eq!(s, 200);
    let events = log["events"].as_array().unwrap();
    let denied: Vec<_> = events.iter().filter(|e| e["outcome"] == "denied").collect();
    assert!(
        denied
            .iter()
            .any(|e| e["actor_name"] == "clinician.twn-b" && e["entity_type"] == "person")
    );
    assert!(
        denied
            .iter()
            .any(|e| e["actor_name"] == "clinician.twn-b" && e["entity_type"] == "pregnancy")
    );
    assert!(denied.iter().any(|e| e["actor_name"] == "clinician.nbr"));
    assert!(
        events
            .iter()
            .any(|e| e["actor_name"] == "clinician.county" && e["outcome"] == "success" && e["action"] == "read")
    );
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_access_matrix_allows() {
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut a, "李桂英", 52, 12).await;
    // (role, facility, may read, may book, may record a visit)
    let matrix = [
        ("clinician", "TWN-A", true, true, true),
        ("registrar", "TWN-A", true, true, false),
        ("referral_coordinator", "COUNTY", true, false, false),
        ("clinician", "COUNTY", true, true, true),
        ("admin", "PROV", false, false, false),
        ("auditor", "PROV", false, false, false),
    ];
    for (role, fac, read, book, visit) in matrix {
        let mut c = app.login(role, fac).await;
        let (s, _) = c.get_json(&format!("/api/pregnancies/{preg}")).await;
        assert_eq!(s == 200, read, "{role}@{fac} read → {s}");
        let (s, _) = c.get_json(&format!("/api/persons/{person}")).await;
        assert_eq!(s == 200, read, "{role}@{fac} person → {s}");
        let (s, r) = c
            .post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"weight_kg": "60"}))
            .await;
        assert_eq!(s == 201, visit, "{role}@{fac} visit → {s} {r}");
        if !visit {
            assert_eq!(s, 403);
        }
        // Booking a new woman (no active pregnancy) tests the booking right alone.
        let (_, np) = a
            .post_json(
                "/api/persons",
                &json!({"name": "测试", "birth_date": "1990-01-01", "sex": "female", "confirm_not_duplicate": true}),
            )
            .await;
        let newp = np["person_id"].as_str().unwrap();
        let (s, _) = c
            .post_json(
                &format!("/api/persons/{newp}/pregnancies"),
                &json!({"lmp": crate::helpers::days_ago(50), "gravidity": "1"}),
            )
            .await;
        assert_eq!(s == 201, book, "{role}@{fac} book → {s}");
        // Search, the worklist and card reads follow the same matrix.
        let (s, _) = c.get_json("/api/persons?q=李").await;
        assert_eq!(s == 200, read, "{role}@{fac} search → {s}");
        let (s, _) = c.get_json("/api/worklist").await;
        assert_eq!(s == 200, read, "{role}@{fac} worklist → {s}");
        let register = role == "clinician" || role == "registrar";
        let card = json!({"card_number": id_number("340524", "1994-06-01", 52), "name": "李桂英", "sex_code": "2",
                          "birth_date": "1994-06-01", "id_number": id_number("340524", "1994-06-01", 52)});
        let (s, r) = c.post_json("/api/card-reads", &card).await;
        assert_eq!(s == 200, register, "{role}@{fac} card read → {s} {r}");
        // Auditors read the audit log; nobody else does.
        let (s, _) = c.get_json(&format!("/api/audit/persons/{person}")).await;
        assert_eq!(s == 200, role == "auditor", "{role} audit → {s}");
    }
}

#[tokio::test]
async fn opening_a_record_writes_who_when_what_and_from_where_in_the_same_commit() {
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut a, "朱丽", 54, 12).await;
    a.get(&format!("/pregnancies/{preg}")).await;
    a.get(&format!("/persons/{person}")).await;
    a.get(&format!("/persons?q={}", id_number("340524", "1994-06-01", 54)))
        .await;
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    let events = log["events"].as_array().unwrap();
    let mine: Vec<_> = events.iter().filter(|e| e["actor_name"] == "clinician.twn-a").collect();
    let actions: Vec<(&str, &str)> = mine
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["entity_type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("create", "person"),
        ("create", "pregnancy"),
        ("read", "pregnancy"),
        ("read", "person"),
        ("search", "person"),
    ] {
        assert!(actions.contains(&expected), "missing {expected:?} in {actions:?}");
    }
    for e in &mine {
        assert_eq!(e["actor_role"], "clinician");
        assert_eq!(e["purpose"], "treatment");
        assert_eq!(e["client_addr"], "127.0.0.1");
        assert!(e["at"].is_string());
    }
    // The audit page itself is readable by the auditor only, and shows the chain check on request.
    let page = auditor.get("/audit?verify=1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("chain-ok"));
    assert_eq!(a.get("/audit").await.status, 403);
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_and_a_tampered_row_is_named_by_audit_verify() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    booked(&mut a, "胡敏", 56, 12).await;
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mch-chain"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", app.url())
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    // The database itself refuses changes to audit rows.
    assert!(
        conn.batch_execute("UPDATE audit_events SET actor_name = 'x' WHERE seq = 3")
            .is_err()
    );
    assert!(conn.batch_execute("DELETE FROM audit_events WHERE seq = 3").is_err());
    // Someone with the power to drop the guard edits row 3: the chain check names it.
    let drop_guard = if app.url().starts_with("sqlite") {
        "DROP TRIGGER audit_events_no_update"
    } else {
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update"
    };
    conn.batch_execute(drop_guard).unwrap();
    conn.batch_execute("UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 3")
        .unwrap();
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken_seq"], 3);
}
