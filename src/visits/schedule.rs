//! The national visit schedule as data (`rules/schedule/*.toml`) and each contact's status. Pure.
//!
//! Status of a contact, given the visits recorded and today's date:
//! * `done` — a visit fell inside its window;
//! * `upcoming` — its window opens more than `due_ahead_days` from today;
//! * `due` — its window is open or opens within `due_ahead_days`, no visit in it yet;
//! * `overdue` — its window has closed without a visit and she has not been seen since;
//! * `missed` — its window closed without a visit but she was seen later (nothing to chase,
//!   kept for the record and the indicators).

use std::sync::OnceLock;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::pregnancy::model::Dating;

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduledContact {
    pub number: u32,
    pub label: String,
    pub from_days: i64,
    pub to_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    pub source: String,
    pub due_ahead_days: i64,
    #[serde(rename = "contact")]
    pub contacts: Vec<ScheduledContact>,
}

const NATIONAL_2017: &str = include_str!("../../rules/schedule/anc-national-2017.toml");

/// The national schedule, parsed once. The file is embedded and checked by a unit test.
pub fn national() -> &'static Schedule {
    static S: OnceLock<Schedule> = OnceLock::new();
    S.get_or_init(|| {
        toml::from_str(NATIONAL_2017).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded schedule is invalid");
            Schedule {
                id: "invalid".into(),
                name: "invalid".into(),
                source: String::new(),
                due_ahead_days: 7,
                contacts: Vec::new(),
            }
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    Upcoming,
    Due,
    Overdue,
    Missed,
}

impl Status {
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Done => "已完成",
            Status::Upcoming => "未到期",
            Status::Due => "待随访",
            Status::Overdue => "逾期",
            Status::Missed => "未按时（已失期）",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactStatus {
    pub number: u32,
    pub label: String,
    pub window_start: NaiveDate,
    pub window_end: NaiveDate,
    pub status: Status,
    pub status_label: &'static str,
    pub done_on: Option<NaiveDate>,
    /// Days past the window's end (overdue only).
    pub days_overdue: i64,
}

fn day(d: &Dating, ga_days: i64) -> NaiveDate {
    d.start() + Days::new(ga_days.max(0) as u64)
}

/// Status of every contact of `schedule` for a pregnancy with `dating` and visits on `visit_dates`.
pub fn statuses(
    schedule: &Schedule,
    dating: &Dating,
    visit_dates: &[NaiveDate],
    today: NaiveDate,
) -> Vec<ContactStatus> {
    let ga_today = dating.gestational_age_on(today).days;
    let ga = |d: &NaiveDate| dating.gestational_age_on(*d).days;
    schedule
        .contacts
        .iter()
        .map(|c| {
            let done_on = visit_dates
                .iter()
                .filter(|v| (c.from_days..=c.to_days).contains(&ga(v)))
                .min()
                .copied();
            let seen_after = visit_dates.iter().any(|v| ga(v) > c.to_days);
            let status = if done_on.is_some() {
                Status::Done
            } else if ga_today > c.to_days {
                if seen_after { Status::Missed } else { Status::Overdue }
            } else if ga_today >= c.from_days - schedule.due_ahead_days {
                Status::Due
            } else {
                Status::Upcoming
            };
            ContactStatus {
                number: c.number,
                label: c.label.clone(),
                window_start: day(dating, c.from_days),
                window_end: day(dating, c.to_days),
                status,
                status_label: status.label_zh(),
                done_on,
                days_overdue: if status == Status::Overdue {
                    ga_today - c.to_days
                } else {
                    0
                },
            }
        })
        .collect()
}

/// The contact a worklist should show: the most overdue one, else the due one.
pub fn next_action(statuses: &[ContactStatus]) -> Option<&ContactStatus> {
    statuses
        .iter()
        .filter(|s| s.status == Status::Overdue)
        .max_by_key(|s| s.days_overdue)
        .or_else(|| statuses.iter().find(|s| s.status == Status::Due))
}

// ------------------------------------------------------------------ postpartum

#[derive(Debug, Clone, Deserialize)]
pub struct PostpartumContact {
    pub number: u32,
    /// The visit kind that completes it.
    pub kind: String,
    /// `delivery` or `discharge` (discharge falls back to the delivery day when unknown).
    pub anchor: String,
    pub label: String,
    pub from_days: i64,
    pub to_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PostpartumSchedule {
    pub id: String,
    pub name: String,
    pub source: String,
    pub due_ahead_days: i64,
    #[serde(rename = "contact")]
    pub contacts: Vec<PostpartumContact>,
}

const POSTPARTUM_2017: &str = include_str!("../../rules/schedule/postpartum-2017.toml");

pub fn postpartum() -> &'static PostpartumSchedule {
    static S: OnceLock<PostpartumSchedule> = OnceLock::new();
    S.get_or_init(|| {
        toml::from_str(POSTPARTUM_2017).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded postpartum schedule is invalid");
            PostpartumSchedule {
                id: "invalid".into(),
                name: "invalid".into(),
                source: String::new(),
                due_ahead_days: 7,
                contacts: Vec::new(),
            }
        })
    })
}

