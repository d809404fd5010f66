//! Audit events and the hash chain. Pure.
//!
//! Each row's hash is SHA-256 over the previous row's hash and the row's own fields, so changing,
//! removing or reordering any row breaks the chain from that row on (RELIABILITY.md 28).

use chrono::NaiveDateTime;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// How the zh-CN pages name an audit event's action, outcome and the actor's role (the stored
/// codes stay English: they are the log's vocabulary for tools and auditors' exports).
pub fn label_zh(kind: &str, code: &str) -> String {
    let known = match (kind, code) {
        ("action", "read") => "查看",
        ("action", "search") => "查询",
        ("action", "create") => "新建",
        ("action", "update") => "修改",
        ("action", "delete") => "删除",
        ("action", "execute") => "执行",
        ("action", "login") => "登录",
        ("action", "logout") => "退出",
        ("outcome", "success") => "成功",
        ("outcome", "denied") => "被拒绝",
        ("outcome", "failure") => "失败",
        ("purpose", "treatment") => "诊疗",
        ("purpose", "care_coordination") => "转诊协调",
        ("purpose", "operations") => "管理运维",
        ("purpose", "audit") => "审计",
        ("entity", e) => return entity_zh(e).to_string(),
        ("role", r) => {
            return crate::auth::model::Role::parse(r).map_or_else(|| r.to_string(), |r| r.label_zh().to_string());
        }
        _ => "",
    };
    if known.is_empty() {
        code.to_string()
    } else {
        known.to_string()
    }
}

/// What kind of record an audit row names, as the pages say it. Every `entity_type` the services
/// write has a name here (a unit test reads the sources); an unknown one reads as 记录, never as
/// the English code.
pub fn entity_zh(entity_type: &str) -> &'static str {
    match entity_type {
        "person" => "个人档案",
        "pregnancy" => "孕产期档案",
        "visit" => "产检/产后访视",
        "observation" => "检验结果",
        "condition" => "诊断",
        "immunization" => "预防接种",
        "risk_screening" => "妊娠风险筛查",
        "risk_assessment" => "妊娠风险评估",
        "risk_flag" => "高危标识",
        "risk_case" => "高危专案",
        "risk_board" => "高危孕产妇看板",
        "risk_evaluation" => "妊娠风险试算",
        "risk_report" => "高危个案报告",
        "referral" => "转诊",
        "referral_measures" => "转诊处置措施",
        "referral_board" => "转诊看板",
        "child" => "儿童档案",
        "child_visit" => "儿童健康检查",
        "child_service" => "儿童保健服务",
        "frail_case" => "体弱儿专案",
        "frail_board" => "体弱儿看板",
        "couple" => "夫妇档案",
        "premarital_exam" => "婚前医学检查",
        "couple_worklist" => "孕前随访清单",
        "card_read" => "读卡记录",
        "facility" => "机构",
        "worklist" => "工作清单",
        "page" => "页面",
        "session" => "登录会话",
        "login_throttle" => "登录限制",
        "audit_log" => "审计日志",
        "hl7_message" => "HL7 消息",
        "hl7_outbox" => "HL7 待发消息",
        _ => "记录",
    }
}

/// One audit event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub actor_role: String,
    pub facility_id: Option<String>,
    pub client_addr: Option<String>,
    /// e.g. `read`, `search`, `create`, `update`, `login`, `logout`, `login_failed`.
    pub action: String,
    pub outcome: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub person_id: Option<String>,
    pub purpose: String,
    /// A short description with ids only (never names or ID numbers).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("\u{2400}")
}

/// The hash of a row given its predecessor's hash.
pub fn chain_hash(e: &AuditEvent) -> String {
    let at = e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let seq = e.seq.to_string();
    let fields: [&str; 16] = [
        &e.prev_hash,
        &seq,
        &at,
        &e.actor_kind,
        opt(&e.actor_id),
        &e.actor_name,
        &e.actor_role,
        opt(&e.facility_id),
        opt(&e.client_addr),
        &e.action,
        &e.outcome,
        &e.entity_type,
        opt(&e.entity_id),
        opt(&e.person_id),
        &e.purpose,
        &e.detail,
    ];
    let mut h = Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub ok: bool,
    pub rows: u64,
    /// The first row whose link or content does not match, if any.
    pub first_broken_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Incremental chain checker: feed rows in `seq` order.
pub struct ChainVerifier {
    prev_hash: String,
    prev_seq: i64,
    rows: u64,
    broken: Option<(i64, String)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            prev_hash: GENESIS_HASH.to_string(),
            prev_seq: 0,
            rows: 0,
            broken: None,
        }
    }
}

