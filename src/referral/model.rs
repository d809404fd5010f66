//! The referral green channel (转诊绿色通道), pure: the state machine, what each side may do, the
//! clock of each step and its escalation ladder, the receiving-centre suggestion and the measures.
//!
//! RULES.md §4: critical-care centres (危重孕产妇/新生儿救治中心) take referrals from the delivery
//! facilities of their 责任片区, must not refuse them, prepare before arrival and send feedback
//! (转诊反馈单/回执). No national time limits exist (§4.3 [?]): the clocks are data
//! (`rules/referral/clocks.toml`, a local default [L]) and every step keeps its time and actor so
//! that delays can be audited.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::facility::model::{Facility, Kind, Level};

// ------------------------------------------------------------------ vocabulary

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal, $zh:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
        }
    };
}

str_enum!(
    /// GLOSSARY "referral states".
    State {
        Draft => "draft", "草稿",
        Sent => "sent", "已发出",
        Acknowledged => "acknowledged", "已接收",
        Accepted => "accepted", "已接诊",
        Rejected => "rejected", "拒收",
        Redirected => "redirected", "改转",
        Departed => "departed", "已出发",
        Arrived => "arrived", "已到达",
        FeedbackReturned => "feedback_returned", "已反馈",
        Closed => "closed", "结束",
        Cancelled => "cancelled", "取消",
    }
);

str_enum!(
    /// GLOSSARY "referral urgency" (FHIR ServiceRequest.priority stat / urgent / routine).
    Urgency {
        Emergency => "emergency", "紧急",
        Urgent => "urgent", "急",
        Planned => "planned", "择期",
    }
);

str_enum!(
    /// Who is referred: a pregnant or postpartum woman, or a newborn.
    PatientKind {
        Maternal => "maternal", "孕产妇",
        Newborn => "newborn", "新生儿",
    }
);

str_enum!(
    /// What a user does to a referral (ARCHITECTURE.md `POST /api/referrals/{id}/{action}`).
    Verb {
        Send => "send", "发出",
        Acknowledge => "acknowledge", "确认接收",
        Accept => "accept", "同意接诊",
        Reject => "reject", "拒收",
        Redirect => "redirect", "改转其他中心",
        Depart => "depart", "已出发",
        Arrive => "arrive", "已到达交接",
        Feedback => "feedback", "反馈",
        Close => "close", "结束",
        Cancel => "cancel", "取消",
    }
);

str_enum!(
    /// The step whose clock is running.
    Step {
        Acknowledge => "acknowledge", "确认接收",
        Decide => "decide", "接诊决定",
        Reroute => "reroute", "改送下一中心",
        Depart => "depart", "出发",
        Arrive => "arrive", "到达交接",
        Feedback => "feedback", "反馈",
    }
);

str_enum!(
    /// Outcome on the feedback (RULES.md §4.3 feedback part).
    Outcome {
        Survived => "survived", "存活/好转",
        Died => "died", "死亡",
        InTreatment => "in_treatment", "仍在治疗",
        ReferredDown => "referred_down", "下转",
    }
);

/// The two sides of a referral. An actor belongs to the side whose facility it works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Sender,
    Receiver,
}

impl State {
    /// Open: the patient's referral still needs someone to act.
    pub fn is_open(self) -> bool {
        !matches!(self, State::Closed | State::Cancelled)
    }
}

impl Verb {
    /// Which side performs this verb. Closing is done by either side (checked in [`transition`]).
    pub fn party(self) -> Party {
        match self {
            Verb::Send | Verb::Depart | Verb::Cancel | Verb::Close => Party::Sender,
            Verb::Acknowledge | Verb::Accept | Verb::Reject | Verb::Redirect | Verb::Arrive | Verb::Feedback => {
                Party::Receiver
            }
        }
    }
}

/// Why a transition is refused, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The state machine: from `state`, may `party` do `verb`, and where does it lead?
///
/// * draft → sent (sender) → acknowledged (receiver) → accepted | rejected | redirected (receiver);
///   accept, reject and redirect may also come straight from sent (a phone call answered at once).
/// * rejected → sent again to the next centre (sender); redirected → the new centre acknowledges.
/// * accepted → departed (sender) → arrived with hand-over (receiver; also straight from sent,
///   acknowledged, redirected or accepted: arrival implies acceptance) → feedback returned (receiver,
///   may be updated, e.g. "still in treatment" → final outcome) → closed (either side).
/// * cancelled (sender, with reason) from any state before arrival. After arrival the patient is in
///   the centre's care: the loop ends only through feedback (a centre cannot close a received
///   referral without feedback, issue 4 §3).
pub fn transition(state: State, verb: Verb, party: Party) -> Result<State, Refusal> {
    use State as S;
    let allowed_party = match verb {
        Verb::Close => true,
        v => v.party() == party,
    };
    if !allowed_party {
        let who = match verb.party() {
            Party::Sender => "转出机构",
            Party::Receiver => "接收中心",
        };
        return Err(Refusal(format!("只有{who}可以执行「{}」", verb.label_zh())));
    }
    let next = match (verb, state) {
        (Verb::Send, S::Draft | S::Rejected) => S::Sent,
        (Verb::Acknowledge, S::Sent | S::Redirected) => S::Acknowledged,
        (Verb::Accept, S::Sent | S::Redirected | S::Acknowledged) => S::Accepted,
        (Verb::Reject, S::Sent | S::Redirected | S::Acknowledged) => S::Rejected,
        (Verb::Redirect, S::Sent | S::Redirected | S::Acknowledged) => S::Redirected,
        (Verb::Depart, S::Accepted) => S::Departed,
        // The patient in front of the centre is received whatever was (not) clicked before: a
        // missing "accepted" or "departed" must never hold up hand-over and care (safer reading of
        // RULES.md §4.3: the phone call, not the click, is what happens first).
        (Verb::Arrive, S::Sent | S::Acknowledged | S::Accepted | S::Redirected | S::Departed) => S::Arrived,
        (Verb::Feedback, S::Arrived | S::FeedbackReturned) => S::FeedbackReturned,
        (Verb::Close, S::FeedbackReturned) => S::Closed,
        (
            Verb::Cancel,
            S::Draft | S::Sent | S::Acknowledged | S::Accepted | S::Rejected | S::Redirected | S::Departed,
        ) => S::Cancelled,
        (Verb::Close, S::Arrived) => {
            return Err(Refusal("患者已到达，须先填写转诊反馈（回执）才能结束".into()));
        }
        (Verb::Cancel, S::Arrived | S::FeedbackReturned) => {
            return Err(Refusal("患者已到达接收中心，不能取消；请填写反馈后结束".into()));
        }
        _ => {
            return Err(Refusal(format!(
                "当前状态「{}」不能执行「{}」",
                state.label_zh(),
                verb.label_zh()
            )));
        }
    };
    Ok(next)
}

/// The clock running in a state, if any.
pub fn step_of(state: State) -> Option<Step> {
    match state {
        State::Sent | State::Redirected => Some(Step::Acknowledge),
        State::Acknowledged => Some(Step::Decide),
        State::Rejected => Some(Step::Reroute),
        State::Accepted => Some(Step::Depart),
        State::Departed => Some(Step::Arrive),
        State::Arrived => Some(Step::Feedback),
        State::Draft | State::FeedbackReturned | State::Closed | State::Cancelled => None,
    }
}

