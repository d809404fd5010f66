//! The command line: id check, facility/user/token administration, migrations, and the
//! no-patient-data-in-logs check on a real server process (RELIABILITY.md 25).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::{Client, PASSWORD, fresh_db, id_number, spawn_app_with, username};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mch-chain"))
}

fn id_check(arg: &str) -> (i32, Value) {
    let out = bin().args(["id", "check", arg]).output().unwrap();
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn id_check_prints_the_contract_and_exits_by_validity() {
    let (code, v) = id_check(" 34052419800101001x ");
    assert_eq!(code, 0);
    assert_eq!(
        v,
        json!({"valid": true, "normalized": "34052419800101001X", "birth_date": "1980-01-01", "sex": "male"})
    );
    let (code, v) = id_check("340524800101001");
    assert_eq!(code, 0);
    assert_eq!(v["normalized"], "34052419800101001X");
    let (code, v) = id_check("340524198001010011");
    assert_eq!(code, 1);
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("check character"));
    assert!(v.get("normalized").is_none());
}

/// A command with `input` on standard input: the exit code and the one line it printed.
fn with_stdin(args: &[&str], input: &str) -> (i32, String) {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object on one line: {text}");
    (out.status.code().unwrap(), text.trim().to_string())
}

/// `growth evaluate` with `input` on standard input: the exit code and the one JSON object printed.
fn growth_evaluate(input: &str) -> (i32, Value) {
    let (code, text) = with_stdin(&["growth", "evaluate"], input);
    (code, serde_json::from_str(&text).unwrap())
}

