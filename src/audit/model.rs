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
