//! See `mod.rs`. Rule files: `rules/policy/*.toml` (README there).

use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spouse {
    Wife,
    Husband,
}

/// One child on the couple's roster, with the facts 孩次界定 needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RosterChild {
    pub born: NaiveDate,
    /// Born to this couple (including before a 复婚 to each other).
    #[serde(default)]
    pub joint: bool,
    /// Born to one spouse before this remarriage.
    #[serde(default)]
    pub before_remarriage_of: Option<Spouse>,
    #[serde(default)]
    pub adopted: bool,
    #[serde(default)]
    pub deceased: bool,
    /// 病残儿鉴定: certified as disabled (cannot grow into a normal labourer).
    #[serde(default)]
    pub disabled_certified: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The day the birth is registered or expected (the policy in force that day applies).
    pub date: NaiveDate,
    /// [wife, husband]: 2-digit province codes, or 6-digit area codes (the first two digits).
    pub provinces: Vec<String>,
    #[serde(default)]
    pub remarriage: bool,
    #[serde(default)]
    pub children: Vec<RosterChild>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    Registration,
    Approval,
    NotAllowed,
}

impl Procedure {
    pub fn as_str(self) -> &'static str {
        match self {
            Procedure::Registration => "registration",
            Procedure::Approval => "approval",
            Procedure::NotAllowed => "not_allowed",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Procedure::Registration => "生育登记",
            Procedure::Approval => "再生育审批",
            Procedure::NotAllowed => "不符合生育政策",
        }
    }
}

/// One step of an approval and its time limit.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub days: i64,
    /// Working days (Monday–Friday) rather than calendar days.
    pub working: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub birth_order: u32,
    pub procedure: Procedure,
    pub rule: String,
    pub source: String,
    /// The province whose rule was applied (`00`: the national rule).
    pub province: String,
    /// Indexes into the case's children that were counted.
    pub counted: Vec<usize>,
    /// Indexes not counted, and why.
    pub excluded: Vec<(usize, String)>,
    /// The approval's steps and time limits, when the rule names them.
    pub steps: Vec<Step>,
    /// When the spouses' provinces differ: each province's answer, and why the chosen one.
    pub considered: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A second child (one-child era): the local approval.
    SecondChild,
    /// A counted child is certified disabled.
    DisabledChild,
    /// Two adopted children and none born: she is pregnant after infertility.
    AdoptedThenPregnant,
    /// Remarriage: [before of one spouse, before of the other, born jointly] as listed.
    RemarriagePairs,
    /// Remarriage: combined children before it → how many the couple may have together.
    RemarriageCombined,
    /// A disabled child, adopted children or a remarriage (the province's conditions unknown).
    AnySpecial,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalCase {
    pub id: String,
    pub name: String,
    pub kind: CaseKind,
    #[serde(default)]
    pub pairs: Vec<[u32; 3]>,
    #[serde(default)]
    pub table: Vec<[u32; 2]>,
}

/// One jurisdiction's rule for one period.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub id: String,
    /// `00` for the national rule.
    pub province: String,
    pub name: String,
    pub source: String,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
    /// Births up to this order are registered.
    pub registered_up_to: u32,
    pub registration_clause: String,
    /// Whether children born to one spouse before the remarriage, adopted and deceased children
    /// count (孩次界定).
    pub count_premarital: bool,
    pub count_adopted: bool,
    pub count_deceased: bool,
    pub premarital_clause: Option<String>,
    pub deceased_clause: Option<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, rename = "case")]
    pub cases: Vec<ApprovalCase>,
}

impl RuleSet {
    fn in_force(&self, d: NaiveDate) -> bool {
        self.from <= d && self.to.is_none_or(|t| d <= t)
    }
}

const FILES: [(&str, &str); 8] = [
    ("national-1980", include_str!("../../rules/policy/national-1980.toml")),
    ("national-2016", include_str!("../../rules/policy/national-2016.toml")),
    ("national-2021", include_str!("../../rules/policy/national-2021.toml")),
    (
        "37-shandong-2016",
        include_str!("../../rules/policy/37-shandong-2016.toml"),
    ),
    ("42-hubei-2016", include_str!("../../rules/policy/42-hubei-2016.toml")),
    (
        "44-guangdong-2021",
        include_str!("../../rules/policy/44-guangdong-2021.toml"),
    ),
    (
        "31-shanghai-2021",
        include_str!("../../rules/policy/31-shanghai-2021.toml"),
    ),
    (
        "33-zhejiang-2021",
        include_str!("../../rules/policy/33-zhejiang-2021.toml"),
    ),
];

