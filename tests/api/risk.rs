//! Five-colour grading through the API and the command line (nothing stored).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_evaluate_endpoint_grades_facts_with_the_contract_of_the_cli() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "COUNTY").await;
    let facts = json!({"age_years": 41, "hb_g_l": 58, "syphilis": "positive", "factors": ["Y3.12"]});
    let (s, a) = c.post_json("/api/risk/evaluate", &facts).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["colour"], "orange");
    assert_eq!(a["purple"], true);
    assert_eq!(a["rule_set"], "national-2017");
    let codes: Vec<&str> = a["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["O1.1", "O2.6", "P2", "Y3.12"]);
    assert!(a["factors"][1]["reason"].as_str().unwrap().contains("58 g/L"));
    // The command line gives the same answer for the same facts.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mch-chain"))
        .args(["risk", "evaluate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(facts.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, a);
}

#[tokio::test]
async fn bad_facts_get_a_clear_refusal() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "COUNTY").await;
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"hb_g_l": 900})).await;
    assert_eq!(s, 422);
    assert!(r["error"].as_str().unwrap().contains("hb_g_l"));
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"factors": ["X1.1"]})).await;
    assert_eq!(s, 422);
    assert!(r["error"].as_str().unwrap().contains("X1.1"));
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"hiv": "maybe"})).await;
    assert_eq!(s, 400, "{r}");
    let (s, _) = c.post_json("/api/risk/evaluate", &json!({"weight": 60})).await;
    assert_eq!(s, 400, "unknown facts are refused, not ignored");
    let mut anonymous = app.client();
    let (s, _) = anonymous.post_json("/api/risk/evaluate", &json!({})).await;
    assert_eq!(s, 401);
}
