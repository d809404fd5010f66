//! One schedule per child: the 13 health-care contacts, labs, hearing checks and newborn screening
//! (`rules/child/schedule-2017.toml`), the national immunisation programme's doses by birth cohort
//! (`rules/child/nip-2021.toml`), and, for a child exposed through her mother, the 预防母婴传播 items
//! with their clocks (`rules/child/pmtct-2020.toml`). Pure.
//!
//! Each item is done / upcoming / due / overdue / missed as the maternal schedule's contacts are
//! (`visits::schedule::Status`): due when its window is open or opens within `due_ahead_days`;
//! overdue when it closed undone and there is still something to chase (a contact until the next
//! contact opens or she is seen again, a dose or a screening until its catch-up limit, a clock
//! item from its deadline on); missed when nothing is left to chase (kept for the record and the
//! indicators).

use std::sync::OnceLock;

use chrono::{Days, Months, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::visits::schedule::Status;

// ------------------------------------------------------------------ the data

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemRule {
    kind: ItemKind,
    code: String,
    name: String,
    #[serde(default)]
    anchor: Option<String>,
    from_days: Option<i64>,
    to_days: Option<i64>,
    months: Option<u32>,
    window_months: Option<u32>,
    high_risk_to_days: Option<i64>,
    #[serde(default)]
    high_risk_only: bool,
    catch_up_to_days: Option<i64>,
    only_if_failed_or_missed: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ScheduleFile {
    id: String,
    name: String,
    source: String,
    due_ahead_days: i64,
    #[serde(rename = "item")]
    items: Vec<ItemRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoseRule {
    /// `HepB-1`, `乙肝疫苗 第1剂`: filled in once when the rules are read.
    #[serde(skip)]
    code: String,
    #[serde(skip)]
    name: String,
    number: u32,
    age_days: Option<i64>,
    age_months: Option<u32>,
    window_days: i64,
    #[serde(default)]
    min_interval_days: i64,
    catch_up_until_months: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct VaccineRule {
    code: String,
    name: String,
    #[serde(rename = "dose")]
    doses: Vec<DoseRule>,
}

#[derive(Debug, Clone, Deserialize)]
struct Cohort {
    born_from: NaiveDate,
    born_to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize)]
struct LowBirthWeightHepB {
    below_g: i32,
    #[serde(rename = "dose")]
    doses: Vec<DoseRule>,
}

#[derive(Debug, Clone, Deserialize)]
struct NipFile {
    id: String,
    name: String,
    source: String,
    code_system: String,
    cohort: Cohort,
    #[serde(rename = "vaccine")]
    vaccines: Vec<VaccineRule>,
    low_birth_weight_hepb: LowBirthWeightHepB,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PmtctItemRule {
    code: String,
    name: String,
    within_hours: Option<i64>,
    ideal_hours: Option<i64>,
    vaccine: Option<String>,
    dose: Option<u32>,
    from_days: Option<i64>,
    to_days: Option<i64>,
    months: Option<u32>,
    window_months: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
struct ExposureRule {
    code: String,
    name: String,
    #[serde(rename = "item")]
    items: Vec<PmtctItemRule>,
}

#[derive(Debug, Clone, Deserialize)]
struct PmtctFile {
    id: String,
    source: String,
    #[serde(rename = "exposure")]
    exposures: Vec<ExposureRule>,
}

/// The schedule rules in force: contacts and screening, the immunisation programme's cohorts, and
/// the 预防母婴传播 items.
#[derive(Debug)]
pub struct Rules {
    schedule: ScheduleFile,
    programmes: Vec<NipFile>,
    pmtct: PmtctFile,
}

const SCHEDULE_2017: &str = include_str!("../../rules/child/schedule-2017.toml");
const NIP_2021: &str = include_str!("../../rules/child/nip-2021.toml");
const PMTCT_2020: &str = include_str!("../../rules/child/pmtct-2020.toml");

impl Rules {
    /// Parse rule files (the embedded ones through [`rules`]); a region may add programme files.
    pub fn parse(schedule: &str, programmes: &[&str], pmtct: &str) -> Result<Rules, String> {
        let schedule: ScheduleFile =
            toml::from_str(schedule).map_err(|e| format!("rules/child/schedule-2017.toml: {e}"))?;
        for i in &schedule.items {
            let days = i.from_days.is_some() && i.to_days.is_some();
            let months = i.months.is_some() && i.window_months.is_some();
            if days == months {
                return Err(format!("rules/child: item {} needs either days or months", i.code));
            }
        }
        let programmes = programmes
            .iter()
            .map(|p| toml::from_str::<NipFile>(p).map_err(|e| format!("rules/child/nip: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut programmes = programmes;
        for p in &mut programmes {
            let hepb = p
                .vaccines
                .iter()
                .find(|v| v.code == "HepB")
                .map(|v| v.name.clone())
                .unwrap_or_default();
            for v in &mut p.vaccines {
                for d in &mut v.doses {
                    d.code = format!("{}-{}", v.code, d.number);
                    d.name = format!("{} 第{}剂", v.name, d.number);
                }
            }
            for d in &mut p.low_birth_weight_hepb.doses {
                d.code = format!("HepB-{}", d.number);
                d.name = format!("{hepb} 第{}剂", d.number);
            }
        }
        let pmtct: PmtctFile = toml::from_str(pmtct).map_err(|e| format!("rules/child/pmtct-2020.toml: {e}"))?;
        Ok(Rules {
            schedule,
            programmes,
            pmtct,
        })
    }

    pub fn id(&self) -> &str {
        &self.schedule.id
    }

    pub fn name(&self) -> &str {
        &self.schedule.name
    }

    pub fn sources(&self) -> Vec<&str> {
        let mut s = vec![self.schedule.source.as_str(), self.pmtct.source.as_str()];
        s.extend(self.programmes.iter().map(|p| p.source.as_str()));
        s
    }

    pub fn pmtct_id(&self) -> &str {
        &self.pmtct.id
    }

    /// The immunisation programme of a birth cohort (the file whose cohort holds the birth date).
    fn programme_for(&self, birth: NaiveDate) -> Option<&NipFile> {
        self.programmes
            .iter()
            .filter(|p| birth >= p.cohort.born_from && p.cohort.born_to.is_none_or(|t| birth <= t))
            .max_by_key(|p| p.cohort.born_from)
    }

    /// The immunisation programme a child born on `birth` follows: `(id, name)`.
    pub fn programme(&self, birth: NaiveDate) -> Option<(&str, &str)> {
        self.programme_for(birth).map(|p| (p.id.as_str(), p.name.as_str()))
    }

    /// The code system of vaccine codes (FHIR `Immunization.vaccineCode`).
    pub fn vaccine_code_system(&self) -> &str {
        self.programmes.first().map_or("", |p| p.code_system.as_str())
    }

    /// Every vaccine of the programmes, `(code, name)`.
    pub fn vaccines(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for p in &self.programmes {
            for v in &p.vaccines {
                if !out.iter().any(|(c, _)| *c == v.code) {
                    out.push((&v.code, &v.name));
                }
            }
        }
        out
    }

    pub fn vaccine_name(&self, code: &str) -> Option<&str> {
        self.vaccines().into_iter().find(|(c, _)| *c == code).map(|(_, n)| n)
    }

    /// The name of an exposure (`hbsag`, `hiv`, `syphilis`).
    pub fn exposure_name(&self, code: &str) -> Option<&str> {
        self.pmtct
            .exposures
            .iter()
            .find(|e| e.code == code)
            .map(|e| e.name.as_str())
    }

    /// The codes a recorded service may carry: screening, labs, hearing and 预防母婴传播 items.
    pub fn service_codes(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .schedule
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Screening || i.kind == ItemKind::Lab)
            .map(|i| (i.code.as_str(), i.name.as_str()))
            .collect();
        for e in &self.pmtct.exposures {
            out.extend(
                e.items
                    .iter()
                    .filter(|i| i.vaccine.is_none())
                    .map(|i| (i.code.as_str(), i.name.as_str())),
            );
        }
        out
    }
}

/// The embedded rules, parsed once (a unit test checks they parse).
pub fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(|| {
        Rules::parse(SCHEDULE_2017, &[NIP_2021], PMTCT_2020).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded child schedule rules are invalid");
            Rules {
                schedule: ScheduleFile {
                    id: "invalid".into(),
                    name: "invalid".into(),
                    source: String::new(),
                    due_ahead_days: 7,
                    items: Vec::new(),
                },
                programmes: Vec::new(),
                pmtct: PmtctFile {
                    id: "invalid".into(),
                    source: String::new(),
                    exposures: Vec::new(),
                },
            }
        })
    })
}

// ------------------------------------------------------------------ a child's facts

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Visit,
    Vaccine,
    Screening,
    Lab,
    Pmtct,
}

/// A status in the words of the item's kind (待接种, 待筛查 …; the maternal words otherwise).
pub fn status_label(kind: ItemKind, status: Status) -> &'static str {
    match (kind, status) {
        (ItemKind::Vaccine, Status::Due) => "待接种",
        (ItemKind::Screening, Status::Due) => "待筛查",
        (ItemKind::Lab, Status::Due) => "待检查",
        (ItemKind::Pmtct, Status::Due) => "待实施",
        (ItemKind::Visit, Status::Due) => "待检查",
        (_, Status::Missed) if kind != ItemKind::Visit => "已错过（不再补种/补做）",
        _ => status.label_zh(),
    }
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Visit => "visit",
            ItemKind::Vaccine => "vaccine",
            ItemKind::Screening => "screening",
            ItemKind::Lab => "lab",
            ItemKind::Pmtct => "pmtct",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ItemKind::Visit => "健康检查",
            ItemKind::Vaccine => "预防接种",
            ItemKind::Screening => "筛查",
            ItemKind::Lab => "化验",
            ItemKind::Pmtct => "预防母婴传播",
        }
    }
}