impl Step {
    /// The side whose turn it is.
    pub fn party(self) -> Party {
        match self {
            Step::Reroute | Step::Depart => Party::Sender,
            Step::Acknowledge | Step::Decide | Step::Arrive | Step::Feedback => Party::Receiver,
        }
    }
}

// ------------------------------------------------------------------ clocks

/// Step limits in minutes for one urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub acknowledge: u32,
    pub decide: u32,
    pub reroute: u32,
    pub depart: u32,
    pub arrive: u32,
    pub feedback: u32,
}

impl Limits {
    pub fn minutes(&self, step: Step) -> u32 {
        match step {
            Step::Acknowledge => self.acknowledge,
            Step::Decide => self.decide,
            Step::Reroute => self.reroute,
            Step::Depart => self.depart,
            Step::Arrive => self.arrive,
            Step::Feedback => self.feedback,
        }
    }
}

/// The clock table (`rules/referral/clocks.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clocks {
    pub id: String,
    pub source: String,
    pub emergency: Limits,
    pub urgent: Limits,
    pub planned: Limits,
}

const DEFAULT_CLOCKS: &str = include_str!("../../rules/referral/clocks.toml");

impl Clocks {
    pub fn parse(text: &str) -> Result<Clocks, String> {
        let c: Clocks = toml::from_str(text).map_err(|e| format!("referral clocks: {e}"))?;
        for u in Urgency::ALL {
            let l = c.limits(*u);
            for s in Step::ALL {
                if l.minutes(*s) == 0 {
                    return Err(format!("referral clocks: {}.{} must be > 0", u.as_str(), s.as_str()));
                }
            }
        }
        Ok(c)
    }

    pub fn limits(&self, u: Urgency) -> &Limits {
        match u {
            Urgency::Emergency => &self.emergency,
            Urgency::Urgent => &self.urgent,
            Urgency::Planned => &self.planned,
        }
    }

    pub fn limit(&self, u: Urgency, step: Step) -> Duration {
        Duration::minutes(i64::from(self.limits(u).minutes(step)))
    }

    /// When the step that starts at `started` in `state` falls due.
    pub fn due_at(&self, u: Urgency, state: State, started: NaiveDateTime) -> Option<NaiveDateTime> {
        step_of(state).map(|s| started + self.limit(u, s))
    }
}

static CLOCKS: OnceLock<Clocks> = OnceLock::new();

/// Choose the clock table at start-up: the built-in default, or a region's file.
pub fn configure(path: Option<&str>) -> Result<(), String> {
    let clocks = match path.filter(|p| !p.is_empty()) {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read referral clocks {p}: {e}"))?;
            Clocks::parse(&text)?
        }
        None => Clocks::parse(DEFAULT_CLOCKS)?,
    };
    match CLOCKS.get() {
        Some(existing) if *existing != clocks => Err("referral clocks already configured differently".into()),
        Some(_) => Ok(()),
        None => {
            let _ = CLOCKS.set(clocks);
            Ok(())
        }
    }
}

/// The clock table in force.
pub fn clocks() -> &'static Clocks {
    CLOCKS.get_or_init(|| Clocks::parse(DEFAULT_CLOCKS).unwrap_or_else(|e| panic!("built-in clocks: {e}")))
}

/// The escalation ladder: late by its limit → level 1 (the responsible facility's duty doctor),
/// by twice → level 2 (county MCH institution), by three times → level 3 (city).
pub const MAX_ESCALATION: i32 = 3;

/// The escalation level a step has reached at `now` (0: not late).
pub fn escalation_level(due_at: NaiveDateTime, limit: Duration, now: NaiveDateTime) -> i32 {
    if now < due_at {
        return 0;
    }
    let late = now - due_at;
    let steps = if limit.num_seconds() > 0 {
        late.num_seconds() / limit.num_seconds()
    } else {
        0
    };
    (1 + steps).min(i64::from(MAX_ESCALATION)) as i32
}

/// The ladder's rungs for a step that `responsible` must take: itself, the county MCH institution
/// of its county, the city MCH institution of its city. A rung that is the same facility as the
/// one below it moves up (a county MCH centre that is itself late escalates to the city).
pub fn ladder<'a>(responsible: &'a Facility, directory: &'a [Facility]) -> [Option<&'a Facility>; 3] {
    let j = responsible.jurisdiction.as_str();
    let mch = |level: Level, prefix: Option<&str>| {
        directory.iter().find(move |f| {
            f.kind == Kind::MchCentre && f.level == level && prefix.is_some_and(|p| f.jurisdiction.starts_with(p))
        })
    };
    // Candidates above the responsible facility, nearest first; each rung is a different
    // facility from the ones below it (a late city centre escalates to the province).
    let candidates = [
        mch(Level::County, Some(j)),
        mch(Level::City, j.get(..4)),
        mch(Level::Province, j.get(..2)),
    ];
    let mut rungs: [Option<&Facility>; 3] = [Some(responsible), None, None];
    let mut next = 1;
    for c in candidates.into_iter().flatten() {
        if next < 3 && rungs[..next].iter().flatten().all(|r| r.id != c.id) {
            rungs[next] = Some(c);
            next += 1;
        }
    }
    rungs
}

// ------------------------------------------------------------------ the record

/// Vital signs at departure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Vitals {
    pub systolic_mmhg: Option<u16>,
    pub diastolic_mmhg: Option<u16>,
    pub pulse_per_min: Option<u16>,
    pub resp_per_min: Option<u16>,
    pub spo2_percent: Option<u16>,
    pub temperature_c: Option<f32>,
    pub consciousness: Option<String>,
}

/// What the sender records beyond the few fields an emergency needs (all addable later).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Details {
    pub diagnoses: String,
    /// The risk colour at referral (`green`…`red`; `purple` for 紫色), prefilled from the grade.
    pub risk_colour: Option<String>,
    pub gestational_weeks: Option<u16>,
    pub gestational_days: Option<u16>,
    pub days_postpartum: Option<u16>,
    pub newborn_age_days: Option<u16>,
    pub vitals: Vitals,
    /// Drugs, fluids, blood given before and during transfer.
    pub treatment: String,
    pub escort: String,
    pub contact_phone: String,
    /// WHO near-miss criteria met (codes of `rules/referral/catalogue.toml`).
    pub near_miss: Vec<String>,
    pub danger_signs: Vec<String>,
    /// Capabilities the patient needs (e.g. `icu`, `blood_bank`), used for the suggestion.
    pub needs: Vec<String>,
    /// When the sender phoned the centre (RULES.md §4.3 step 2).
    pub called_at: Option<NaiveDateTime>,
}

pub const RISK_COLOURS: [&str; 5] = ["green", "yellow", "orange", "red", "purple"];

/// The zh-CN label of a risk colour code (GLOSSARY "five-colour grade").
pub fn risk_colour_label(code: &str) -> &'static str {
    match code {
        "green" => "绿色",
        "yellow" => "黄色",
        "orange" => "橙色",
        "red" => "红色",
        "purple" => "紫色",
        _ => "",
    }
}

/// The hand-over at arrival (RULES.md §4.3 step 4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Handover {
    pub received_by: String,
    pub note: String,
}

/// The feedback part (转诊反馈单/回执, RULES.md §4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub diagnosis: String,
    #[serde(default)]
    pub treatment: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub signed_by: String,
}