fn load() -> Result<Vec<RuleSet>, String> {
    let mut sets = Vec::new();
    for (name, text) in FILES {
        let r: RuleSet = toml::from_str(text).map_err(|e| format!("rules/policy/{name}.toml: {e}"))?;
        if r.to.is_some_and(|t| t < r.from) || r.registered_up_to == 0 {
            return Err(format!("rules/policy/{name}.toml: bad period or registered_up_to"));
        }
        for c in &r.cases {
            let shaped = match c.kind {
                CaseKind::RemarriagePairs => !c.pairs.is_empty() && c.table.is_empty(),
                CaseKind::RemarriageCombined => !c.table.is_empty() && c.pairs.is_empty(),
                _ => c.pairs.is_empty() && c.table.is_empty(),
            };
            if !shaped {
                return Err(format!("rules/policy/{name}.toml: case {} has the wrong fields", c.id));
            }
        }
        sets.push(r);
    }
    // Periods of one jurisdiction must not overlap, and the national rule must cover every day.
    for a in &sets {
        for b in &sets {
            if a.id < b.id && a.province == b.province && (a.in_force(b.from) || b.in_force(a.from)) {
                return Err(format!("rules/policy: {} and {} overlap", a.id, b.id));
            }
        }
    }
    Ok(sets)
}

/// Every rule set, parsed and checked once.
pub fn rule_sets() -> &'static [RuleSet] {
    static SETS: OnceLock<Vec<RuleSet>> = OnceLock::new();
    SETS.get_or_init(|| load().unwrap_or_else(|e| panic!("built-in policy rules: {e}")))
}

/// The earliest day the rules cover (the 1980 open letter on one child).
fn earliest() -> NaiveDate {
    rule_sets().iter().map(|r| r.from).min().unwrap_or_default()
}

fn province_of(raw: &str) -> Result<String, PolicyError> {
    let raw = raw.trim();
    let ok = (raw.len() == 2 || raw.len() == 6) && raw.chars().all(|c| c.is_ascii_digit());
    let p = &raw[..raw.len().min(2)];
    if !ok || !PROVINCES.contains(&p) {
        return Err(PolicyError(format!(
            "province {raw:?} is not a GB/T 2260 province code (2 digits, or a 6-digit area code)"
        )));
    }
    Ok(p.to_string())
}

/// GB/T 2260 province-level codes (RULES.md §5.4): the first two digits of an area code.
pub const PROVINCES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
];

fn rule_for(province: &str, date: NaiveDate) -> Option<&'static RuleSet> {
    let sets = rule_sets();
    sets.iter()
        .find(|r| r.province == province && r.in_force(date))
        .or_else(|| sets.iter().find(|r| r.province == "00" && r.in_force(date)))
}

