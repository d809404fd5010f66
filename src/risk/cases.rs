//! High-risk cases (专案管理): states, what each action may do, overdue follow-ups and their
//! escalation. Pure.
//!
//! RULES.md §1.4–1.5: orange, red and purple women are managed case by case ("专人专案、全程管理、
//! 动态监管、集中救治"); no national definition of 失访 exists, so the states follow the
//! recommended model `active / overdue / traced / lost_to_follow_up / moved_out / closed`, where
//! `overdue` is derived (an active or traced case whose next follow-up date has passed) rather
//! than stored, so it can never disagree with the dates.

use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Active,
    Traced,
    LostToFollowUp,
    MovedOut,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Active => "active",
            CaseStatus::Traced => "traced",
            CaseStatus::LostToFollowUp => "lost_to_follow_up",
            CaseStatus::MovedOut => "moved_out",
            CaseStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<CaseStatus> {
        [
            CaseStatus::Active,
            CaseStatus::Traced,
            CaseStatus::LostToFollowUp,
            CaseStatus::MovedOut,
            CaseStatus::Closed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            CaseStatus::Active => "管理中",
            CaseStatus::Traced => "已追踪",
            CaseStatus::LostToFollowUp => "失访",
            CaseStatus::MovedOut => "迁出",
            CaseStatus::Closed => "结案",
        }
    }
    pub fn is_open(self) -> bool {
        !matches!(self, CaseStatus::Closed)
    }
}

/// What a user can do to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseAction {
    /// A follow-up contact (visit, phone, home visit) on a date: the case is back on schedule.
    FollowUp,
    /// An overdue or lost woman has been reached; a visit is arranged.
    Traced,
    /// She cannot be reached after tracing.
    Lost,
    /// She has moved to another county (6-digit code); the case is handed over.
    MoveOut,
    /// 结案. The reason decides whether closing is allowed.
    Close(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Delivery outcome and the 42-day postpartum check are recorded.
    PostpartumCheckDone,
    /// The woman (or child) died (maternal death is reported separately, RULES.md §1.6).
    Death,
    /// The receiving jurisdiction accepted the hand-over.
    MoveOutAccepted,
    /// What called for the case is over: a frail child recovered or improved to the closing
    /// standard of her conditions (恢复/好转结案). The programme's rule says when the record shows it.
    Recovered,
    /// Handed over to a specialist service that manages the condition from now on (转诊结案).
    Referred,
    /// Closed as lost after tracing failed (失访结案); only a case already marked lost.
    LostToFollowUp,
    /// The person left the programme's age range (a child's sixth birthday, 满6岁).
    AgedOut,
}

impl CloseReason {
    /// Every reason, in the order forms list them.
    pub const ALL: [CloseReason; 7] = [
        CloseReason::PostpartumCheckDone,
        CloseReason::Death,
        CloseReason::MoveOutAccepted,
        CloseReason::Recovered,
        CloseReason::Referred,
        CloseReason::LostToFollowUp,
        CloseReason::AgedOut,
    ];
    /// The reasons a high-risk pregnancy case closes for (RULES.md §1.4–1.5).
    pub const MATERNAL: [CloseReason; 3] = [
        CloseReason::PostpartumCheckDone,
        CloseReason::Death,
        CloseReason::MoveOutAccepted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::PostpartumCheckDone => "postpartum_check_done",
            CloseReason::Death => "death",
            CloseReason::MoveOutAccepted => "move_out_accepted",
            CloseReason::Recovered => "recovered",
            CloseReason::Referred => "referred",
            CloseReason::LostToFollowUp => "lost_to_follow_up",
            CloseReason::AgedOut => "aged_out",
        }
    }
    /// One of the maternal reasons (the high-risk pregnancy case's own list).
    pub fn parse(s: &str) -> Option<CloseReason> {
        CloseReason::parse_among(s, &CloseReason::MATERNAL)
    }
    /// One of the reasons a programme's cases close for.
    pub fn parse_among(s: &str, reasons: &[CloseReason]) -> Option<CloseReason> {
        reasons.iter().copied().find(|c| c.as_str() == s)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            CloseReason::PostpartumCheckDone => "产后42天检查完成",
            CloseReason::Death => "死亡",
            CloseReason::MoveOutAccepted => "迁出已被接收",
            CloseReason::Recovered => "恢复/好转",
            CloseReason::Referred => "转诊",
            CloseReason::LostToFollowUp => "失访",
            CloseReason::AgedOut => "满6岁",
        }
    }
}