/// Postpartum contacts' status from the delivery (and discharge) dates and the visits recorded
/// (kind code, date): a contact is done by any visit of its kind.
pub fn postpartum_statuses(
    schedule: &PostpartumSchedule,
    delivery: NaiveDate,
    discharge: Option<NaiveDate>,
    visits: &[(String, NaiveDate)],
    today: NaiveDate,
) -> Vec<ContactStatus> {
    schedule
        .contacts
        .iter()
        .map(|c| {
            let anchor = if c.anchor == "discharge" {
                discharge.unwrap_or(delivery)
            } else {
                delivery
            };
            let start = anchor + Days::new(c.from_days.max(0) as u64);
            let end = anchor + Days::new(c.to_days.max(0) as u64);
            let done_on = visits.iter().filter(|(k, _)| *k == c.kind).map(|(_, d)| *d).min();
            let status = if done_on.is_some() {
                Status::Done
            } else if today > end {
                Status::Overdue
            } else if (start - today).num_days() <= schedule.due_ahead_days {
                Status::Due
            } else {
                Status::Upcoming
            };
            ContactStatus {
                number: c.number,
                label: c.label.clone(),
                window_start: start,
                window_end: end,
                status,
                status_label: status.label_zh(),
                done_on,
                days_overdue: if status == Status::Overdue {
                    (today - end).num_days()
                } else {
                    0
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pregnancy::model::date_pregnancy;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_embedded_national_schedule_has_five_ordered_contacts() {
        let s = national();
        assert_eq!(s.contacts.len(), 5);
        assert_eq!(s.contacts[0].to_days, 90, "孕13周前 = up to 12+6");
        for w in s.contacts.windows(2) {
            assert!(w[0].to_days < w[1].from_days);
        }
    }

    #[test]
    fn contact_status_follows_the_windows() {
        let dating = date_pregnancy(Some(d(2026, 1, 1)), None).unwrap();
        let s = national();
        // Day 85 (12+1), no visit yet: contact 1 due, contact 2 upcoming.
        let st = statuses(s, &dating, &[], d(2026, 3, 27));
        assert_eq!(st[0].status, Status::Due);
        assert_eq!(st[1].status, Status::Upcoming);
        // Day 91 (13+0), still no visit: contact 1 overdue by one day.
        let st = statuses(s, &dating, &[], d(2026, 4, 2));
        assert_eq!(st[0].status, Status::Overdue);
        assert_eq!(st[0].days_overdue, 1);
        // A visit on 12+6 completes contact 1; day 105 (15+0) makes contact 2 due (7 days ahead).
        let st = statuses(s, &dating, &[d(2026, 4, 1)], d(2026, 4, 16));
        assert_eq!(st[0].status, Status::Done);
        assert_eq!(st[1].status, Status::Due);
        // Contact 2 window passed but she was seen at 22 weeks: missed, not overdue.
        let st = statuses(s, &dating, &[d(2026, 4, 1), d(2026, 6, 4)], d(2026, 6, 10));
        assert_eq!(st[1].status, Status::Missed);
        assert_eq!(st[2].status, Status::Done);
        assert_eq!(next_action(&st).map(|c| c.number), None);
    }

    #[test]
    fn the_most_overdue_contact_is_the_next_action() {
        let dating = date_pregnancy(Some(d(2026, 1, 1)), None).unwrap();
        let st = statuses(national(), &dating, &[], d(2026, 6, 30));
        let next = next_action(&st).unwrap();
        assert_eq!(next.number, 1);
        assert!(next.days_overdue > 60);
    }

    #[test]
    fn postpartum_contacts_count_from_discharge_and_delivery() {
        let s = postpartum();
        assert_eq!(s.contacts.len(), 2);
        let delivered = d(2026, 10, 1);
        let st = postpartum_statuses(s, delivered, Some(d(2026, 10, 4)), &[], d(2026, 10, 5));
        assert_eq!((st[0].status, st[0].window_end), (Status::Due, d(2026, 10, 11)));
        assert_eq!(st[1].status, Status::Upcoming);
        let st = postpartum_statuses(s, delivered, None, &[], d(2026, 10, 9));
        assert_eq!(
            (st[0].status, st[0].days_overdue),
            (Status::Overdue, 1),
            "without discharge the delivery day anchors"
        );
        let visits = vec![("postpartum_home".to_string(), d(2026, 10, 6))];
        let st = postpartum_statuses(s, delivered, None, &visits, d(2026, 11, 8));
        assert_eq!(st[0].status, Status::Done);
        assert_eq!(st[1].status, Status::Due, "42-day check due a week ahead");
        let st = postpartum_statuses(s, delivered, None, &visits, d(2026, 11, 27));
        assert_eq!(st[1].status, Status::Overdue);
    }
}