/// A visit as the schedule sees it: its day and which of the visit's measurements satisfy the lab
/// and hearing items of its window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisitSeen {
    pub date: NaiveDate,
    pub hb: bool,
    pub hearing: bool,
}

/// A recorded service (screening, lab, 预防母婴传播 item): its code, when, and its result when
/// it has one (`pass` / `refer` for hearing).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDone {
    pub code: String,
    pub at: NaiveDateTime,
    pub result: Option<String>,
}

/// What the schedule of one child is computed from. Times are UTC; `birth_date` is her China date
/// of birth.
#[derive(Debug, Clone, Default)]
pub struct ChildFacts {
    pub birth_at: NaiveDateTime,
    /// The birth time was recorded (else `birth_at` is noon of the birth day, a filing time).
    pub birth_time_known: bool,
    pub birth_date: NaiveDate,
    pub discharge_date: Option<NaiveDate>,
    pub high_risk: bool,
    pub birth_weight_g: Option<i32>,
    /// The mother's positive results at the birth (`hbsag`, `hiv`, `syphilis`).
    pub exposures: Vec<String>,
    pub visits: Vec<VisitSeen>,
    /// Vaccinations given: vaccine code and time.
    pub doses: Vec<(String, NaiveDateTime)>,
    pub services: Vec<ServiceDone>,
}