/// A command with what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send (from draft), or send again to the next centre after a rejection (`to` required then).
    Send {
        to: Option<String>,
    },
    Acknowledge,
    Accept,
    Reject {
        reason: String,
    },
    Redirect {
        to: String,
        reason: String,
    },
    Depart,
    Arrive(Handover),
    Feedback(Feedback),
    Close,
    Cancel {
        reason: String,
    },
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::Send { .. } => Verb::Send,
            Command::Acknowledge => Verb::Acknowledge,
            Command::Accept => Verb::Accept,
            Command::Reject { .. } => Verb::Reject,
            Command::Redirect { .. } => Verb::Redirect,
            Command::Depart => Verb::Depart,
            Command::Arrive(_) => Verb::Arrive,
            Command::Feedback(_) => Verb::Feedback,
            Command::Close => Verb::Close,
            Command::Cancel { .. } => Verb::Cancel,
        }
    }
}

/// A referral's lifecycle data (what the state machine governs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Referral {
    pub id: String,
    pub urgency: Urgency,
    pub state: State,
    pub from_facility_id: String,
    pub to_facility_id: String,
    /// Centres that rejected or redirected this patient away (never suggested again).
    pub declined_by: Vec<String>,
    pub handover: Option<Handover>,
    pub feedback: Option<Feedback>,
    /// Counts transitions; names the current step instance (escalation happens once per level per step).
    pub step_no: i32,
    pub step_started_at: NaiveDateTime,
    pub step_due_at: Option<NaiveDateTime>,
    pub escalation_level: i32,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub accepted_at: Option<NaiveDateTime>,
    pub departed_at: Option<NaiveDateTime>,
    pub arrived_at: Option<NaiveDateTime>,
    pub feedback_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
}

/// A referral as stored: its lifecycle plus who it is for and what the sender recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferralRecord {
    #[serde(flatten)]
    pub lifecycle: Referral,
    pub person_id: String,
    pub pregnancy_id: Option<String>,
    pub patient_kind: PatientKind,
    /// The patient's managing county and township (access scope).
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub reason: String,
    pub opened_by: String,
    pub details: Details,
    pub version: i32,
    pub updated_at: NaiveDateTime,
    /// The identifier of the hospital that opened it over HL7 (`app|facility|RF1-6`), if any.
    pub external_ref: Option<String>,
}

/// What a transition changed, for the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub verb: Verb,
    /// The facility that must act next when the receiver changed (send, redirect).
    pub new_receiver: Option<String>,
    pub detail: String,
}

/// Free text from a form or an interface: no control characters (they would break printed forms,
/// HL7 segments and the live board's event stream).
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

fn required(text: &str, field: &str, what: &str) -> Result<String, Vec<FieldError>> {
    let t = text.trim();
    if has_control(t) {
        Err(vec![FieldError::new(field, "control", format!("{what}含有控制字符"))])
    } else if t.is_empty() {
        Err(vec![FieldError::new(field, "required", format!("请填写{what}"))])
    } else if t.chars().count() > 2000 {
        Err(vec![FieldError::new(field, "too_long", format!("{what}过长"))])
    } else {
        Ok(t.to_string())
    }
}

/// Why a command failed: a refused transition (409) or bad input (422).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandError {
    Refused(Refusal),
    Invalid(Vec<FieldError>),
}

impl Referral {
    /// A new draft.
    pub fn draft(
        id: String,
        urgency: Urgency,
        from: String,
        to: String,
        now: NaiveDateTime,
    ) -> Result<Referral, CommandError> {
        if from == to {
            return Err(CommandError::Invalid(vec![FieldError::new(
                "to_facility",
                "same_facility",
                "接收中心不能是本机构",
            )]));
        }
        Ok(Referral {
            id,
            urgency,
            state: State::Draft,
            from_facility_id: from,
            to_facility_id: to,
            declined_by: Vec::new(),
            handover: None,
            feedback: None,
            step_no: 0,
            step_started_at: now,
            step_due_at: None,
            escalation_level: 0,
            created_at: now,
            sent_at: None,
            acknowledged_at: None,
            accepted_at: None,
            departed_at: None,
            arrived_at: None,
            feedback_at: None,
            ended_at: None,
        })
    }

    /// The step whose clock runs now.
    pub fn step(&self) -> Option<Step> {
        step_of(self.state)
    }

    /// Apply a command by `party` at `now` under `clocks`. On refusal nothing changes.
    pub fn apply(
        &mut self,
        cmd: Command,
        party: Party,
        now: NaiveDateTime,
        clocks: &Clocks,
    ) -> Result<Transition, CommandError> {
        let verb = cmd.verb();
        let from = self.state;
        let to = transition(from, verb, party).map_err(CommandError::Refused)?;
        let mut next = self.clone();
        let mut new_receiver = None;
        let detail = match cmd {
            Command::Send { to: target } => {
                if from == State::Rejected {
                    let Some(t) = target.filter(|t| !t.is_empty()) else {
                        return Err(CommandError::Invalid(vec![FieldError::new(
                            "to_facility",
                            "required",
                            "已被拒收，请选择下一个接收中心",
                        )]));
                    };
                    next.route_to(&t)?;
                    // The new centre has not acknowledged anything yet.
                    next.acknowledged_at = None;
                } else if let Some(t) = target.filter(|t| !t.is_empty() && *t != self.to_facility_id) {
                    next.route_to(&t)?;
                }
                next.sent_at.get_or_insert(now);
                new_receiver = Some(next.to_facility_id.clone());
                String::new()
            }
            Command::Acknowledge => {
                next.acknowledged_at = Some(now);
                String::new()
            }
            Command::Accept => {
                // Accepting without a separate acknowledgement acknowledges too.
                next.acknowledged_at = Some(
                    next.acknowledged_at
                        .filter(|_| from == State::Acknowledged)
                        .unwrap_or(now),
                );
                next.accepted_at = Some(now);
                String::new()
            }
            Command::Reject { reason } => {
                let reason = required(&reason, "reason", "拒收原因").map_err(CommandError::Invalid)?;
                if from != State::Acknowledged {
                    next.acknowledged_at = Some(now);
                }
                next.declined_by.push(self.to_facility_id.clone());
                reason
            }
            Command::Redirect { to: target, reason } => {
                let reason = required(&reason, "reason", "改转原因").map_err(CommandError::Invalid)?;
                next.declined_by.push(self.to_facility_id.clone());
                next.route_to(&target)?;
                next.acknowledged_at = None;
                new_receiver = Some(target);
                reason
            }
            Command::Depart => {
                next.departed_at = Some(now);
                String::new()
            }
            Command::Arrive(h) => {
                let received_by = required(&h.received_by, "received_by", "接收医生").map_err(CommandError::Invalid)?;
                next.arrived_at = Some(now);
                // Arrival implies the centre took her; a departure nobody recorded stays unknown.
                next.acknowledged_at.get_or_insert(now);
                next.accepted_at.get_or_insert(now);
                next.handover = Some(Handover {
                    received_by,
                    note: h.note.trim().to_string(),
                });
                String::new()
            }
            Command::Feedback(f) => {
                let mut errors = Vec::new();
                let diagnosis = required(&f.diagnosis, "diagnosis", "接收诊断")
                    .map_err(|e| errors.extend(e))
                    .ok();
                if !errors.is_empty() {
                    return Err(CommandError::Invalid(errors));
                }
                next.feedback = Some(Feedback {
                    diagnosis: diagnosis.unwrap_or_default(),
                    treatment: f.treatment.trim().to_string(),
                    outcome: f.outcome,
                    note: f.note.trim().to_string(),
                    signed_by: f.signed_by.trim().to_string(),
                });
                // The first feedback is what the clock measured; later updates keep that time.
                next.feedback_at.get_or_insert(now);
                f.outcome.label_zh().to_string()
            }
            Command::Close => {
                next.ended_at = Some(now);
                String::new()
            }
            Command::Cancel { reason } => {
                let reason = required(&reason, "reason", "取消原因").map_err(CommandError::Invalid)?;
                next.ended_at = Some(now);
                reason
            }
        };
        next.state = to;
        // A new step starts whenever the state changes (or the receiver changes on a redirect);
        // a feedback update in place keeps the loop's state and has no clock of its own.
        if from != to || new_receiver.is_some() {
            next.step_no += 1;
            next.step_started_at = now;
            next.step_due_at = clocks.due_at(next.urgency, to, now);
            next.escalation_level = 0;
        }
        *self = next;
        Ok(Transition {
            from,
            to,
            verb,
            new_receiver,
            detail,
        })
    }