/// Add `days` to a day, counting only Monday–Friday when `working`.
pub fn add_days(from: NaiveDate, days: i64, working: bool) -> NaiveDate {
    if !working {
        return from + Duration::days(days);
    }
    let mut d = from;
    let mut left = days;
    while left > 0 {
        d += Duration::days(1);
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    d
}

/// The day an approval applied for on `from` must be decided by: the steps one after another.
pub fn decision_due(steps: &[Step], from: NaiveDate) -> Option<NaiveDate> {
    (!steps.is_empty()).then(|| steps.iter().fold(from, |d, s| add_days(d, s.days, s.working)))
}

fn check(case: &Case) -> Result<[String; 2], PolicyError> {
    if case.provinces.len() != 2 {
        return Err(PolicyError(format!(
            "provinces must list two codes, [wife, husband]; got {}",
            case.provinces.len()
        )));
    }
    if case.date < earliest() {
        return Err(PolicyError(format!(
            "no policy rule covers {} (rules start {})",
            case.date,
            earliest()
        )));
    }
    for (i, c) in case.children.iter().enumerate() {
        if c.born > case.date {
            return Err(PolicyError(format!("children[{i}] was born after the date evaluated")));
        }
        if c.before_remarriage_of.is_some() && !case.remarriage {
            return Err(PolicyError(format!(
                "children[{i}] has before_remarriage_of but the couple is not a remarriage"
            )));
        }
        if c.before_remarriage_of.is_some() && c.joint {
            return Err(PolicyError(format!(
                "children[{i}] cannot be both joint and born before the remarriage"
            )));
        }
    }
    Ok([province_of(&case.provinces[0])?, province_of(&case.provinces[1])?])
}

/// The answer under one jurisdiction's rule.
fn under(rule: &RuleSet, case: &Case) -> Decision {
    let mut counted = Vec::new();
    let mut excluded = Vec::new();
    let (mut before_wife, mut before_husband, mut joint_born, mut adopted) = (0u32, 0u32, 0u32, 0u32);
    for (i, c) in case.children.iter().enumerate() {
        let why = if c.deceased && !rule.count_deceased {
            Some("已死亡的子女不计入孩次")
        } else if c.adopted && !rule.count_adopted {
            Some("收养的子女不计入孩次")
        } else if c.before_remarriage_of.is_some() && !rule.count_premarital {
            Some("再婚前生育的子女不计入孩次")
        } else {
            // A child marked neither `joint` nor `before_remarriage_of` counts as the couple's:
            // leaving out a child born to one spouse and a third person needs legal proof
            // (孩次界定 (4)) that a roster cannot carry — the safer reading.
            None
        };
        match why {
            Some(w) => excluded.push((i, w.to_string())),
            None => {
                counted.push(i);
                match c.before_remarriage_of {
                    Some(Spouse::Wife) => before_wife += 1,
                    Some(Spouse::Husband) => before_husband += 1,
                    None if c.adopted => adopted += 1,
                    None => joint_born += 1,
                }
            }
        }
    }
    let n = counted.len() as u32;
    let birth_order = n + 1;
    let any_disabled = counted.iter().any(|&i| case.children[i].disabled_certified);
    let decision = |procedure: Procedure, rule_text: String, steps: Vec<Step>| Decision {
        birth_order,
        procedure,
        rule: rule_text,
        source: rule.source.clone(),
        province: rule.province.clone(),
        counted: counted.clone(),
        excluded: excluded.clone(),
        steps,
        considered: Vec::new(),
    };
    if birth_order <= rule.registered_up_to {
        let mut text = rule.registration_clause.clone();
        let dropped = |needle: &str| excluded.iter().any(|(_, w)| w.contains(needle));
        for (clause, needle) in [(&rule.deceased_clause, "死亡"), (&rule.premarital_clause, "再婚前")] {
            if let Some(c) = clause
                && dropped(needle)
            {
                text = format!("{text}；{c}");
            }
        }
        return decision(Procedure::Registration, text, Vec::new());
    }
    let (small, large) = (before_wife.min(before_husband), before_wife.max(before_husband));
    for c in &rule.cases {
        let applies = match c.kind {
            CaseKind::SecondChild => birth_order == 2,
            CaseKind::DisabledChild => any_disabled,
            CaseKind::AdoptedThenPregnant => adopted >= 2 && joint_born == 0 && before_wife + before_husband == 0,
            CaseKind::RemarriagePairs => {
                case.remarriage
                    && c.pairs
                        .iter()
                        .any(|[a, b, j]| (*a, *b, *j) == (large, small, joint_born))
            }
            CaseKind::RemarriageCombined => {
                let before = before_wife + before_husband;
                let row = c.table.iter().find(|[k, _]| *k == before).or(c.table.last());
                case.remarriage && before > 0 && row.is_some_and(|[_, more]| joint_born < *more)
            }
            CaseKind::AnySpecial => any_disabled || adopted > 0 || case.remarriage,
        };
        if applies {
            return decision(Procedure::Approval, format!("{}：{}", c.id, c.name), rule.steps.clone());
        }
    }
    decision(
        Procedure::NotAllowed,
        format!("{}：第 {birth_order} 个子女不在本条例可生育范围内", rule.id),
        Vec::new(),
    )
}

/// Evaluate a coming birth (RULES.md §8): under the wife's and the husband's province; when they
/// differ, the answer more favourable to the couple (人口与计划生育法 2021 Art. 18
/// "按照有利于当事人的原则"): registration over approval over not allowed, then the shorter approval.
pub fn evaluate(case: &Case) -> Result<Decision, PolicyError> {
    let [wife, husband] = check(case)?;
    let rule =
        |p: &str| rule_for(p, case.date).ok_or_else(|| PolicyError(format!("no rule in force on {}", case.date)));
    let a = under(rule(&wife)?, case);
    if wife == husband {
        return Ok(a);
    }
    let b = under(rule(&husband)?, case);
    let cost = |d: &Decision| (d.procedure, decision_due(&d.steps, case.date));
    let describe =
        |who: &str, p: &str, d: &Decision| format!("{who}户籍 {p}：{}（{}）", d.procedure.label_zh(), d.rule);
    let considered = vec![describe("女方", &wife, &a), describe("男方", &husband, &b)];
    let mut chosen = if cost(&b) < cost(&a) { b } else { a };
    chosen.considered = considered;
    chosen
        .considered
        .push(format!("按照有利于当事人的原则适用 {} 的规定", chosen.province));
    Ok(chosen)
}

/// 《独生子女父母光荣证》 status (RULES.md §8.3 [V]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HonourCertificate {
    /// One child, born on or before 2015-12-31 (the one-child period): may hold the certificate.
    Eligible,
    NotEligible {
        reason: String,
    },
    /// A holder couple had or applied for another child: cancelled from that day; benefits
    /// already paid are not recovered (鄂州 一(四)1; Shandong Art. 27).
    Cancelled {
        from: NaiveDate,
    },
}

/// The last day a birth could earn the certificate (births from 2016-01-01 do not, §8.3).
pub fn honour_cut_off() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 12, 31).unwrap_or_default()
}

/// The certificate status of a couple's living, jointly born or adopted children;
/// `another_child_on`: the day a further child was born or applied for, if any.
pub fn honour_certificate(children: &[RosterChild], another_child_on: Option<NaiveDate>) -> HonourCertificate {
    let living: Vec<&RosterChild> = children.iter().filter(|c| !c.deceased).collect();
    match living.as_slice() {
        [] => HonourCertificate::NotEligible {
            reason: "没有在世的子女".into(),
        },
        [only] if only.born > honour_cut_off() => HonourCertificate::NotEligible {
            reason: "2016 年 1 月 1 日起出生的子女不再办理独生子女父母光荣证".into(),
        },
        [_] => match another_child_on {
            Some(from) => HonourCertificate::Cancelled { from },
            None => HonourCertificate::Eligible,
        },
        _ => HonourCertificate::NotEligible {
            reason: "夫妻有两个及以上子女".into(),
        },
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