/// What decides whether a case may close for a reason its state alone does not settle: the
/// programme the case belongs to (a pregnancy's outcome and 42-day check, a child's recovery).
/// Death, an accepted hand-over and the states (a moved-out case waits for the receiving side; only
/// a lost case closes as lost) are the state machine's own and never reach the rule.
pub trait ClosingRule {
    /// `Err` with the reason in zh-CN when the record does not allow closing for `reason`.
    fn may_close(&self, reason: CloseReason) -> Result<(), String>;
}

/// Facts the closing rule of a high-risk pregnancy case needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClosingFacts {
    pub delivered: bool,
    pub postpartum_42d_done: bool,
}

impl ClosingRule for ClosingFacts {
    fn may_close(&self, reason: CloseReason) -> Result<(), String> {
        match reason {
            CloseReason::PostpartumCheckDone if self.delivered && self.postpartum_42d_done => Ok(()),
            CloseReason::PostpartumCheckDone => {
                Err("结案须在分娩结局和产后42天检查完成之后（或死亡、迁出被接收）".into())
            }
            other => Err(format!("孕产妇专案不能以“{}”结案", other.label_zh())),
        }
    }
}

/// The state after `action`, or why it is not allowed (zh-CN). `rule` is the case's programme's
/// closing rule ([`ClosingFacts`] for a pregnancy).
pub fn transition(
    status: CaseStatus,
    action: &CaseAction,
    overdue: bool,
    rule: impl ClosingRule,
) -> Result<CaseStatus, String> {
    use CaseStatus::*;
    match (status, action) {
        (Closed, _) => Err("专案已结案，不能再操作".into()),
        (MovedOut, CaseAction::Close(CloseReason::MoveOutAccepted)) => Ok(Closed),
        (MovedOut, CaseAction::Close(CloseReason::Death)) => Ok(Closed),
        (MovedOut, _) => Err("专案已迁出，等待接收方确认".into()),
        (_, CaseAction::FollowUp) => Ok(Active),
        (Active, CaseAction::Traced) if !overdue => Err("随访未逾期，无需追踪".into()),
        (Active | LostToFollowUp, CaseAction::Traced) => Ok(Traced),
        (Traced, CaseAction::Traced) => Err("已是已追踪状态".into()),
        (Active | Traced, CaseAction::Lost) if !overdue => Err("随访未逾期，不能标记失访".into()),
        (Active | Traced, CaseAction::Lost) => Ok(LostToFollowUp),
        (LostToFollowUp, CaseAction::Lost) => Err("已是失访状态".into()),
        (_, CaseAction::MoveOut) => Ok(MovedOut),
        (_, CaseAction::Close(CloseReason::Death)) => Ok(Closed),
        (_, CaseAction::Close(CloseReason::MoveOutAccepted)) => Err("只有已迁出的专案才能因迁出被接收而结案".into()),
        (Active | Traced, CaseAction::Close(CloseReason::LostToFollowUp)) => {
            Err("只有已标记失访的专案才能以失访结案".into())
        }
        (_, CaseAction::Close(r)) => rule.may_close(*r).map(|()| Closed),
    }
}

/// Who an overdue follow-up has reached (RULES.md §1.5: case manager → supervisor → district).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    None,
    CaseManager,
    Supervisor,
    District,
}

impl Escalation {
    pub fn rank(self) -> i32 {
        match self {
            Escalation::None => 0,
            Escalation::CaseManager => 1,
            Escalation::Supervisor => 2,
            Escalation::District => 3,
        }
    }
    pub fn from_rank(r: i32) -> Escalation {
        match r {
            i32::MIN..=0 => Escalation::None,
            1 => Escalation::CaseManager,
            2 => Escalation::Supervisor,
            _ => Escalation::District,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Escalation::None => "",
            Escalation::CaseManager => "已提醒专案管理人",
            Escalation::Supervisor => "已上报机构负责人",
            Escalation::District => "已上报辖区妇幼保健机构",
        }
    }
}