    fn route_to(&mut self, target: &str) -> Result<(), CommandError> {
        let bad = |msg: &str| {
            Err(CommandError::Invalid(vec![FieldError::new(
                "to_facility",
                "to_facility",
                msg.to_string(),
            )]))
        };
        if target.is_empty() {
            return bad("请选择接收中心");
        }
        if target == self.from_facility_id {
            return bad("接收中心不能是转出机构");
        }
        if self.declined_by.iter().any(|d| d == target) {
            return bad("该中心已拒收或改转过本次转诊，请选择其他中心");
        }
        self.to_facility_id = target.to_string();
        Ok(())
    }

    /// Door-to-door intervals (minutes) from the first sending.
    pub fn intervals(&self) -> Intervals {
        let mins = |a: Option<NaiveDateTime>, b: Option<NaiveDateTime>| match (a, b) {
            (Some(a), Some(b)) if b >= a => Some((b - a).num_seconds() as f64 / 60.0),
            _ => None,
        };
        Intervals {
            to_acknowledge: mins(self.sent_at, self.acknowledged_at),
            to_accept: mins(self.sent_at, self.accepted_at),
            accept_to_depart: mins(self.accepted_at, self.departed_at),
            transport: mins(self.departed_at, self.arrived_at),
            door_to_door: mins(self.sent_at, self.arrived_at),
            arrival_to_feedback: mins(self.arrived_at, self.feedback_at),
        }
    }
}

/// Minutes between steps of one referral.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Intervals {
    pub to_acknowledge: Option<f64>,
    pub to_accept: Option<f64>,
    pub accept_to_depart: Option<f64>,
    pub transport: Option<f64>,
    pub door_to_door: Option<f64>,
    pub arrival_to_feedback: Option<f64>,
}

// ------------------------------------------------------------------ details validation

/// Ticked items of the near-miss / danger-sign checklists.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CatalogueItem {
    pub code: String,
    #[serde(default)]
    pub system: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Catalogue {
    pub near_miss: Vec<CatalogueItem>,
    pub maternal_danger: Vec<CatalogueItem>,
    pub newborn_danger: Vec<CatalogueItem>,
}

pub fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| {
        toml::from_str(include_str!("../../rules/referral/catalogue.toml"))
            .unwrap_or_else(|e| panic!("built-in referral catalogue: {e}"))
    })
}

impl Details {
    /// These details with what `newer` says on top: its non-empty text, given values and
    /// non-empty lists win; what it leaves out stays (an interface update carries only part).
    pub fn overlaid(&self, newer: Details) -> Details {
        let text = |old: &String, new: String| if new.trim().is_empty() { old.clone() } else { new };
        let list = |old: &Vec<String>, new: Vec<String>| if new.is_empty() { old.clone() } else { new };
        let v = &self.vitals;
        let n = newer.vitals;
        Details {
            diagnoses: text(&self.diagnoses, newer.diagnoses),
            risk_colour: newer.risk_colour.or_else(|| self.risk_colour.clone()),
            gestational_weeks: newer.gestational_weeks.or(self.gestational_weeks),
            gestational_days: newer.gestational_days.or(self.gestational_days),
            days_postpartum: newer.days_postpartum.or(self.days_postpartum),
            newborn_age_days: newer.newborn_age_days.or(self.newborn_age_days),
            vitals: Vitals {
                systolic_mmhg: n.systolic_mmhg.or(v.systolic_mmhg),
                diastolic_mmhg: n.diastolic_mmhg.or(v.diastolic_mmhg),
                pulse_per_min: n.pulse_per_min.or(v.pulse_per_min),
                resp_per_min: n.resp_per_min.or(v.resp_per_min),
                spo2_percent: n.spo2_percent.or(v.spo2_percent),
                temperature_c: n.temperature_c.or(v.temperature_c),
                consciousness: n.consciousness.or_else(|| v.consciousness.clone()),
            },
            treatment: text(&self.treatment, newer.treatment),
            escort: text(&self.escort, newer.escort),
            contact_phone: text(&self.contact_phone, newer.contact_phone),
            near_miss: list(&self.near_miss, newer.near_miss),
            danger_signs: list(&self.danger_signs, newer.danger_signs),
            needs: list(&self.needs, newer.needs),
            called_at: newer.called_at.or(self.called_at),
        }
    }