/// One item of a child's schedule; its words are the rules' own (borrowed, not copied: a
/// township's worklist computes tens of thousands of them).
#[derive(Debug, Clone, Serialize)]
pub struct Item<'r> {
    pub kind: ItemKind,
    pub kind_label: &'static str,
    pub code: &'r str,
    pub name: &'r str,
    pub due_from: NaiveDate,
    pub due_to: NaiveDate,
    /// For items on a clock from the birth (hours): the deadline, UTC.
    pub deadline: Option<NaiveDateTime>,
    pub status: Status,
    pub status_label: &'static str,
    pub done_on: Option<NaiveDate>,
    /// Done within its window (or before its deadline).
    pub on_time: Option<bool>,
    /// Days past the window's end (overdue only); hours for a clock item are in `hours_late`.
    pub days_overdue: i64,
    pub hours_late: Option<i64>,
    /// Vaccine code and dose number, for vaccine items.
    pub vaccine: Option<&'r str>,
    pub dose: Option<u32>,
}

fn add_months(d: NaiveDate, m: u32) -> NaiveDate {
    d.checked_add_months(Months::new(m)).unwrap_or(NaiveDate::MAX)
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).unwrap_or(NaiveDate::MAX)
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs()))
            .unwrap_or(NaiveDate::MIN)
    }
}

fn china_date(utc: NaiveDateTime) -> NaiveDate {
    crate::ids::china_date(utc)
}

/// The window of an item of days (from an anchor) or months (from the birth day).
fn window(
    birth: NaiveDate,
    anchor: NaiveDate,
    days: Option<(i64, i64)>,
    months: Option<(u32, u32)>,
) -> (NaiveDate, NaiveDate) {
    match (days, months) {
        (Some((from, to)), _) => (add_days(anchor, from), add_days(anchor, to)),
        (None, Some((m, w))) => (add_months(birth, m), add_days(add_months(birth, m + w), -1)),
        (None, None) => (birth, birth),
    }
}

#[derive(Debug, Clone, Copy)]
struct Judge {
    today: NaiveDate,
    ahead: i64,
}