#[test]
fn growth_evaluate_prints_the_who_z_scores_of_the_contract() {
    let (code, v) =
        growth_evaluate(r#"{"sex":"female","age_days":365,"weight_kg":8.9,"length_cm":74.0,"position":"lying"}"#);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v,
        json!({
            "weight_for_age_z": -0.04, "length_for_age_z": 0.0, "weight_for_length_z": -0.07,
            "bmi_for_age_z": -0.07, "weight_for_length_indicator": "weight_for_length",
            "position": "lying", "adjusted_length_cm": 74.0, "bmi": 16.25,
            "classification": [], "flags": []
        })
    );
    // Standing at 30 months uses weight-for-height; a lying length then loses 0.7 cm. Findings
    // and flags carry their WHO code and zh-CN label.
    let (code, v) =
        growth_evaluate(r#"{"sex":"male","age_days":913,"weight_kg":8.0,"length_cm":80.0,"position":"lying"}"#);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["weight_for_length_indicator"], "weight_for_height");
    assert_eq!(v["adjusted_length_cm"], 79.3);
    assert_eq!(v["position"], "standing");
    let codes: Vec<(&str, &str)> = v["classification"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["code"].as_str().unwrap(), c["label"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("severe_underweight", "重度低体重"),
            ("severe_stunting", "重度生长迟缓"),
            ("severe_wasting", "重度消瘦")
        ]
    );
    // Weight-for-length does not apply outside 45–110 cm: null, the rest computed; no position
    // given means lying under 731 days.
    let (code, v) = growth_evaluate(r#"{"sex":"male","age_days":0,"weight_kg":2.0,"length_cm":44.0}"#);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["weight_for_length_z"], Value::Null);
    assert_eq!(v["weight_for_length_indicator"], Value::Null);
    assert!(v["weight_for_age_z"].is_number() && v["length_for_age_z"].is_number());
    assert_eq!(v["position"], "lying");
    // An implausible value is flagged with WHO's limits.
    let (_, v) = growth_evaluate(r#"{"sex":"female","age_days":400,"length_cm":50.0}"#);
    assert_eq!(v["flags"][0]["code"], "implausible_z");
    assert_eq!(v["flags"][0]["indicator"], "length_for_age");
    assert_eq!(v["weight_for_age_z"], Value::Null);
}

#[test]
fn growth_evaluate_refuses_bad_input_with_exit_1_and_a_message() {
    for (input, says) in [
        (r#"{"sex":"female","age_days":365,"weight_kg":-8.9}"#, "weight_kg"),
        (r#"{"sex":"female","age_days":1857,"weight_kg":8.9}"#, "1856"),
        (r#"{"sex":"unknown","age_days":365}"#, "sex"),
        (
            r#"{"sex":"female","age_days":365,"weight_kg":8.9"#,
            "invalid measurement JSON",
        ),
        (r#"{"sex":"female","age_days":-1}"#, "age_days"),
        (r#"{"sex":"female","age_days":365,"weight":8.9}"#, "unknown field"),
        (r#"{"sex":"female","age_days":365,"position":"sitting"}"#, "position"),
        (r#"{"sex":"female","age_days":365,"length_cm":"74"}"#, "length_cm"),
        ("", "invalid measurement JSON"),
    ] {
        let (code, v) = growth_evaluate(input);
        assert_eq!(code, 1, "{input}: {v}");
        let message = v["error"].as_str().unwrap_or_else(|| panic!("{input}: {v}"));
        assert!(message.contains(says), "{input}: {message}");
    }
}

fn run(db: &str, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut child = bin()
        .args(args)
        .env("DATABASE_URL", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn migrations_go_down_and_up_again_on_this_backend() {
    let db = fresh_db();
    assert_eq!(run(&db.url, &["migrate"], None).0, 0);
    let (code, out) = run(&db.url, &["migrate", "--revert", "1"], None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&db.url, &["migrate"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("applied 1 migration"), "{out}");
}

/// Start `mch-chain serve` as its own process on a free port; returns the child and the port.
fn serve(db: &str) -> (std::process::Child, u16, std::thread::JoinHandle<String>) {
    let mut child = bin()
        .args(["serve"])
        .env("DATABASE_URL", db)
        .env("MCH_HTTP_ADDR", "127.0.0.1:0")
        .env("MCH_MLLP_ADDR", "127.0.0.1:0")
        .env("MCH_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = 0;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(p) = line.trim().strip_prefix("http_port=") {
            port = p.parse().unwrap();
            break;
        }
        line.clear();
    }
    assert!(port > 0, "server did not report its port");
    // Keep reading what the server prints, so its stdout never fills or breaks.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
    });
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (child, port, logs)
}

#[tokio::test]
async fn administration_commands_work_end_to_end_and_logs_hold_no_patient_data() {
    let db = fresh_db();
    let url = db.url.clone();
    let (code, out) = run(
        &url,
        &[
            "facility",
            "add",
            "--code",
            "TWN-X",
            "--name",
            "东关镇卫生院",
            "--level",
            "township",
            "--kind",
            "health_centre",
            "--jurisdiction",
            "340524",
            "--township-code",
            "340524101",
            "--capabilities",
            "midwifery",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        &url,
        &[
            "facility",
            "add",
            "--code",
            "BAD",
            "--name",
            "x",
            "--level",
            "hamlet",
            "--kind",
            "clinic",
            "--jurisdiction",
            "34",
        ],
        None,
    );
    assert_ne!(code, 0, "invalid facility refused: {out}");
    let (code, out) = run(&url, &["facility", "list", "--json"], None);
    assert_eq!(code, 0);
    let listed: Vec<Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["code"], "TWN-X");
    assert_eq!(listed[0]["level"], "township");
    assert_eq!(listed[0]["kind"], "health_centre");
    assert_eq!(listed[0]["jurisdiction"], "340524");
    assert_eq!(listed[0]["capabilities"], json!(["midwifery"]));
    let (code, out) = run(
        &url,
        &[
            "user",
            "add",
            "--username",
            "dr.x",
            "--role",
            "clinician",
            "--facility",
            "TWN-X",
            "--password-stdin",
        ],
        Some("a-long-password-1\n"),
    );
    assert_eq!(code, 0, "{out}");
    let (code, _) = run(
        &url,
        &[
            "user",
            "add",
            "--username",
            "dr.y",
            "--role",
            "clinician",
            "--facility",
            "TWN-X",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_ne!(code, 0, "short passwords are refused");
    let (code, token) = run(
        &url,
        &["token", "issue", "--facility", "TWN-X", "--name", "读卡器"],
        None,
    );
    assert_eq!(code, 0);
    let token = token.lines().find(|l| l.len() == 64).unwrap().to_string();

    let (mut child, port, logs) = serve(&url);
    let base = format!("http://127.0.0.1:{port}");
    let name = "欧阳娜娜";
    let id = id_number("340524", "1996-09-09", 62);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/card-reads"))
        .bearer_auth(&token)
        .json(&json!({"card_number": id, "name": name, "sex_code": "2", "birth_date": "1996-09-09", "id_number": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut c = Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
        cookie: None,
        csrf: None,
    };
    assert_eq!(c.login("dr.x", "a-long-password-1").await.status(), 303);
    c.get(&format!("/persons?q={name}")).await;
    c.get(&format!("/persons?q={id}")).await;
    c.post_form("/persons", &[("name", name), ("id_number", &id)]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(logs.contains("request"), "the server did log requests");
    for secret in [name, &id, &id[6..14], &token, "a-long-password-1"] {
        let leak = logs.lines().find(|l| l.contains(secret));
        assert!(leak.is_none(), "the log contains patient data or a secret: {leak:?}");
    }
}

/// Start `serve` and read the MLLP port it prints.
fn serve_mllp(db: &str) -> (std::process::Child, u16) {
    let mut child = bin()
        .args(["serve"])
        .env("DATABASE_URL", db)
        .env("MCH_HTTP_ADDR", "127.0.0.1:0")
        .env("MCH_MLLP_ADDR", "127.0.0.1:0")
        .env("MCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(p) = line.trim().strip_prefix("mllp_port=") {
            let port = p.parse().unwrap();
            std::thread::spawn(move || {
                let mut rest = String::new();
                let _ = stdout.read_to_string(&mut rest);
            });
            return (child, port);
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not report its MLLP port");
}

/// A county hospital and its registered HL7 sender, set up through the command line.
fn mllp_region(url: &str) {
    assert_eq!(
        run(
            url,
            &[
                "facility",
                "add",
                "--code",
                "HOSP",
                "--name",
                "县医院",
                "--level",
                "county",
                "--kind",
                "hospital",
                "--jurisdiction",
                "340524"
            ],
            None
        )
        .0,
        0
    );
    assert_eq!(
        run(
            url,
            &[
                "hl7",
                "sender",
                "add",
                "--sending-app",
                "HIS",
                "--sending-facility",
                "HOSP",
                "--facility",
                "HOSP"
            ],
            None
        )
        .0,
        0
    );
}

/// The i-th ADT^A04 of the crash tests: a different woman each time.
fn adt_message(i: usize) -> String {
    let id = id_number("340524", &format!("19{:02}-01-15", 70 + i % 25), (i as u32 % 400) * 2);
    format!(
        "MSH|^~\\&|HIS|HOSP|MCH|C|20261124||ADT^A04|K-{i}|P|2.5.1\rPID|1||{id}^^^^NNCHN~MRN{i}^^^HOSP^MR||测试^{i}号||19{:02}0115|F\r",
        70 + i % 25
    )
}

/// RELIABILITY.md 1: kill -9 while a client streams messages; every message that got an ACK is in
/// the store after restart, exactly once, and resending the rest processes each once.
#[tokio::test]
async fn no_acknowledged_message_is_lost_when_the_process_is_killed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = fresh_db();
    let url = db.url.clone();
    mllp_region(&url);
    let (mut child, port) = serve_mllp(&url);
    let mut acked: Vec<usize> = Vec::new();
    let mut sent = 0;
    {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut decoder = mch_chain::hl7::mllp::Decoder::new(1 << 20);
        let mut buf = vec![0u8; 8192];
        // Pipeline: keep 8 messages in flight; kill the process after 60 ACKs.
        while acked.len() < 60 {
            while sent < acked.len() + 8 {
                s.write_all(&mch_chain::hl7::mllp::frame(adt_message(sent).as_bytes()))
                    .await
                    .unwrap();
                sent += 1;
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            for e in decoder.feed(&buf[..n]) {
                if let mch_chain::hl7::mllp::Event::Frame(f) = e {
                    let ack = mch_chain::hl7::er7::Message::parse(&f, mch_chain::hl7::er7::Charset::Utf8).unwrap();
                    assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AA"));
                    let ctrl = ack.get("MSA-2").unwrap().unwrap();
                    acked.push(ctrl.trim_start_matches("K-").parse().unwrap());
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // After restart every acknowledged message is there; the unacknowledged ones are resent.
    let (mut child, port) = serve_mllp(&url);
    let stored = |url: &str| {
        use diesel::prelude::*;
        use mch_chain::storage::schema::hl7_messages::dsl as m;
        let mut conn = mch_chain::storage::establish(url).unwrap();
        m::hl7_messages.select(m::control_id).load::<String>(&mut conn).unwrap()
    };
    let before = stored(&url);
    for i in &acked {
        assert_eq!(
            before.iter().filter(|c| **c == format!("K-{i}")).count(),
            1,
            "acknowledged K-{i} was lost"
        );
    }
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut decoder = mch_chain::hl7::mllp::Decoder::new(1 << 20);
    let mut buf = vec![0u8; 8192];
    for i in 0..sent {
        s.write_all(&mch_chain::hl7::mllp::frame(adt_message(i).as_bytes()))
            .await
            .unwrap();
        let mut got = None;
        while got.is_none() {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got = decoder.feed(&buf[..n]).into_iter().next();
        }
    }
    let after = stored(&url);
    for i in 0..sent {
        assert_eq!(
            after.iter().filter(|c| **c == format!("K-{i}")).count(),
            1,
            "K-{i} stored exactly once"
        );
    }
    let persons = {
        use diesel::prelude::*;
        use mch_chain::storage::schema::persons::dsl as p;
        let mut conn = mch_chain::storage::establish(&url).unwrap();
        p::persons.count().get_result::<i64>(&mut conn).unwrap()
    };
    assert_eq!(persons as usize, sent, "each message registered its woman once");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The README's first command seeds the demo region: it must keep working as the rules grow.
#[test]
fn the_demo_region_seeds_on_an_empty_database() {
    let db = fresh_db();
    let (code, out) = run(&db.url, &["demo-data"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("doctor.dongguan") && out.contains("mch-demo-2026"));
    use diesel::prelude::*;
    let mut conn = mch_chain::storage::establish(&db.url).unwrap();
    let count = |conn: &mut mch_chain::storage::AnyConnection, table: &str| {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .load::<N>(conn)
            .unwrap()[0]
            .n
    };
    // 300 women of the pregnancy pathway, 120 mothers of children, each child's own record, and
    // both partners of the couples before pregnancy.
    let children = count(&mut conn, "children");
    assert!(children >= 120, "a child of every age: {children}");
    let couples = count(&mut conn, "couples");
    assert!(couples >= 25, "couples at each step before pregnancy: {couples}");
    assert_eq!(count(&mut conn, "persons"), 300 + 120 + children + 2 * couples);
    assert_eq!(count(&mut conn, "prepregnancy_exams"), couples);
    assert!(count(&mut conn, "birth_registrations") >= 10);
    assert!(
        count(&mut conn, "prepregnancy_followups") > couples,
        "booked couples have an outcome follow-up"
    );
    assert!(
        count(&mut conn, "child_visits") > 300,
        "children's visits along their schedules"
    );
    assert!(count(&mut conn, "immunizations") > 500, "most vaccines on time");
    assert!(count(&mut conn, "pregnancies") > 200);
    assert!(
        count(&mut conn, "risk_cases") > 10,
        "graded women have cases on the board"
    );
    assert!(count(&mut conn, "risk_case_reports") > 5);
    // Run again: it refuses to seed a database that has data.
    assert_eq!(run(&db.url, &["demo-data"], None).0, 1);
}

/// RELIABILITY.md 2, the machine-level equivalent of a crash: the process is frozen (SIGSTOP) at
/// points of a pipelined MLLP stream and its database files are copied as they are at that instant —
/// what a power cut would leave of everything already fsynced; a commit is only answered after its
/// WAL fsync (`synchronous=FULL`, checked at start-up — the copy cannot tell page cache from disk). Each copy, opened on its own (WAL recovery, a half-written last transaction
/// rolled back), holds every message acknowledged before the freeze, exactly once.
/// PostgreSQL keeps its files to itself; there `synchronous_commit=on` and `fsync=on` are checked at
/// start-up instead (`storage::durability`).
#[tokio::test]
async fn a_copy_of_the_database_frozen_mid_stream_holds_every_acknowledged_message() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = fresh_db();
    let url = db.url.clone();
    let Some(path) = url.strip_prefix("sqlite://").map(std::path::PathBuf::from) else {
        return;
    };
    mllp_region(&url);
    let (mut child, port) = serve_mllp(&url);
    let pid = child.id().to_string();
    let snapshots = tempfile::tempdir().unwrap();
    let mut taken: Vec<(std::path::PathBuf, Vec<usize>)> = Vec::new();
    let mut acked: Vec<usize> = Vec::new();
    let mut sent = 0;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut decoder = mch_chain::hl7::mllp::Decoder::new(1 << 20);
    let mut buf = vec![0u8; 8192];
    let freeze_after = [7usize, 23, 41, 64, 90];
    while acked.len() < 100 {
        while sent < acked.len() + 8 {
            s.write_all(&mch_chain::hl7::mllp::frame(adt_message(sent).as_bytes()))
                .await
                .unwrap();
            sent += 1;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        for e in decoder.feed(&buf[..n]) {
            if let mch_chain::hl7::mllp::Event::Frame(f) = e {
                let ack = mch_chain::hl7::er7::Message::parse(&f, mch_chain::hl7::er7::Charset::Utf8).unwrap();
                assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AA"));
                let ctrl = ack.get("MSA-2").unwrap().unwrap();
                acked.push(ctrl.trim_start_matches("K-").parse().unwrap());
            }
        }
        if taken.len() < freeze_after.len() && acked.len() >= freeze_after[taken.len()] {
            // Freeze: from here nothing reaches the files; copy them as a power cut would leave them.
            assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
            let dir = snapshots.path().join(format!("cut-{}", taken.len()));
            std::fs::create_dir_all(&dir).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            for suffix in ["", "-wal"] {
                let from = path.with_file_name(format!("{name}{suffix}"));
                if from.exists() {
                    std::fs::copy(&from, dir.join(format!("{name}{suffix}"))).unwrap();
                }
            }
            taken.push((dir.join(&name), acked.clone()));
            assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(taken.len(), freeze_after.len());
    for (copy, acked_before) in &taken {
        use diesel::prelude::*;
        use mch_chain::storage::schema::hl7_messages::dsl as m;
        let mut conn = mch_chain::storage::establish(&format!("sqlite://{}", copy.display())).unwrap();
        let stored: Vec<String> = m::hl7_messages.select(m::control_id).load(&mut conn).unwrap();
        for i in acked_before {
            assert_eq!(
                stored.iter().filter(|c| **c == format!("K-{i}")).count(),
                1,
                "{}: acknowledged K-{i} missing from the frozen copy",
                copy.display()
            );
        }
        // The copy is a consistent database, not a torn one.
        let ok: Vec<String> = diesel::sql_query("PRAGMA integrity_check")
            .load::<IntegrityRow>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.integrity_check)
            .collect();
        assert_eq!(ok, vec!["ok".to_string()], "{}", copy.display());
    }
}

#[derive(diesel::QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// Finding B: passwords used to be judged by length only (`aaaaaaaaaa`, `1234567890`,
/// `password12` were accepted). `user add` now refuses common passwords, repeated characters,
/// simple sequences, passwords containing the username and the published demo password, and
/// says why in Chinese (OWASP ASVS 4.0.3 §2.1); a strong password is still accepted.
#[test]
fn user_add_refuses_weak_passwords_and_says_why() {
    let db = fresh_db();
    let url = db.url.clone();
    assert_eq!(run(&url, &["migrate"], None).0, 0);
    let (code, out) = run(
        &url,
        &[
            "facility",
            "add",
            "--code",
            "TWN-X",
            "--name",
            "东关镇卫生院",
            "--level",
            "township",
            "--kind",
            "health_centre",
            "--jurisdiction",
            "340524",
            "--township-code",
            "340524101",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let add = |username: &str, password: &str| {
        run(
            &url,
            &[
                "user",
                "add",
                "--username",
                username,
                "--role",
                "clinician",
                "--facility",
                "TWN-X",
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
    };
    for (password, why) in [
        ("aaaaaaaaaa", "重复"),
        ("1234567890", "常见密码"),
        ("password12", "常见密码"),
        ("aaaaaaaaaaaaaaaa", "重复"),
        ("abcabcabcabcabc", "重复"),
        ("123456789012345", "顺序"),
        ("zyxwvutsrqponm", "顺序"),
        ("qwertyuiop[]", "顺序"),
        ("1qaz2wsx3edc", "常见密码"),
        ("Iloveyou2026!", "常见密码"),
        ("Dr.Wang-2026-spring", "用户名"),
        ("mch-demo-2026", "演示密码"),
        ("short-pw", "至少 12 个字符"),
    ] {
        let (code, out) = add("dr.wang", password);
        assert_ne!(code, 0, "{password:?} was accepted");
        assert!(
            out.contains(why),
            "{password:?}: the refusal does not say {why:?}: {out}"
        );
    }
    let (code, out) = add("dr.wang", "晨雾-河堤-七月-银杏树下");
    assert_eq!(code, 0, "a strong password is accepted: {out}");
}

/// `mch-chain user locks` shows a running login wait and `user unlock --username` clears it (and
/// says what it cleared), audited as `login_unlock`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_unlock_clears_a_login_wait_from_the_command_line() {
    let app = spawn_app_with(|s| s.login_base_delay_secs = 30).await;
    let user = username("clinician", "TWN-A");
    let mut c = app.client_from("127.0.0.6");
    for _ in 0..6 {
        assert_eq!(c.login(&user, "wrong-password").await.status(), 401);
    }
    assert_eq!(c.login(&user, PASSWORD).await.status(), 429);
    let url = app.url().to_string();
    let (code, out) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(&url, &["user", "locks", "--json"], None)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let locks: Vec<Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pair = locks
        .iter()
        .find(|l| l["kind"] == "pair")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        (pair["username"].as_str(), pair["address"].as_str()),
        (Some(user.as_str()), Some("127.0.0.6"))
    );
    assert!(
        pair["waiting_secs"].as_i64().is_some_and(|s| (1..=30).contains(&s)),
        "{pair}"
    );

    let (code, out) = tokio::task::spawn_blocking({
        let (url, user) = (url.clone(), user.clone());
        move || run(&url, &["user", "unlock", "--username", &user], None)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let answer: Value = serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(answer["cleared"], 2, "the pair and the account: {answer}");
    assert_eq!(c.login(&user, PASSWORD).await.status(), 303);
    let (code, _) = tokio::task::spawn_blocking(move || run(&url, &["user", "unlock"], None))
        .await
        .unwrap();
    assert_ne!(code, 0, "naming nothing to clear is refused");

    let auditor = app.system_actor("PROV", mch_chain::auth::model::Role::Auditor).await;
    let events = mch_chain::audit::service::recent(&app.db, &auditor, Some("system".into()))
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "login_unlock" && e.detail.contains(&format!("username {user}"))),
        "{events:?}"
    );
}

#[test]
fn child_schedule_prints_one_item_per_line_with_the_thirteen_contacts() {
    let out = bin()
        .args(["child", "schedule", "--birth-date", "2026-01-10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let items: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for i in &items {
        let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "due_from", "due_to", "kind", "name"], "{i}");
        assert!(
            ["visit", "vaccine", "screening", "lab"].contains(&i["kind"].as_str().unwrap()),
            "{i}"
        );
        assert!(i["due_from"].as_str().unwrap() <= i["due_to"].as_str().unwrap(), "{i}");
    }
    let visits: Vec<&Value> = items.iter().filter(|i| i["kind"] == "visit").collect();
    assert_eq!(visits.len(), 13, "RULES.md §2.3: 13 contacts");
    let find = |code: &str| {
        items
            .iter()
            .find(|i| i["code"] == code)
            .unwrap_or_else(|| panic!("{code}"))
    };
    assert_eq!(
        (find("month_1")["due_from"].as_str(), find("month_1")["due_to"].as_str()),
        (Some("2026-02-07"), Some("2026-02-09"))
    );
    assert_eq!(find("HepB-1")["due_from"], "2026-01-10");
    assert_eq!(find("MMR-1")["due_from"], "2026-09-10", "8 months");
    assert_eq!(find("hb_6_8m")["kind"], "lab");
    assert_eq!(find("blood_spot")["kind"], "screening");
    let bad = bin()
        .args(["child", "schedule", "--birth-date", "2026-13-01"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8(bad.stdout).unwrap().contains("YYYY-MM-DD"));
}

/// `policy evaluate` with `input` on standard input: the exit code and the one line printed.
fn policy_evaluate(input: &str) -> (i32, String) {
    with_stdin(&["policy", "evaluate"], input)
}

#[test]
fn policy_evaluate_prints_the_four_keys_of_the_contract() {
    let (code, text) = policy_evaluate(
        r#"{"date":"2019-06-01","provinces":["37","37"],"children":[{"born":"2012-03-01","joint":true},{"born":"2016-08-09","joint":true}]}"#,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(r#"{"birth_order":3,"procedure":"not_allowed","rule":"37-2016"#),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 4);
    assert!(v["source"].as_str().unwrap().contains("山东"));
    // Guangdong 2021: a deceased child is not counted (子女死亡的，可以再生育至三个子女).
    let (code, text) = policy_evaluate(
        r#"{"date":"2023-03-01","provinces":["44","440106"],"children":[{"born":"2015-01-01","joint":true,"deceased":true},{"born":"2018-01-01","joint":true},{"born":"2020-01-01","joint":true}]}"#,
    );
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["birth_order"], 3);
    assert_eq!(v["procedure"], "registration");
    assert!(v["rule"].as_str().unwrap().contains("子女死亡"));
}

#[test]
fn policy_evaluate_refuses_bad_input_with_exit_1_and_a_message() {
    for (input, says) in [
        ("not json", "invalid case JSON"),
        (r#"{"date":"2019-13-01","provinces":["37","37"]}"#, "invalid case JSON"),
        (r#"{"date":"2019-06-01","provinces":["37"]}"#, "two codes"),
        (r#"{"date":"2019-06-01","provinces":["37","98"]}"#, "province"),
        (
            r#"{"date":"2019-06-01","provinces":["37","37"],"children":[{"born":"2020-01-01","joint":true}]}"#,
            "born after",
        ),
        (
            r#"{"date":"2019-06-01","provinces":["37","37"],"children":[{"born":"2010-01-01","before_remarriage_of":"wife"}]}"#,
            "not a remarriage",
        ),
    ] {
        let (code, text) = policy_evaluate(input);
        assert_eq!(code, 1, "{input}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().unwrap().contains(says), "{input}: {text}");
    }
}