    /// Check plausibility; nothing is stored when any field is wrong.
    pub fn validate(mut self, kind: PatientKind) -> Result<Details, Vec<FieldError>> {
        let mut errors = Vec::new();
        let v = &self.vitals;
        let range = |errors: &mut Vec<FieldError>, name: &str, value: Option<f64>, lo: f64, hi: f64, label: &str| {
            if let Some(x) = value
                && !(lo..=hi).contains(&x)
            {
                errors.push(FieldError::new(name, "range", format!("{label}须在 {lo}–{hi} 之间")));
            }
        };
        range(
            &mut errors,
            "systolic_mmhg",
            v.systolic_mmhg.map(f64::from),
            0.0,
            300.0,
            "收缩压",
        );
        range(
            &mut errors,
            "diastolic_mmhg",
            v.diastolic_mmhg.map(f64::from),
            0.0,
            200.0,
            "舒张压",
        );
        range(
            &mut errors,
            "pulse_per_min",
            v.pulse_per_min.map(f64::from),
            0.0,
            300.0,
            "脉搏",
        );
        range(
            &mut errors,
            "resp_per_min",
            v.resp_per_min.map(f64::from),
            0.0,
            120.0,
            "呼吸",
        );
        range(
            &mut errors,
            "spo2_percent",
            v.spo2_percent.map(f64::from),
            0.0,
            100.0,
            "血氧饱和度",
        );
        range(
            &mut errors,
            "temperature_c",
            v.temperature_c.map(f64::from),
            25.0,
            45.0,
            "体温",
        );
        if let (Some(s), Some(d)) = (v.systolic_mmhg, v.diastolic_mmhg)
            && s > 0
            && d >= s
        {
            errors.push(FieldError::new("diastolic_mmhg", "bp", "舒张压须低于收缩压"));
        }
        range(
            &mut errors,
            "gestational_weeks",
            self.gestational_weeks.map(f64::from),
            0.0,
            45.0,
            "孕周",
        );
        range(
            &mut errors,
            "gestational_days",
            self.gestational_days.map(f64::from),
            0.0,
            6.0,
            "孕天",
        );
        range(
            &mut errors,
            "days_postpartum",
            self.days_postpartum.map(f64::from),
            0.0,
            365.0,
            "产后天数",
        );
        range(
            &mut errors,
            "newborn_age_days",
            self.newborn_age_days.map(f64::from),
            0.0,
            365.0,
            "新生儿日龄",
        );
        if let Some(c) = &self.risk_colour
            && !RISK_COLOURS.contains(&c.as_str())
        {
            errors.push(FieldError::new("risk_colour", "choice", "风险颜色取值无效"));
        }
        let cat = catalogue();
        let known = |list: &[CatalogueItem], code: &str| list.iter().any(|i| i.code == code);
        if self.near_miss.iter().any(|c| !known(&cat.near_miss, c)) {
            errors.push(FieldError::new("near_miss", "choice", "危重症判定条目无效"));
        }
        let signs = match kind {
            PatientKind::Maternal => &cat.maternal_danger,
            PatientKind::Newborn => &cat.newborn_danger,
        };
        if self.danger_signs.iter().any(|c| !known(signs, c)) {
            errors.push(FieldError::new("danger_signs", "choice", "危险征象条目无效"));
        }
        if self
            .needs
            .iter()
            .any(|c| !crate::facility::model::CAPABILITIES.contains(&c.as_str()))
        {
            errors.push(FieldError::new("needs", "choice", "所需救治能力取值无效"));
        }
        for (name, text) in [
            ("diagnoses", &self.diagnoses),
            ("treatment", &self.treatment),
            ("escort", &self.escort),
            ("contact_phone", &self.contact_phone),
        ] {
            if text.chars().count() > 2000 {
                errors.push(FieldError::new(name, "too_long", "内容过长"));
            } else if has_control(text) {
                errors.push(FieldError::new(name, "control", "内容含有控制字符"));
            }
        }
        if self.contact_phone.chars().count() > 40 {
            errors.push(FieldError::new("contact_phone", "too_long", "联系电话过长"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.near_miss.sort();
        self.near_miss.dedup();
        self.danger_signs.sort();
        self.danger_signs.dedup();
        self.needs.sort();
        self.needs.dedup();
        Ok(self)
    }
}

// ------------------------------------------------------------------ receiving-centre suggestion

/// The capability a patient of this kind needs from a centre.
pub fn centre_capability(kind: PatientKind) -> &'static str {
    match kind {
        PatientKind::Maternal => "maternal_critical_care",
        PatientKind::Newborn => "neonatal_critical_care",
    }
}

/// Suggest receiving centres, best first: the sender's responsible centre (责任片区, RULES.md §4.1)
/// when it has what the patient needs, then critical-care centres with the capability from the
/// sender's county up to its city and province (逐级, 跨级 allowed), never the sender itself nor a
/// centre that already declined this patient.
pub fn suggest_centres<'a>(
    sender: &Facility,
    responsible_centre: Option<&str>,
    kind: PatientKind,
    needs: &[String],
    declined: &[String],
    directory: &'a [Facility],
) -> Vec<&'a Facility> {
    let cap = centre_capability(kind);
    let fits = |f: &&Facility| {
        f.id != sender.id
            && !declined.contains(&f.id)
            && f.capabilities.iter().any(|c| c == cap)
            && needs.iter().all(|n| f.capabilities.contains(n))
    };
    let j = sender.jurisdiction.as_str();
    let rank = |f: &Facility| -> (u8, u8) {
        let responsible = u8::from(Some(f.id.as_str()) != responsible_centre);
        let distance = if f.jurisdiction == j {
            0
        } else if f.jurisdiction.get(..4) == j.get(..4) {
            1
        } else if f.jurisdiction.get(..2) == j.get(..2) {
            2
        } else {
            3
        };
        (responsible, distance)
    };
    let mut out: Vec<&Facility> = directory.iter().filter(fits).collect();
    // Within the same distance, the lower level (nearer, 逐级转诊) first.
    out.sort_by_key(|f| (rank(f), level_rank(f.level), f.code.clone()));
    out
}

fn level_rank(l: Level) -> u8 {
    match l {
        Level::Village => 0,
        Level::Township => 1,
        Level::County => 2,
        Level::City => 3,
        Level::Province => 4,
    }
}

// ------------------------------------------------------------------ measures

/// One event of a referral's log, as the measures read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedEvent {
    pub referral_id: String,
    pub at: NaiveDateTime,
    /// A verb (`send`, `accept`, …) or `escalated`.
    pub kind: String,
    /// The acting facility.
    pub facility_id: Option<String>,
    /// The facility the event is addressed to (the new receiver of a send/redirect).
    pub notify_facility_id: Option<String>,
}

/// Per centre and month (issue 4 §8).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CentreMonth {
    pub facility_id: String,
    pub month: String,
    pub received: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub redirected: usize,
    pub acknowledge_median_min: Option<f64>,
    pub acknowledge_p90_min: Option<f64>,
    pub accept_median_min: Option<f64>,
    pub accept_p90_min: Option<f64>,
    pub arrival_median_min: Option<f64>,
    pub arrival_p90_min: Option<f64>,
    pub arrived: usize,
    pub feedback_returned: usize,
    /// feedback_returned / arrived, as a percentage.
    pub feedback_completeness: Option<f64>,
}

/// Nearest-rank percentile of a sorted list (p in 0–100).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn minutes(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    (b - a).num_seconds() as f64 / 60.0
}