impl Judge {
    /// Done / upcoming / due / overdue / missed for a window, given when it was done and until
    /// when an undone item is still worth chasing.
    fn status(self, done_on: Option<NaiveDate>, from: NaiveDate, to: NaiveDate, chase_until: NaiveDate) -> Status {
        if done_on.is_some() {
            Status::Done
        } else if self.today > to {
            if self.today <= chase_until {
                Status::Overdue
            } else {
                Status::Missed
            }
        } else if (from - self.today).num_days() <= self.ahead {
            Status::Due
        } else {
            Status::Upcoming
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn item<'r>(
    kind: ItemKind,
    code: &'r str,
    name: &'r str,
    (from, to): (NaiveDate, NaiveDate),
    status: Status,
    done_on: Option<NaiveDate>,
    today: NaiveDate,
    vaccine: Option<(&'r str, u32)>,
) -> Item<'r> {
    Item {
        kind,
        kind_label: kind.label_zh(),
        code,
        name,
        due_from: from,
        due_to: to,
        deadline: None,
        status,
        status_label: status_label(kind, status),
        done_on,
        on_time: done_on.map(|d| d >= from && d <= to),
        days_overdue: if status == Status::Overdue {
            (today - to).num_days()
        } else {
            0
        },
        hours_late: None,
        vaccine: vaccine.map(|(v, _)| v),
        dose: vaccine.map(|(_, d)| d),
    }
}

/// The contact, lab and screening items that apply to a child and their windows.
fn item_windows<'a>(rules: &'a Rules, f: &ChildFacts) -> (Vec<&'a ItemRule>, Vec<(NaiveDate, NaiveDate)>) {
    let birth = f.birth_date;
    let discharge = f.discharge_date.unwrap_or(birth);
    let applies: Vec<&ItemRule> = rules
        .schedule
        .items
        .iter()
        .filter(|r| !r.high_risk_only || f.high_risk)
        .collect();
    let windows: Vec<(NaiveDate, NaiveDate)> = applies
        .iter()
        .map(|r| {
            let anchor = if r.anchor.as_deref() == Some("discharge") {
                discharge
            } else {
                birth
            };
            let to_days = match (f.high_risk, r.high_risk_to_days) {
                (true, Some(h)) => Some(h),
                _ => r.to_days,
            };
            window(birth, anchor, r.from_days.zip(to_days), r.months.zip(r.window_months))
        })
        .collect();
    (applies, windows)
}

/// Which health-care contact each visit was (`(code, name)`), for interfaces that name it (FHIR
/// `Encounter.type`): visits are taken in date order, each the first contact not yet taken whose
/// window holds its date — so the schedule's "done" contact is the earliest visit in its window,
/// and a second visit in the same window is the next contact whose window holds it (a high-risk
/// newborn's extra home visit), or none (an extra visit between contacts).
pub fn contacts(rules: &Rules, f: &ChildFacts, dates: &[NaiveDate]) -> Vec<Option<(String, String)>> {
    let (applies, windows) = item_windows(rules, f);
    let visits: Vec<(&ItemRule, (NaiveDate, NaiveDate))> = applies
        .into_iter()
        .zip(windows)
        .filter(|(r, _)| r.kind == ItemKind::Visit)
        .collect();
    let mut order: Vec<usize> = (0..dates.len()).collect();
    order.sort_by_key(|i| dates[*i]);
    let mut taken = vec![false; visits.len()];
    let mut out = vec![None; dates.len()];
    for i in order {
        let d = dates[i];
        if let Some(k) = (0..visits.len()).find(|k| !taken[*k] && visits[*k].1.0 <= d && d <= visits[*k].1.1) {
            taken[k] = true;
            out[i] = Some((visits[k].0.code.clone(), visits[k].0.name.clone()));
        }
    }
    out
}

/// Every item of a child's schedule on `now` (UTC), in due order.
pub fn items<'r>(rules: &'r Rules, f: &ChildFacts, now: NaiveDateTime) -> Vec<Item<'r>> {
    let today = china_date(now);
    let judge = Judge {
        today,
        ahead: rules.schedule.due_ahead_days,
    };
    let birth = f.birth_date;
    let mut out = Vec::new();

    // Contacts, labs, hearing, newborn screening.
    let (applies, windows) = item_windows(rules, f);
    let done_service = |code: &str| f.services.iter().filter(|s| s.code == code).min_by_key(|s| s.at);
    for (i, r) in applies.iter().enumerate() {
        let (from, to) = windows[i];
        let (done_on, chase_until) = match r.kind {
            ItemKind::Visit => {
                let done = f.visits.iter().map(|v| v.date).filter(|d| *d >= from && *d <= to).min();
                // Chase a closed contact until she is seen again or the next contact opens.
                let seen_after = f.visits.iter().any(|v| v.date > to);
                let next_opens = applies
                    .iter()
                    .zip(&windows)
                    .filter(|(n, (s, _))| n.kind == ItemKind::Visit && !n.high_risk_only && *s > from)
                    .map(|(_, (s, _))| *s)
                    .min()
                    .unwrap_or(NaiveDate::MAX);
                let until = if seen_after { to } else { add_days(next_opens, -1) };
                (done, until)
            }
            ItemKind::Lab | ItemKind::Screening if r.code.starts_with("hb_") || r.code.starts_with("hearing_") => {
                let by_visit = f
                    .visits
                    .iter()
                    .filter(|v| if r.code.starts_with("hb_") { v.hb } else { v.hearing })
                    .map(|v| v.date)
                    .filter(|d| *d >= from && *d <= to)
                    .min();
                let by_service = done_service(&r.code).map(|s| china_date(s.at));
                let until = r.catch_up_to_days.map_or(to, |d| add_days(birth, d));
                (by_visit.or(by_service), until)
            }
            _ => {
                let until = r.catch_up_to_days.map_or(to, |d| add_days(birth, d));
                (done_service(&r.code).map(|s| china_date(s.at)), until)
            }
        };
        if let Some(first) = &r.only_if_failed_or_missed {
            // A retest applies when the first test failed, or was not done in its own window.
            let failed = done_service(first).is_some_and(|s| s.result.as_deref() == Some("refer"));
            let first_rule = applies.iter().position(|x| &x.code == first);
            let missed_first = first_rule.is_some_and(|p| done_service(first).is_none() && today > windows[p].1);
            if !(failed || missed_first || done_on.is_some()) {
                continue;
            }
        }
        let status = judge.status(done_on, from, to, chase_until);
        out.push(item(r.kind, &r.code, &r.name, (from, to), status, done_on, today, None));
    }

    // Vaccines, by the programme of her birth cohort.
    let exposed_hbv = f.exposures.iter().any(|e| e == "hbsag");
    if let Some(p) = rules.programme_for(birth) {
        for v in &p.vaccines {
            let lbw = v.code == "HepB"
                && exposed_hbv
                && f.birth_weight_g.is_some_and(|w| w < p.low_birth_weight_hepb.below_g);
            let doses = if lbw { &p.low_birth_weight_hepb.doses } else { &v.doses };
            let mut given: Vec<NaiveDate> = f
                .doses
                .iter()
                .filter(|(c, _)| *c == v.code)
                .map(|(_, t)| china_date(*t))
                .collect();
            given.sort();
            let mut previous: Option<NaiveDate> = None;
            for (n, d) in doses.iter().enumerate() {
                let recommended = match (d.age_days, d.age_months) {
                    (Some(days), _) => add_days(birth, days),
                    (None, Some(m)) => add_months(birth, m),
                    (None, None) => birth,
                };
                // Catch-up: never earlier than the minimum interval after the previous dose.
                let from = previous.map_or(recommended, |p| recommended.max(add_days(p, d.min_interval_days)));
                let to = add_days(from, d.window_days);
                let done_on = given.get(n).copied();
                let chase_until = add_days(add_months(birth, d.catch_up_until_months), -1);
                let status = judge.status(done_on, from, to, chase_until);
                out.push(item(
                    ItemKind::Vaccine,
                    &d.code,
                    &d.name,
                    (from, to),
                    status,
                    done_on,
                    today,
                    Some((&v.code, d.number)),
                ));
                previous = done_on.or(Some(from));
            }
        }
    }

    // 预防母婴传播: what her mother's results call for. The hour clocks (RULES.md §7.3) run from
    // the birth time; when it was not recorded, from the start of the birth day (China time) —
    // the safer reading: a clock may then show late early, never on time when it is not.
    let clock_from = if f.birth_time_known {
        f.birth_at
    } else {
        f.birth_date.and_time(NaiveTime::MIN) - chrono::Duration::hours(8)
    };
    for e in rules.pmtct.exposures.iter().filter(|e| f.exposures.contains(&e.code)) {
        for r in &e.items {
            if let Some(hours) = r.within_hours {
                let deadline = clock_from + chrono::Duration::hours(hours);
                let done_at = match (&r.vaccine, r.dose) {
                    (Some(v), Some(n)) => {
                        let mut at: Vec<NaiveDateTime> =
                            f.doses.iter().filter(|(c, _)| c == v).map(|(_, t)| *t).collect();
                        at.sort();
                        at.get(n as usize - 1).copied()
                    }
                    _ => done_service(&r.code).map(|s| s.at),
                };
                let status = match done_at {
                    Some(_) => Status::Done,
                    None if now > deadline => Status::Overdue,
                    None => Status::Due,
                };
                let _ = r.ideal_hours;
                out.push(Item {
                    kind: ItemKind::Pmtct,
                    kind_label: ItemKind::Pmtct.label_zh(),
                    code: &r.code,
                    name: &r.name,
                    due_from: china_date(f.birth_at),
                    due_to: china_date(deadline),
                    deadline: Some(deadline),
                    status,
                    status_label: status_label(ItemKind::Pmtct, status),
                    done_on: done_at.map(china_date),
                    on_time: done_at.map(|t| t <= deadline),
                    days_overdue: if status == Status::Overdue {
                        (today - china_date(deadline)).num_days()
                    } else {
                        0
                    },
                    hours_late: match (status, done_at) {
                        (Status::Overdue, _) => Some((now - deadline).num_hours()),
                        (Status::Done, Some(t)) if t > deadline => Some((t - deadline).num_hours()),
                        _ => None,
                    },
                    vaccine: r.vaccine.as_deref(),
                    dose: r.dose,
                });
            } else {
                let (from, to) = window(birth, birth, r.from_days.zip(r.to_days), r.months.zip(r.window_months));
                let done_on = done_service(&r.code).map(|s| china_date(s.at));
                // A follow-up test is chased until it is done: the child's diagnosis depends on it.
                let status = judge.status(done_on, from, to, NaiveDate::MAX);
                out.push(item(
                    ItemKind::Pmtct,
                    &r.code,
                    &r.name,
                    (from, to),
                    status,
                    done_on,
                    today,
                    None,
                ));
            }
        }
    }
    out.sort_by(|a, b| (a.due_from, a.kind.as_str(), a.code).cmp(&(b.due_from, b.kind.as_str(), b.code)));
    out
}