/// Days a follow-up is overdue (0 when not).
pub fn days_overdue(status: CaseStatus, next_follow_up: NaiveDate, today: NaiveDate) -> i64 {
    if matches!(status, CaseStatus::Active | CaseStatus::Traced) {
        (today - next_follow_up).num_days().max(0)
    } else {
        0
    }
}

/// How far an overdue follow-up has escalated. A lost woman stays escalated to the district.
pub fn escalation(status: CaseStatus, days_overdue: i64, supervisor_after: i64, district_after: i64) -> Escalation {
    match status {
        CaseStatus::LostToFollowUp => Escalation::District,
        CaseStatus::Active | CaseStatus::Traced if days_overdue >= district_after => Escalation::District,
        CaseStatus::Active | CaseStatus::Traced if days_overdue >= supervisor_after => Escalation::Supervisor,
        CaseStatus::Active | CaseStatus::Traced if days_overdue > 0 => Escalation::CaseManager,
        _ => Escalation::None,
    }
}

/// A case as stored, with what is derived from it today.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    pub id: String,
    pub pregnancy_id: String,
    pub person_id: String,
    pub status: CaseStatus,
    pub status_label: &'static str,
    pub colour: crate::risk::model::RiskColour,
    pub colour_label: &'static str,
    pub purple: bool,
    pub case_manager_id: Option<String>,
    pub delivery_level: String,
    pub delivery_facility_id: Option<String>,
    pub follow_up_days: i32,
    pub next_follow_up: NaiveDate,
    pub last_contact: Option<NaiveDate>,
    pub opened_at: chrono::NaiveDateTime,
    pub opened_by: String,
    pub closed_at: Option<chrono::NaiveDateTime>,
    pub close_reason: Option<String>,
    pub moved_to: Option<String>,
    pub escalation: Escalation,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseEvent {
    pub kind: String,
    pub note: String,
    pub actor_name: String,
    pub at: chrono::NaiveDateTime,
}

/// 孕产妇妊娠风险评估分级报告单 sent to the district MCH institution.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub case_id: String,
    pub assessment_id: String,
    pub colour: crate::risk::model::RiskColour,
    pub colour_label: &'static str,
    pub purple: bool,
    pub due_at: chrono::NaiveDateTime,
    pub sent_at: Option<chrono::NaiveDateTime>,
    pub sent_by: Option<String>,
    pub ack_due_at: Option<chrono::NaiveDateTime>,
    pub acknowledged_at: Option<chrono::NaiveDateTime>,
    pub acknowledged_by: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