impl ChainVerifier {
    pub fn feed(&mut self, e: &AuditEvent) {
        self.rows += 1;
        if self.broken.is_some() {
            return;
        }
        let problem = if e.seq != self.prev_seq + 1 {
            Some(format!("row {} follows row {}: rows are missing", e.seq, self.prev_seq))
        } else if e.prev_hash != self.prev_hash {
            Some(format!("row {} does not link to the previous row's hash", e.seq))
        } else if chain_hash(e) != e.hash {
            Some(format!(
                "row {} content does not match its hash (changed after writing)",
                e.seq
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            self.broken = Some((e.seq, p));
        }
        self.prev_seq = e.seq;
        self.prev_hash = e.hash.clone();
    }

    /// Finish against the recorded head (last seq and hash), which catches removal of the last rows.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> ChainReport {
        let broken = self.broken.or_else(|| {
            (head_seq != self.prev_seq || head_hash != self.prev_hash).then(|| {
                (
                    self.prev_seq + 1,
                    format!(
                        "the chain head says {head_seq} rows but the table ends at row {}",
                        self.prev_seq
                    ),
                )
            })
        });
        ChainReport {
            ok: broken.is_none(),
            rows: self.rows,
            first_broken_seq: broken.as_ref().map(|b| b.0),
            problem: broken.map(|b| b.1),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_pages_name_actions_outcomes_and_roles_in_chinese_and_keep_unknown_codes() {
        assert_eq!(label_zh("action", "read"), "查看");
        assert_eq!(label_zh("outcome", "denied"), "被拒绝");
        assert_eq!(
            label_zh("role", "clinician"),
            crate::auth::model::Role::Clinician.label_zh()
        );
        assert_eq!(label_zh("action", "replay"), "replay");
        assert_eq!(label_zh("purpose", "care_coordination"), "转诊协调");
        assert_eq!(label_zh("entity", "pregnancy"), "孕产期档案");
        assert_eq!(label_zh("entity", "something_new"), "记录");
    }

    /// Every record kind the services, routes and searches name in an audit row has a Chinese
    /// name (read from the sources, so a new kind without one fails here).
    #[test]
    fn every_audited_record_kind_has_a_chinese_name() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut sources,
        );
        let mut kinds = std::collections::BTreeSet::new();
        for text in &sources {
            for (marker, line_must_have) in [
                ("entity_type: \"", None),
                ("\" on \"", Some("route!(")),
                ("pregnancy_target(", None),
                ("search_reach(", None),
            ] {
                for line in text.lines().filter(|l| line_must_have.is_none_or(|m| l.contains(m))) {
                    let Some(at) = line.find(marker) else { continue };
                    let rest = &line[at + marker.len()..];
                    let rest = if marker.ends_with('"') {
                        rest
                    } else {
                        rest.split_once('"').map_or("", |(_, r)| r)
                    };
                    let kind: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !kind.is_empty() && rest[kind.len()..].starts_with('"') {
                        kinds.insert(kind);
                    }
                }
            }
        }
        assert!(kinds.len() > 25, "the sources name {} kinds: {kinds:?}", kinds.len());
        let unnamed: Vec<_> = kinds
            .iter()
            .filter(|k| *k != "unknown" && entity_zh(k) == "记录")
            .collect();
        assert!(
            unnamed.is_empty(),
            "audited record kinds without a Chinese name: {unnamed:?}"
        );
    }

    use super::*;

    fn event(seq: i64, prev: &str) -> AuditEvent {
        let mut e = AuditEvent {
            seq,
            at: chrono::DateTime::from_timestamp(1_700_000_000 + seq, 0)
                .map(|d| d.naive_utc())
                .unwrap_or_default(),
            actor_kind: "user".into(),
            actor_id: Some("u1".into()),
            actor_name: "doc".into(),
            actor_role: "clinician".into(),
            facility_id: None,
            client_addr: None,
            action: "read".into(),
            outcome: "success".into(),
            entity_type: "person".into(),
            entity_id: Some("p1".into()),
            person_id: Some("p1".into()),
            purpose: "treatment".into(),
            detail: String::new(),
            prev_hash: prev.into(),
            hash: String::new(),
        };
        e.hash = chain_hash(&e);
        e
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or(GENESIS_HASH.into());
            out.push(event(seq, &prev));
        }
        out
    }

    fn verify(rows: &[AuditEvent], head: (i64, &str)) -> ChainReport {
        let mut v = ChainVerifier::default();
        rows.iter().for_each(|e| v.feed(e));
        v.finish(head.0, head.1)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let rows = chain(5);
        let r = verify(&rows, (5, &rows[4].hash.clone()));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.rows, 5);
    }

    #[test]
    fn a_changed_row_is_named() {
        let mut rows = chain(5);
        rows[2].actor_name = "someone else".into();
        let head = rows[4].hash.clone();
        let r = verify(&rows, (5, &head));
        assert_eq!(r.first_broken_seq, Some(3));
    }

    #[test]
    fn a_removed_row_or_a_removed_tail_is_detected() {
        let mut rows = chain(5);
        let head = rows[4].hash.clone();
        rows.remove(1);
        assert_eq!(verify(&rows, (5, &head)).first_broken_seq, Some(3));
        let rows = chain(5);
        assert_eq!(verify(&rows[..4], (5, &head)).first_broken_seq, Some(5));
    }
}