/// The measures per receiving centre and month of routing, from the event log: each time a
/// referral is routed to a centre (send, redirect) counts as received there; the time to
/// acknowledge is from that routing to the centre's first answer (acknowledge, accept, reject,
/// redirect), the time to accept from routing to its acceptance, the time to arrival from its
/// acceptance to the arrival it recorded; feedback completeness is the share of arrivals at the
/// centre with feedback returned.
pub fn centre_measures(events: &[LoggedEvent]) -> Vec<CentreMonth> {
    let mut by_referral: BTreeMap<&str, Vec<&LoggedEvent>> = BTreeMap::new();
    for e in events {
        by_referral.entry(e.referral_id.as_str()).or_default().push(e);
    }
    #[derive(Default)]
    struct Acc {
        m: CentreMonth,
        ack: Vec<f64>,
        accept: Vec<f64>,
        arrival: Vec<f64>,
    }
    let mut acc: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for list in by_referral.values_mut() {
        list.sort_by_key(|e| e.at);
        for (i, routed) in list.iter().enumerate() {
            if !matches!(routed.kind.as_str(), "send" | "redirect") {
                continue;
            }
            let Some(centre) = routed.notify_facility_id.clone() else {
                continue;
            };
            // Months are China months (UTC+8), as the reports read them.
            let month = (routed.at + Duration::hours(8)).format("%Y-%m").to_string();
            let a = acc.entry((centre.clone(), month.clone())).or_insert_with(|| Acc {
                m: CentreMonth {
                    facility_id: centre.clone(),
                    month,
                    ..CentreMonth::default()
                },
                ..Acc::default()
            });
            a.m.received += 1;
            // This centre's turn lasts until the next routing.
            let turn: Vec<&&LoggedEvent> = list[i + 1..]
                .iter()
                .take_while(|e| {
                    !matches!(e.kind.as_str(), "send" | "redirect") || e.facility_id.as_deref() == Some(centre.as_str())
                })
                .filter(|e| e.facility_id.as_deref() == Some(centre.as_str()))
                .collect();
            let first_answer = turn
                .iter()
                .find(|e| matches!(e.kind.as_str(), "acknowledge" | "accept" | "reject" | "redirect"));
            if let Some(e) = first_answer {
                a.ack.push(minutes(routed.at, e.at));
            }
            let accept = turn.iter().find(|e| e.kind == "accept");
            if let Some(acc_e) = accept {
                a.m.accepted += 1;
                a.accept.push(minutes(routed.at, acc_e.at));
                if let Some(arr) = turn.iter().find(|e| e.kind == "arrive") {
                    a.arrival.push(minutes(acc_e.at, arr.at));
                }
            }
            if turn.iter().any(|e| e.kind == "reject") {
                a.m.rejected += 1;
            }
            if turn.iter().any(|e| e.kind == "redirect") {
                a.m.redirected += 1;
            }
            if turn.iter().any(|e| e.kind == "arrive") {
                a.m.arrived += 1;
                if turn.iter().any(|e| e.kind == "feedback") {
                    a.m.feedback_returned += 1;
                }
            }
        }
    }
    acc.into_values()
        .map(|mut a| {
            for v in [&mut a.ack, &mut a.accept, &mut a.arrival] {
                v.sort_by(f64::total_cmp);
            }
            a.m.acknowledge_median_min = percentile(&a.ack, 50.0);
            a.m.acknowledge_p90_min = percentile(&a.ack, 90.0);
            a.m.accept_median_min = percentile(&a.accept, 50.0);
            a.m.accept_p90_min = percentile(&a.accept, 90.0);
            a.m.arrival_median_min = percentile(&a.arrival, 50.0);
            a.m.arrival_p90_min = percentile(&a.arrival, 90.0);
            a.m.feedback_completeness =
                (a.m.arrived > 0).then(|| 100.0 * a.m.feedback_returned as f64 / a.m.arrived as f64);
            a.m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn t0() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 24)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap_or_default()
    }

    fn draft() -> Referral {
        Referral::draft("r".into(), Urgency::Emergency, "A".into(), "C1".into(), t0()).unwrap()
    }

    fn cmd(verb: Verb) -> Command {
        match verb {
            Verb::Send => Command::Send { to: None },
            Verb::Acknowledge => Command::Acknowledge,
            Verb::Accept => Command::Accept,
            Verb::Reject => Command::Reject {
                reason: "无床位".into(),
            },
            Verb::Redirect => Command::Redirect {
                to: "C2".into(),
                reason: "需 NICU".into(),
            },
            Verb::Depart => Command::Depart,
            Verb::Arrive => Command::Arrive(Handover {
                received_by: "王医生".into(),
                note: String::new(),
            }),
            Verb::Feedback => Command::Feedback(Feedback {
                diagnosis: "产后出血".into(),
                treatment: String::new(),
                outcome: Outcome::Survived,
                note: String::new(),
                signed_by: String::new(),
            }),
            Verb::Close => Command::Close,
            Verb::Cancel => Command::Cancel {
                reason: "病情好转".into(),
            },
        }
    }

    /// The whole table: every state × verb × party, against the documented machine.
    #[test]
    fn every_transition_is_allowed_or_refused_as_documented() {
        use State as S;
        let allowed: &[(State, Verb, State)] = &[
            (S::Draft, Verb::Send, S::Sent),
            (S::Rejected, Verb::Send, S::Sent),
            (S::Sent, Verb::Acknowledge, S::Acknowledged),
            (S::Redirected, Verb::Acknowledge, S::Acknowledged),
            (S::Sent, Verb::Accept, S::Accepted),
            (S::Redirected, Verb::Accept, S::Accepted),
            (S::Acknowledged, Verb::Accept, S::Accepted),
            (S::Sent, Verb::Reject, S::Rejected),
            (S::Redirected, Verb::Reject, S::Rejected),
            (S::Acknowledged, Verb::Reject, S::Rejected),
            (S::Sent, Verb::Redirect, S::Redirected),
            (S::Redirected, Verb::Redirect, S::Redirected),
            (S::Acknowledged, Verb::Redirect, S::Redirected),
            (S::Accepted, Verb::Depart, S::Departed),
            (S::Departed, Verb::Arrive, S::Arrived),
            (S::Sent, Verb::Arrive, S::Arrived),
            (S::Acknowledged, Verb::Arrive, S::Arrived),
            (S::Accepted, Verb::Arrive, S::Arrived),
            (S::Redirected, Verb::Arrive, S::Arrived),
            (S::Arrived, Verb::Feedback, S::FeedbackReturned),
            (S::FeedbackReturned, Verb::Feedback, S::FeedbackReturned),
            (S::FeedbackReturned, Verb::Close, S::Closed),
            (S::Draft, Verb::Cancel, S::Cancelled),
            (S::Sent, Verb::Cancel, S::Cancelled),
            (S::Acknowledged, Verb::Cancel, S::Cancelled),
            (S::Accepted, Verb::Cancel, S::Cancelled),
            (S::Rejected, Verb::Cancel, S::Cancelled),
            (S::Redirected, Verb::Cancel, S::Cancelled),
            (S::Departed, Verb::Cancel, S::Cancelled),
        ];
        let mut checked = 0;
        for &state in State::ALL {
            for &verb in Verb::ALL {
                for party in [Party::Sender, Party::Receiver] {
                    let expected = allowed
                        .iter()
                        .find(|(s, v, _)| *s == state && *v == verb)
                        .map(|(_, _, to)| *to)
                        .filter(|_| verb == Verb::Close || verb.party() == party);
                    let got = transition(state, verb, party);
                    match expected {
                        Some(to) => assert_eq!(got, Ok(to), "{state:?} {verb:?} {party:?}"),
                        None => assert!(got.is_err(), "{state:?} {verb:?} {party:?} should be refused"),
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 11 * 10 * 2);
    }

    #[test]
    fn a_centre_cannot_close_or_cancel_a_received_referral_without_feedback() {
        let e = transition(State::Arrived, Verb::Close, Party::Receiver).unwrap_err();
        assert!(e.0.contains("反馈"), "{}", e.0);
        assert!(transition(State::Arrived, Verb::Cancel, Party::Sender).is_err());
        assert!(transition(State::Arrived, Verb::Cancel, Party::Receiver).is_err());
        assert!(transition(State::FeedbackReturned, Verb::Close, Party::Receiver).is_ok());
    }

    #[test]
    fn the_wrong_side_is_told_who_may_act() {
        let e = transition(State::Sent, Verb::Accept, Party::Sender).unwrap_err();
        assert!(e.0.contains("接收中心"), "{}", e.0);
        let e = transition(State::Accepted, Verb::Depart, Party::Receiver).unwrap_err();
        assert!(e.0.contains("转出机构"), "{}", e.0);
    }

    #[test]
    fn the_happy_path_stamps_every_step_and_runs_the_right_clocks() {
        let clocks = clocks();
        let mut r = draft();
        let mut now = t0();
        for (verb, party, step) in [
            (Verb::Send, Party::Sender, Some(Step::Acknowledge)),
            (Verb::Acknowledge, Party::Receiver, Some(Step::Decide)),
            (Verb::Accept, Party::Receiver, Some(Step::Depart)),
            (Verb::Depart, Party::Sender, Some(Step::Arrive)),
            (Verb::Arrive, Party::Receiver, Some(Step::Feedback)),
            (Verb::Feedback, Party::Receiver, None),
            (Verb::Close, Party::Sender, None),
        ] {
            now += Duration::minutes(3);
            r.apply(cmd(verb), party, now, clocks).unwrap();
            assert_eq!(r.step(), step, "after {verb:?}");
            assert_eq!(r.step_due_at, step.map(|s| now + clocks.limit(r.urgency, s)));
        }
        assert_eq!(r.state, State::Closed);
        let i = r.intervals();
        assert_eq!(i.to_acknowledge, Some(3.0));
        assert_eq!(i.to_accept, Some(6.0));
        assert_eq!(i.door_to_door, Some(12.0));
        assert_eq!(i.arrival_to_feedback, Some(3.0));
    }

    #[test]
    fn a_rejection_needs_a_reason_and_the_next_centre_must_be_another_one() {
        let clocks = clocks();
        let mut r = draft();
        r.apply(cmd(Verb::Send), Party::Sender, t0(), clocks).unwrap();
        let before = r.clone();
        let e = r
            .apply(Command::Reject { reason: "  ".into() }, Party::Receiver, t0(), clocks)
            .unwrap_err();
        assert!(matches!(e, CommandError::Invalid(_)));
        assert_eq!(r, before, "a refused command changes nothing");
        r.apply(cmd(Verb::Reject), Party::Receiver, t0(), clocks).unwrap();
        assert_eq!(r.step(), Some(Step::Reroute));
        assert!(
            r.apply(Command::Send { to: None }, Party::Sender, t0(), clocks)
                .is_err()
        );
        assert!(
            r.apply(Command::Send { to: Some("C1".into()) }, Party::Sender, t0(), clocks)
                .is_err(),
            "the centre that rejected is not sent the patient again"
        );
        let t = r
            .apply(Command::Send { to: Some("C3".into()) }, Party::Sender, t0(), clocks)
            .unwrap();
        assert_eq!(t.new_receiver.as_deref(), Some("C3"));
        assert_eq!(r.state, State::Sent);
        assert_eq!(r.declined_by, vec!["C1".to_string()]);
    }

    #[test]
    fn a_redirect_hands_the_clock_to_the_new_centre() {
        let clocks = clocks();
        let mut r = draft();
        r.apply(cmd(Verb::Send), Party::Sender, t0(), clocks).unwrap();
        r.apply(cmd(Verb::Acknowledge), Party::Receiver, t0(), clocks).unwrap();
        let later = t0() + Duration::minutes(4);
        let t = r.apply(cmd(Verb::Redirect), Party::Receiver, later, clocks).unwrap();
        assert_eq!(t.new_receiver.as_deref(), Some("C2"));
        assert_eq!(r.to_facility_id, "C2");
        assert_eq!(r.acknowledged_at, None, "the new centre has not acknowledged yet");
        assert_eq!(r.step(), Some(Step::Acknowledge));
        assert_eq!(r.step_due_at, Some(later + Duration::minutes(5)));
    }

    #[test]
    fn escalation_climbs_one_rung_per_limit_and_stops_at_the_city() {
        let due = t0();
        let limit = Duration::minutes(5);
        assert_eq!(escalation_level(due, limit, due - Duration::seconds(1)), 0);
        assert_eq!(escalation_level(due, limit, due), 1);
        assert_eq!(escalation_level(due, limit, due + Duration::minutes(4)), 1);
        assert_eq!(escalation_level(due, limit, due + Duration::minutes(5)), 2);
        assert_eq!(escalation_level(due, limit, due + Duration::minutes(10)), 3);
        assert_eq!(escalation_level(due, limit, due + Duration::days(3)), 3);
    }

    fn fac(id: &str, level: Level, kind: Kind, j: &str, caps: &[&str]) -> Facility {
        Facility {
            id: id.into(),
            code: id.into(),
            name: id.into(),
            level,
            kind,
            jurisdiction: j.into(),
            township_code: None,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn region() -> Vec<Facility> {
        vec![
            fac("TWN", Level::Township, Kind::HealthCentre, "340524", &[]),
            fac(
                "CTY-HOSP",
                Level::County,
                Kind::Hospital,
                "340524",
                &["maternal_critical_care", "icu"],
            ),
            fac(
                "CTY-MCH",
                Level::County,
                Kind::MchCentre,
                "340524",
                &["maternal_critical_care"],
            ),
            fac(
                "NBR",
                Level::County,
                Kind::Hospital,
                "340525",
                &["maternal_critical_care", "icu"],
            ),
            fac(
                "CITY",
                Level::City,
                Kind::MchCentre,
                "340500",
                &["maternal_critical_care", "neonatal_critical_care", "icu", "nicu"],
            ),
            fac(
                "PROV",
                Level::Province,
                Kind::MchCentre,
                "340000",
                &["maternal_critical_care", "neonatal_critical_care"],
            ),
        ]
    }

    #[test]
    fn the_responsible_centre_is_suggested_first_then_nearest_capable_ones() {
        let dir = region();
        let ids = |v: Vec<&Facility>| v.into_iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        let s = suggest_centres(&dir[0], Some("CTY-MCH"), PatientKind::Maternal, &[], &[], &dir);
        assert_eq!(ids(s), ["CTY-MCH", "CTY-HOSP", "NBR", "CITY", "PROV"]);
        let needs = vec!["icu".to_string()];
        let s = suggest_centres(&dir[0], Some("CTY-MCH"), PatientKind::Maternal, &needs, &[], &dir);
        assert_eq!(
            ids(s),
            ["CTY-HOSP", "NBR", "CITY"],
            "the responsible centre lacks an ICU"
        );
        let s = suggest_centres(&dir[0], None, PatientKind::Newborn, &[], &["CITY".into()], &dir);
        assert_eq!(ids(s), ["PROV"], "a centre that declined is not suggested again");
    }

    #[test]
    fn the_ladder_goes_duty_doctor_county_city() {
        let dir = region();
        let [a, b, c] = ladder(&dir[1], &dir);
        assert_eq!(a.map(|f| f.id.as_str()), Some("CTY-HOSP"));
        assert_eq!(b.map(|f| f.id.as_str()), Some("CTY-MCH"));
        assert_eq!(c.map(|f| f.id.as_str()), Some("CITY"));
        // The county MCH centre late itself: county rung moves up to the city, then the province.
        let [a, b, c] = ladder(&dir[2], &dir);
        assert_eq!(a.map(|f| f.id.as_str()), Some("CTY-MCH"));
        assert_eq!(b.map(|f| f.id.as_str()), Some("CITY"));
        assert_eq!(c.map(|f| f.id.as_str()), Some("PROV"));
        // A late city centre: the province; a late province centre: nobody above it is invented.
        let [a, b, c] = ladder(&dir[4], &dir);
        assert_eq!(a.map(|f| f.id.as_str()), Some("CITY"));
        assert_eq!(b.map(|f| f.id.as_str()), Some("PROV"));
        assert_eq!(c, None);
        let [a, b, _] = ladder(&dir[5], &dir);
        assert_eq!((a.map(|f| f.id.as_str()), b), (Some("PROV"), None));
    }

    #[test]
    fn details_are_checked_field_by_field() {
        let d = Details {
            vitals: Vitals {
                systolic_mmhg: Some(80),
                diastolic_mmhg: Some(90),
                spo2_percent: Some(120),
                ..Vitals::default()
            },
            near_miss: vec!["cv_shock".into(), "nonsense".into()],
            danger_signs: vec!["convulsions".into()],
            ..Details::default()
        };
        let errors = d.validate(PatientKind::Maternal).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"diastolic_mmhg"));
        assert!(fields.contains(&"spo2_percent"));
        assert!(fields.contains(&"near_miss"));
        assert!(
            fields.contains(&"danger_signs"),
            "a newborn sign on a maternal referral"
        );
        let ok = Details {
            near_miss: vec!["cv_shock".into(), "cv_shock".into()],
            danger_signs: vec!["convulsions".into()],
            ..Details::default()
        }
        .validate(PatientKind::Newborn)
        .unwrap();
        assert_eq!(ok.near_miss, vec!["cv_shock".to_string()]);
    }

    #[test]
    fn the_clock_files_parse_and_refuse_zero_limits() {
        assert!(Clocks::parse(DEFAULT_CLOCKS).is_ok());
        let bad = DEFAULT_CLOCKS.replacen("acknowledge = 5 ", "acknowledge = 0 ", 1);
        assert!(Clocks::parse(&bad).is_err());
    }

    #[test]
    fn measures_follow_each_routing_to_its_centre() {
        let ev = |r: &str, min: i64, kind: &str, by: Option<&str>, to: Option<&str>| LoggedEvent {
            referral_id: r.into(),
            at: t0() + Duration::minutes(min),
            kind: kind.into(),
            facility_id: by.map(str::to_string),
            notify_facility_id: to.map(str::to_string),
        };
        let events = vec![
            // r1: sent to C1, acknowledged after 2 min, rejected; sent to C2, accepted after 4, arrived, feedback.
            ev("r1", 0, "send", Some("A"), Some("C1")),
            ev("r1", 2, "acknowledge", Some("C1"), None),
            ev("r1", 3, "reject", Some("C1"), None),
            ev("r1", 5, "send", Some("A"), Some("C2")),
            ev("r1", 9, "accept", Some("C2"), None),
            ev("r1", 40, "depart", Some("A"), None),
            ev("r1", 69, "arrive", Some("C2"), None),
            ev("r1", 200, "feedback", Some("C2"), None),
            // r2: sent to C2, accepted at once after 1 min, arrived, no feedback yet.
            ev("r2", 0, "send", Some("B"), Some("C2")),
            ev("r2", 1, "accept", Some("C2"), None),
            ev("r2", 30, "arrive", Some("C2"), None),
        ];
        let m = centre_measures(&events);
        let c1 = m.iter().find(|x| x.facility_id == "C1").unwrap();
        assert_eq!((c1.received, c1.accepted, c1.rejected), (1, 0, 1));
        assert_eq!(c1.acknowledge_median_min, Some(2.0));
        let c2 = m.iter().find(|x| x.facility_id == "C2").unwrap();
        assert_eq!((c2.received, c2.accepted, c2.rejected), (2, 2, 0));
        assert_eq!(c2.accept_median_min, Some(1.0));
        assert_eq!(c2.accept_p90_min, Some(4.0));
        assert_eq!(c2.arrival_p90_min, Some(60.0));
        assert_eq!((c2.arrived, c2.feedback_returned), (2, 1));
        assert_eq!(c2.feedback_completeness, Some(50.0));
        assert_eq!(c2.month, "2026-11");
        // 03:00 on the 1st in China is still the previous day in UTC: it counts for the new month.
        let late = vec![LoggedEvent {
            referral_id: "r3".into(),
            at: NaiveDate::from_ymd_opt(2026, 11, 30)
                .and_then(|d| d.and_hms_opt(19, 0, 0))
                .unwrap(),
            kind: "send".into(),
            facility_id: Some("A".into()),
            notify_facility_id: Some("C1".into()),
        }];
        assert_eq!(centre_measures(&late)[0].month, "2026-12");
    }

    // --------------------------------------------------------- model-based test

    fn any_command() -> impl Strategy<Value = (Command, Party)> {
        let verb = prop::sample::select(Verb::ALL.to_vec());
        let party = prop_oneof![Just(Party::Sender), Just(Party::Receiver)];
        let target = prop::sample::select(vec!["A", "C1", "C2", "C3", ""]);
        let reason = prop::sample::select(vec!["", "  ", "无床位"]);
        (verb, party, target, reason).prop_map(|(v, p, t, r)| {
            let c = match v {
                Verb::Send => Command::Send {
                    to: (!t.is_empty()).then(|| t.to_string()),
                },
                Verb::Reject => Command::Reject { reason: r.into() },
                Verb::Redirect => Command::Redirect {
                    to: t.into(),
                    reason: r.into(),
                },
                Verb::Cancel => Command::Cancel { reason: r.into() },
                other => cmd(other),
            };
            (c, p)
        })
    }

    /// What must hold of every referral, whatever happened to it.
    fn check_invariants(r: &Referral, clocks: &Clocks) {
        use State as S;
        let reached = |states: &[State]| states.contains(&r.state);
        assert_ne!(r.to_facility_id, r.from_facility_id);
        assert!(!r.declined_by.contains(&r.to_facility_id) || matches!(r.state, S::Rejected | S::Cancelled));
        // Each step's time exists once the referral has passed that step (a cancellation keeps what happened).
        if reached(&[
            S::Sent,
            S::Acknowledged,
            S::Accepted,
            S::Rejected,
            S::Redirected,
            S::Departed,
            S::Arrived,
            S::FeedbackReturned,
            S::Closed,
        ]) {
            assert!(r.sent_at.is_some());
        }
        if reached(&[S::Accepted, S::Departed, S::Arrived, S::FeedbackReturned, S::Closed]) {
            assert!(r.accepted_at.is_some() && r.acknowledged_at.is_some());
        }
        if reached(&[S::Departed]) {
            assert!(r.departed_at.is_some());
        }
        if reached(&[S::Arrived, S::FeedbackReturned, S::Closed]) {
            assert!(r.arrived_at.is_some() && r.handover.is_some());
        }
        if reached(&[S::FeedbackReturned, S::Closed]) {
            assert!(r.feedback.is_some() && r.feedback_at.is_some());
        }
        if r.arrived_at.is_some() {
            assert!(
                reached(&[S::Arrived, S::FeedbackReturned, S::Closed]),
                "arrived, then only feedback and close"
            );
        }
        assert_eq!(r.ended_at.is_some(), !r.state.is_open());
        // Timestamps never go backwards along the path.
        let path = [r.sent_at, r.accepted_at, r.departed_at, r.arrived_at, r.feedback_at];
        let seen: Vec<_> = path.iter().flatten().collect();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{path:?}");
        // The clock belongs to the state.
        assert_eq!(r.step_due_at, clocks.due_at(r.urgency, r.state, r.step_started_at));
    }

    proptest! {
        #[test]
        fn random_action_sequences_never_reach_an_inconsistent_state(
            cmds in prop::collection::vec(any_command(), 0..40)
        ) {
            let clocks = clocks();
            let mut r = draft();
            let mut now = t0();
            for (c, p) in cmds {
                now += Duration::minutes(1);
                let before = r.clone();
                match r.apply(c.clone(), p, now, clocks) {
                    Ok(t) => {
                        prop_assert_eq!(t.from, before.state);
                        prop_assert_eq!(t.to, r.state);
                        prop_assert!(before.state.is_open(), "a closed or cancelled referral never changes");
                    }
                    Err(_) => prop_assert_eq!(&r, &before, "a refused command changes nothing"),
                }
                check_invariants(&r, clocks);
            }
        }
    }
}