/// The items a worklist should show: overdue ones (most overdue first), then due ones.
pub fn to_chase<'a, 'r>(items: &'a [Item<'r>]) -> Vec<&'a Item<'r>> {
    let mut v: Vec<&Item> = items
        .iter()
        .filter(|i| matches!(i.status, Status::Overdue | Status::Due))
        .collect();
    v.sort_by_key(|i| {
        (
            i.status != Status::Overdue,
            std::cmp::Reverse(i.hours_late.unwrap_or(0)),
            std::cmp::Reverse(i.days_overdue),
            i.due_from,
        )
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn born(day: &str) -> ChildFacts {
        let birth_date = d(day);
        ChildFacts {
            // 10:00 China time.
            birth_at: birth_date.and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap()),
            birth_time_known: true,
            birth_date,
            ..ChildFacts::default()
        }
    }

    fn at(day: &str, hour: u32) -> NaiveDateTime {
        d(day).and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap())
    }

    fn find<'a, 'r>(items: &'a [Item<'r>], code: &str) -> &'a Item<'r> {
        items
            .iter()
            .find(|i| i.code == code)
            .unwrap_or_else(|| panic!("{code}"))
    }

    #[test]
    fn the_embedded_rules_parse_with_thirteen_contacts() {
        let r = rules();
        assert_eq!(r.id(), "child-basic-public-health-2017");
        assert_eq!(r.programme(d("2026-01-10")).map(|p| p.0), Some("nip-2021"));
        let f = born("2026-01-10");
        let items = items(r, &f, at("2026-01-10", 3));
        let visits: Vec<&str> = items
            .iter()
            .filter(|i| i.kind == ItemKind::Visit)
            .map(|i| i.code)
            .collect();
        assert_eq!(visits.len(), 13, "{visits:?}");
        // RULES.md §7.5: 2021 programme, 0–6 years.
        let doses = items.iter().filter(|i| i.kind == ItemKind::Vaccine).count();
        assert_eq!(doses, 3 + 1 + 2 + 2 + 4 + 1 + 2 + 2 + 2 + 2 + 1);
    }

    #[test]
    fn windows_follow_the_regulation() {
        let f = born("2026-01-10");
        let items = items(rules(), &f, at("2026-01-10", 3));
        let w = |c: &str| (find(&items, c).due_from, find(&items, c).due_to);
        assert_eq!(
            w("newborn_home"),
            (d("2026-01-10"), d("2026-01-17")),
            "出院后1周内 (discharge unknown: birth)"
        );
        assert_eq!(w("month_1"), (d("2026-02-07"), d("2026-02-09")), "28–30 天");
        assert_eq!(w("m3"), (d("2026-04-10"), d("2026-05-09")));
        assert_eq!(w("y6"), (d("2032-01-10"), d("2032-04-09")));
        assert_eq!(w("blood_spot"), (d("2026-01-13"), d("2026-01-17")), "72 h to 7 days");
        assert_eq!(w("HepB-1"), (d("2026-01-10"), d("2026-01-11")));
        assert_eq!(w("DTaP-4"), (d("2027-07-10"), d("2027-08-09")));
        assert_eq!(find(&items, "newborn_home").status, Status::Due);
        assert_eq!(find(&items, "m3").status, Status::Upcoming);
    }

    #[test]
    fn a_visit_in_its_window_completes_it_and_a_closed_contact_is_chased_until_the_next_opens() {
        let mut f = born("2026-01-10");
        f.discharge_date = Some(d("2026-01-13"));
        f.visits = vec![VisitSeen {
            date: d("2026-01-16"),
            hb: false,
            hearing: false,
        }];
        let items = items(rules(), &f, at("2026-02-20", 3));
        assert_eq!(find(&items, "newborn_home").status, Status::Done);
        let m1 = find(&items, "month_1");
        assert_eq!((m1.status, m1.days_overdue), (Status::Overdue, 11), "满月 closed 02-09");
        // Once the 3-month check opens, the 满月 visit is no longer chased.
        let later = super::items(rules(), &f, at("2026-04-12", 3));
        assert_eq!(find(&later, "month_1").status, Status::Missed);
        assert_eq!(find(&later, "m3").status, Status::Due);
    }

    #[test]
    fn doses_keep_minimum_intervals_and_are_chased_until_the_catch_up_limit() {
        let mut f = born("2026-01-10");
        // HepB-1 at birth; HepB-2 late, at 3 months: dose 3 not before 60 days after it.
        f.doses = vec![
            ("HepB".into(), at("2026-01-10", 3)),
            ("HepB".into(), at("2026-04-10", 2)),
        ];
        let items = items(rules(), &f, at("2026-07-15", 3));
        let h3 = find(&items, "HepB-3");
        assert_eq!(
            h3.due_from,
            d("2026-07-10"),
            "6 months, and ≥ 60 days after dose 2 (06-09)"
        );
        assert_eq!(find(&items, "HepB-2").on_time, Some(false));
        assert_eq!(
            find(&items, "BCG-1").status,
            Status::Overdue,
            "BCG catch-up until 4 years"
        );
        let at_five = super::items(rules(), &f, at("2031-02-01", 3));
        assert_eq!(
            find(&at_five, "BCG-1").status,
            Status::Missed,
            "not given after 4 years"
        );
    }

    #[test]
    fn each_visit_is_the_first_free_contact_whose_window_holds_it() {
        let mut f = born("2026-01-10");
        f.high_risk = true;
        // Days 29, 1, 2, 11 and 30 of age.
        let dates = [
            d("2026-02-08"),
            d("2026-01-11"),
            d("2026-01-12"),
            d("2026-01-21"),
            d("2026-02-09"),
        ];
        let got: Vec<Option<String>> = contacts(rules(), &f, &dates)
            .into_iter()
            .map(|c| c.map(|c| c.0))
            .collect();
        assert_eq!(
            got,
            [
                Some("month_1".to_string()),
                Some("newborn_home".to_string()),
                None,
                Some("newborn_extra_1".to_string()),
                None,
            ],
            "a second visit in a contact's window is no contact of its own"
        );
    }

    #[test]
    fn high_risk_newborns_get_more_and_earlier_home_visits() {
        let mut f = born("2026-01-10");
        f.high_risk = true;
        let items = items(rules(), &f, at("2026-01-10", 3));
        assert_eq!(find(&items, "newborn_home").due_to, d("2026-01-13"));
        assert!(items.iter().any(|i| i.code == "newborn_extra_1"));
        assert_eq!(items.iter().filter(|i| i.kind == ItemKind::Visit).count(), 15);
        let plain = super::items(rules(), &born("2026-01-10"), at("2026-01-10", 3));
        assert!(!plain.iter().any(|i| i.code.starts_with("newborn_extra")));
    }

    #[test]
    fn an_exposed_baby_has_clocks_from_the_birth_time() {
        let mut f = born("2026-01-10");
        f.exposures = vec!["hbsag".into(), "hiv".into()];
        // Seven hours after the birth (02:00 UTC): ARV (6 h) is late, HBIG (12 h) still due.
        let items = items(rules(), &f, at("2026-01-10", 9));
        let arv = find(&items, "arv");
        assert_eq!((arv.status, arv.hours_late), (Status::Overdue, Some(1)));
        assert_eq!(find(&items, "hbig").status, Status::Due);
        assert_eq!(find(&items, "hbig").deadline, Some(at("2026-01-10", 14)));
        assert!(to_chase(&items)[0].code == "arv", "the late clock first");
        // HepB-1 given at 11 h counts for both the programme and the 12-hour clock.
        f.doses = vec![("HepB".into(), at("2026-01-10", 13))];
        f.services = vec![ServiceDone {
            code: "arv".into(),
            at: at("2026-01-10", 7),
            result: None,
        }];
        let items = super::items(rules(), &f, at("2026-01-11", 0));
        assert_eq!(find(&items, "hepb_1_12h").on_time, Some(true));
        let arv = find(&items, "arv");
        assert_eq!(
            (arv.status, arv.on_time, arv.hours_late),
            (Status::Done, Some(true), None)
        );
        assert!(items.iter().any(|i| i.code == "hiv_ab_18m"));
        assert!(!items.iter().any(|i| i.code.starts_with("syphilis")));
    }

    #[test]
    fn without_a_birth_time_the_clocks_run_from_the_start_of_the_birth_day() {
        let mut f = born("2026-01-10");
        f.birth_time_known = false;
        f.birth_at = crate::child::model::birth_at(f.birth_date, None);
        f.exposures = vec!["hbsag".into()];
        // 00:00 China on the 10th is 16:00 UTC on the 9th: HBIG (12 h) is due by 04:00 UTC, not
        // by midnight UTC as a noon birth would have it.
        let items = items(rules(), &f, at("2026-01-10", 5));
        let hbig = find(&items, "hbig");
        assert_eq!(hbig.deadline, Some(at("2026-01-10", 4)));
        assert_eq!((hbig.status, hbig.hours_late), (Status::Overdue, Some(1)));
    }

    #[test]
    fn low_birth_weight_babies_of_hbsag_positive_mothers_get_four_hepb_doses() {
        let mut f = born("2026-01-10");
        f.birth_weight_g = Some(1800);
        let plain = items(rules(), &f, at("2026-01-10", 3));
        assert_eq!(plain.iter().filter(|i| i.vaccine == Some("HepB")).count(), 3);
        f.exposures = vec!["hbsag".into()];
        let exposed = items(rules(), &f, at("2026-01-10", 3));
        let hepb: Vec<NaiveDate> = exposed
            .iter()
            .filter(|i| i.kind == ItemKind::Vaccine && i.vaccine == Some("HepB"))
            .map(|i| i.due_from)
            .collect();
        assert_eq!(
            hepb,
            [d("2026-01-10"), d("2026-02-10"), d("2026-03-10"), d("2026-08-10")]
        );
    }

    #[test]
    fn the_hearing_retest_applies_after_a_failed_or_missed_first_test() {
        let mut f = born("2026-01-10");
        let items = items(rules(), &f, at("2026-01-12", 3));
        assert!(!items.iter().any(|i| i.code == "hearing_retest"));
        f.services = vec![ServiceDone {
            code: "hearing_initial".into(),
            at: at("2026-01-12", 3),
            result: Some("refer".into()),
        }];
        let items = super::items(rules(), &f, at("2026-01-13", 3));
        assert_eq!(find(&items, "hearing_retest").status, Status::Due);
        let missed = super::items(rules(), &born("2026-01-10"), at("2026-01-20", 3));
        assert!(missed.iter().any(|i| i.code == "hearing_retest"));
        assert_eq!(
            find(&missed, "hearing_initial").status,
            Status::Overdue,
            "补筛 until 42 days"
        );
    }

    #[test]
    fn a_later_cohort_file_takes_over_for_children_born_in_it() {
        let later = NIP_2021
            .replace("id = \"nip-2021\"", "id = \"nip-2025\"")
            .replace("born_from = \"2000-01-01\"", "born_from = \"2025-01-01\"")
            .replace("name = \"白破疫苗\"", "name = \"百白破疫苗（6岁）\"");
        let r = Rules::parse(SCHEDULE_2017, &[NIP_2021, &later], PMTCT_2020).unwrap();
        let name = |day: &str| {
            items(&r, &born(day), at(day, 3))
                .into_iter()
                .find(|i| i.code == "DT-1")
                .map(|i| i.name)
                .unwrap()
        };
        assert_eq!(name("2024-06-01"), "白破疫苗 第1剂");
        assert_eq!(name("2025-06-01"), "百白破疫苗（6岁） 第1剂");
    }
}