impl CaseReport {
    /// Sent after its deadline, or still unsent past it.
    pub fn late(&self, now: chrono::NaiveDateTime) -> bool {
        self.sent_at.map_or(now > self.due_at, |s| s > self.due_at)
    }
    /// Acknowledged after its deadline, or still unacknowledged past it.
    pub fn ack_late(&self, now: chrono::NaiveDateTime) -> bool {
        match (self.ack_due_at, self.acknowledged_at) {
            (Some(due), Some(a)) => a > due,
            (Some(due), None) => now > due,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn every_state_and_action_has_a_defined_answer() {
        use CaseStatus::*;
        let none = ClosingFacts::default();
        let done = ClosingFacts {
            delivered: true,
            postpartum_42d_done: true,
        };
        let actions = [
            CaseAction::FollowUp,
            CaseAction::Traced,
            CaseAction::Lost,
            CaseAction::MoveOut,
            CaseAction::Close(CloseReason::Death),
            CaseAction::Close(CloseReason::PostpartumCheckDone),
            CaseAction::Close(CloseReason::MoveOutAccepted),
        ];
        // (status, overdue, facts) → expected result per action, in the order above (None = refused).
        let table: [(CaseStatus, bool, ClosingFacts, [Option<CaseStatus>; 7]); 7] = [
            (
                Active,
                false,
                none,
                [Some(Active), None, None, Some(MovedOut), Some(Closed), None, None],
            ),
            (
                Active,
                true,
                none,
                [
                    Some(Active),
                    Some(Traced),
                    Some(LostToFollowUp),
                    Some(MovedOut),
                    Some(Closed),
                    None,
                    None,
                ],
            ),
            (
                Active,
                false,
                done,
                [
                    Some(Active),
                    None,
                    None,
                    Some(MovedOut),
                    Some(Closed),
                    Some(Closed),
                    None,
                ],
            ),
            (
                Traced,
                true,
                none,
                [
                    Some(Active),
                    None,
                    Some(LostToFollowUp),
                    Some(MovedOut),
                    Some(Closed),
                    None,
                    None,
                ],
            ),
            (
                LostToFollowUp,
                false,
                none,
                [
                    Some(Active),
                    Some(Traced),
                    None,
                    Some(MovedOut),
                    Some(Closed),
                    None,
                    None,
                ],
            ),
            (
                MovedOut,
                false,
                none,
                [None, None, None, None, Some(Closed), None, Some(Closed)],
            ),
            (Closed, false, done, [None, None, None, None, None, None, None]),
        ];
        for (status, overdue, facts, expected) in table {
            for (action, want) in actions.iter().zip(expected) {
                let got = transition(status, action, overdue, facts).ok();
                assert_eq!(got, want, "{status:?} overdue={overdue} {action:?}");
            }
        }
    }

    #[test]
    fn overdue_follow_ups_escalate_step_by_step() {
        let next = d(11, 1);
        assert_eq!(days_overdue(CaseStatus::Active, next, d(11, 1)), 0);
        assert_eq!(days_overdue(CaseStatus::Active, next, d(11, 4)), 3);
        assert_eq!(days_overdue(CaseStatus::Closed, next, d(11, 30)), 0);
        assert_eq!(escalation(CaseStatus::Active, 0, 3, 7), Escalation::None);
        assert_eq!(escalation(CaseStatus::Active, 1, 3, 7), Escalation::CaseManager);
        assert_eq!(escalation(CaseStatus::Active, 3, 3, 7), Escalation::Supervisor);
        assert_eq!(escalation(CaseStatus::Traced, 7, 3, 7), Escalation::District);
        assert_eq!(escalation(CaseStatus::LostToFollowUp, 0, 3, 7), Escalation::District);
        assert_eq!(escalation(CaseStatus::Closed, 30, 3, 7), Escalation::None);
        assert_eq!(
            Escalation::from_rank(Escalation::Supervisor.rank()),
            Escalation::Supervisor
        );
    }

    /// A programme that allows every reason it is asked about: what is left is the state rules.
    struct Allows(bool);
    impl ClosingRule for Allows {
        fn may_close(&self, _: CloseReason) -> Result<(), String> {
            if self.0 { Ok(()) } else { Err("no".into()) }
        }
    }

    #[test]
    fn the_neutral_closing_reasons_follow_the_states_and_the_programmes_rule() {
        use CaseStatus::*;
        let close = |r| CaseAction::Close(r);
        for r in [CloseReason::Recovered, CloseReason::Referred, CloseReason::AgedOut] {
            assert_eq!(transition(Active, &close(r), false, Allows(true)), Ok(Closed), "{r:?}");
            assert_eq!(transition(LostToFollowUp, &close(r), false, Allows(true)), Ok(Closed));
            assert!(transition(Active, &close(r), false, Allows(false)).is_err());
            assert!(
                transition(MovedOut, &close(r), false, Allows(true)).is_err(),
                "moved out waits"
            );
        }
        let lost = close(CloseReason::LostToFollowUp);
        assert_eq!(transition(LostToFollowUp, &lost, false, Allows(true)), Ok(Closed));
        assert!(
            transition(Active, &lost, true, Allows(true)).is_err(),
            "mark lost first"
        );
        assert!(transition(Traced, &lost, true, Allows(true)).is_err());
        // A pregnancy case knows none of them, and its own list parses only its own reasons.
        let facts = ClosingFacts {
            delivered: true,
            postpartum_42d_done: true,
        };
        for r in [CloseReason::Recovered, CloseReason::Referred, CloseReason::AgedOut] {
            assert!(transition(Active, &close(r), false, facts).is_err());
            assert_eq!(CloseReason::parse(r.as_str()), None);
            assert_eq!(CloseReason::parse_among(r.as_str(), &CloseReason::ALL), Some(r));
        }
        assert_eq!(CloseReason::parse("death"), Some(CloseReason::Death));
    }
}
