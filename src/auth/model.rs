//! Roles, actors, scopes and the access rules. Pure: no I/O.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::facility::model::{Facility, Level};

/// Staff and interface roles (ARCHITECTURE.md "Roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Clinician,
    ReferralCoordinator,
    Registrar,
    HospitalSystem,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Clinician,
        Role::ReferralCoordinator,
        Role::Registrar,
        Role::HospitalSystem,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::ReferralCoordinator => "referral_coordinator",
            Role::Registrar => "registrar",
            Role::HospitalSystem => "hospital_system",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Clinician => "医生",
            Role::ReferralCoordinator => "转诊调度员",
            Role::Registrar => "建档登记员",
            Role::HospitalSystem => "医院接口",
            Role::Admin => "系统管理员",
            Role::Auditor => "审计员",
        }
    }

    /// Purpose of use recorded on each audit row (ATNA/BALP PurposeOfUse).
    pub fn purpose_of_use(self) -> &'static str {
        match self {
            Role::Clinician | Role::Registrar | Role::HospitalSystem => "treatment",
            Role::ReferralCoordinator => "care_coordination",
            Role::Admin => "operations",
            Role::Auditor => "audit",
        }
    }
}

/// What an actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Find, open or list persons and their pregnancies and visits.
    ReadRecord,
    /// Create a person (card read, ID entry) or update identity data.
    RegisterPerson,
    /// Book a pregnancy (建册).
    BookPregnancy,
    /// Record an antenatal visit.
    RecordVisit,
    /// Record results (laboratory, ultrasound) for a woman: clinicians and hospital interfaces.
    RecordResult,
    /// See an 18-digit ID number unmasked on the person's own page.
    SeeFullIdNumber,
    /// Screen a woman for pregnancy risk (附件1), at any facility that books.
    Screen,
    /// Grade risk into five colours: clinicians of 二级以上 facilities (county level and up,
    /// RULES.md §1.1 "开展助产服务的二级以上医疗机构").
    Grade,
    /// Follow up a high-risk case, assign its manager, choose the delivery facility.
    ManageCase,
    /// Acknowledge a high-risk report as the district MCH institution (a county-level or higher
    /// mch_centre).
    AcknowledgeReport,
    /// Open, send, answer and follow a referral on behalf of the facility one works at
    /// (转诊绿色通道; the side — sending or receiving — comes from the facility).
    Refer,
    /// Read the audit log and verify the chain.
    ReadAudit,
    /// Manage users, facilities and tokens.
    Administer,
    /// Read the HL7 message log of the senders in one's area (messages hold patient data: every
    /// view is audited; ID numbers stay masked).
    ReadMessageLog,
    /// Re-run a failed inbound HL7 message after a mapping fix.
    ReplayMessage,
}

impl Action {
    /// What an access grant (a referral accepted by a centre outside the woman's area) lets that
    /// centre's staff do with her record: read it and care for her, never re-register or book.
    pub fn follows_grant(self) -> bool {
        matches!(
            self,
            Action::ReadRecord
                | Action::RecordVisit
                | Action::RecordResult
                | Action::Screen
                | Action::Grade
                | Action::Refer
        )
    }
}

/// The access matrix: which role may do what (jurisdiction is checked separately by [`Scope`]).
/// Least privilege: administrators and auditors do not read clinical records.
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ReadRecord => matches!(role, Clinician | ReferralCoordinator | Registrar | HospitalSystem),
        RegisterPerson => matches!(role, Clinician | Registrar | HospitalSystem),
        BookPregnancy => matches!(role, Clinician | Registrar),
        RecordVisit => matches!(role, Clinician),
        RecordResult => matches!(role, Clinician | HospitalSystem),
        SeeFullIdNumber => matches!(role, Clinician | Registrar),
        Screen | Grade | ManageCase => matches!(role, Clinician),
        AcknowledgeReport => matches!(role, Clinician | ReferralCoordinator),
        Refer => matches!(role, Clinician | ReferralCoordinator | HospitalSystem),
        ReadAudit => matches!(role, Auditor),
        Administer => matches!(role, Admin),
        ReadMessageLog => matches!(role, Admin | Auditor),
        ReplayMessage => matches!(role, Admin),
    }
}

/// The part of the region an actor may see, from their facility's level: a township (or village)
/// sees its township, a county facility its county, a city its city, a province everything in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// A 9-digit township code.
    Township(String),
    /// A GB/T 2260 prefix: 6 digits (county), 4 (city) or 2 (province).
    Area(String),
}

impl Scope {
    pub fn of_facility(f: &Facility) -> Scope {
        let j = f.jurisdiction.as_str();
        match f.level {
            Level::Village | Level::Township => match &f.township_code {
                Some(t) => Scope::Township(t.clone()),
                None => Scope::Area(j.to_string()),
            },
            Level::County => Scope::Area(j.to_string()),
            Level::City => Scope::Area(j.get(..4).unwrap_or(j).to_string()),
            Level::Province => Scope::Area(j.get(..2).unwrap_or(j).to_string()),
        }
    }

    /// The scope as query filters: (township code, GB/T 2260 prefix), exactly one of them set.
    pub fn filters(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Scope::Township(t) => (Some(t.as_str()), None),
            Scope::Area(p) => (None, Some(p.as_str())),
        }
    }

    /// Whether a record managed by `jurisdiction` (county) / `township_code` lies in this scope.
    pub fn covers(&self, jurisdiction: &str, township_code: Option<&str>) -> bool {
        match self {
            Scope::Township(t) => township_code == Some(t.as_str()),
            Scope::Area(prefix) => jurisdiction.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiToken,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiToken => "api_token",
            ActorKind::System => "system",
        }
    }
}

/// Who acts: a logged-in user, a hospital system's token, or the system itself (CLI, demo seed).
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub facility: Facility,
    pub scope: Scope,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn new(
        kind: ActorKind,
        id: Option<String>,
        name: &str,
        display_name: &str,
        role: Role,
        facility: Facility,
    ) -> Actor {
        let scope = Scope::of_facility(&facility);
        Actor {
            kind,
            id,
            name: name.to_string(),
            display_name: display_name.to_string(),
            role,
            facility,
            scope,
            client_addr: None,
        }
    }

    pub fn with_client_addr(mut self, addr: Option<String>) -> Actor {
        self.client_addr = addr;
        self
    }

    pub fn may(&self, action: Action) -> bool {
        use crate::facility::model::Kind;
        let level_at_least_county = matches!(self.facility.level, Level::County | Level::City | Level::Province);
        role_allows(self.role, action)
            && match action {
                Action::Grade => level_at_least_county,
                Action::AcknowledgeReport => level_at_least_county && self.facility.kind == Kind::MchCentre,
                _ => true,
            }
    }

    /// Role and jurisdiction together: may this actor do `action` on a record in that area?
    pub fn may_on(&self, action: Action, jurisdiction: &str, township_code: Option<&str>) -> bool {
        self.may(action) && self.scope.covers(jurisdiction, township_code)
    }
}

// ------------------------------------------------------------------ login throttling
//
// OWASP ASVS 4.0.3 V2.2.1: anti-automation "effective at mitigating breached credential testing,
// brute force, and account lockout attacks" — soft lockouts, "ever increasing delays between
// attempts", IP address restrictions, risk-based restrictions such as "first login on a device" —
// and "no more than 100 failed attempts per hour … on a single account". The OWASP Authentication
// Cheat Sheet ("Account Lockout") warns that locking an account lets anyone who knows the username
// deny its owner service, and recommends exponential delays and telling devices apart instead.
//
// So failures are counted against three keys, each with its own run:
// * the pair (username, address): five failures are free, then each one doubles the wait before
//   the next attempt from that address for that username (base delay, doubled up to 15 minutes);
// * the address, whatever the usernames (password spraying): twenty free, then the same growth;
// * the account, from all addresses (an attacker with many addresses): twenty free, then the same
//   growth but capped at 60 s, so it slows (≤ 20 + 60 guesses in the first hour, 60 an hour after)
//   and never blocks — and it does not apply at all from an address the user signed in from in the
//   last 30 days, unless that pair has itself failed more than its free five.
// While a key waits, attempts it covers are answered "wait N s" without checking the password (so a
// guess cannot be confirmed early, and parallel guesses cannot slip through). Keys are the typed
// username whether or not such a user exists, so the answers never tell whether it does. A run ends
// after an hour without failures; a successful login ends the pair's and the address's run (the
// account's run goes on, so a doctor signing in does not give an attacker twenty free guesses).

/// The base delay of the growing waits when the setting does not change it.
pub const DEFAULT_LOGIN_BASE_DELAY_SECS: i64 = 2;
/// A run of failures ends after this long without one.
pub const FAILURE_RUN_ENDS_AFTER: Duration = Duration::hours(1);
/// An address a user signed in from is known for this long after that login.
pub const KNOWN_ADDRESS_FOR: Duration = Duration::days(30);

/// The login throttle's one setting: the base delay of its growing waits
/// (`MCH_LOGIN_BASE_DELAY_SECS`; the rules themselves are fixed above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub base_delay: Duration,
}

impl Default for LoginPolicy {
    fn default() -> LoginPolicy {
        LoginPolicy {
            base_delay: Duration::seconds(DEFAULT_LOGIN_BASE_DELAY_SECS),
        }
    }
}

impl LoginPolicy {
    /// A base delay of 1 s to 1 h (0 would turn throttling off, which is never wanted).
    pub fn with_base_delay_secs(secs: i64) -> Result<LoginPolicy, String> {
        if !(1..=3600).contains(&secs) {
            return Err(format!("the login base delay must be 1 to 3600 seconds, not {secs}"));
        }
        Ok(LoginPolicy {
            base_delay: Duration::seconds(secs),
        })
    }
}

/// What a run of failed logins is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleKind {
    /// One username from one address.
    Pair,
    /// One address, any usernames.
    Address,
    /// One username, any addresses.
    Account,
}

/// How many failures are free and how long the wait may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    pub free_failures: i32,
    pub max_delay: Duration,
}

impl ThrottleKind {
    pub const ALL: [ThrottleKind; 3] = [ThrottleKind::Pair, ThrottleKind::Address, ThrottleKind::Account];

    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::Pair => "pair",
            ThrottleKind::Address => "address",
            ThrottleKind::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<ThrottleKind> {
        ThrottleKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ThrottleKind::Pair => "账号 + 来源地址",
            ThrottleKind::Address => "来源地址（任意账号）",
            ThrottleKind::Account => "账号（任意地址）",
        }
    }

    pub fn rule(self) -> ThrottleRule {
        match self {
            ThrottleKind::Pair => ThrottleRule {
                free_failures: 5,
                max_delay: Duration::minutes(15),
            },
            ThrottleKind::Address => ThrottleRule {
                free_failures: 20,
                max_delay: Duration::minutes(15),
            },
            ThrottleKind::Account => ThrottleRule {
                free_failures: 20,
                max_delay: Duration::seconds(60),
            },
        }
    }
}

impl ThrottleRule {
    /// The wait after the `failures`-th failure of a run: none while free, then the base delay,
    /// doubled with each further failure, at most `max_delay`.
    pub fn delay_after(self, failures: i32, base: Duration) -> Duration {
        if failures <= self.free_failures {
            return Duration::zero();
        }
        let doublings = (failures - self.free_failures - 1).clamp(0, 20) as u32;
        let secs = base.num_seconds().max(1).saturating_mul(1_i64 << doublings);
        Duration::seconds(secs.min(self.max_delay.num_seconds()))
    }
}

/// One key's run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i32,
    pub last_failure_at: NaiveDateTime,
    /// No attempt this key covers is checked before this time.
    pub not_before: Option<NaiveDateTime>,
}

impl ThrottleState {
    /// Failures that still count at `now` (a quiet hour ends the run).
    pub fn live_failures(&self, now: NaiveDateTime) -> i32 {
        if now - self.last_failure_at > FAILURE_RUN_ENDS_AFTER {
            0
        } else {
            self.failures
        }
    }

    /// Until when attempts must wait, if they must.
    pub fn waiting_until(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        self.not_before.filter(|t| *t > now)
    }
}

/// The state after one more failure at `now`: the run goes on (or starts again after a quiet
/// hour) and the next attempt waits as long as the rule says.
pub fn count_failure(
    kind: ThrottleKind,
    state: Option<&ThrottleState>,
    now: NaiveDateTime,
    base: Duration,
) -> ThrottleState {
    let failures = state.map_or(0, |s| s.live_failures(now)).saturating_add(1);
    let delay = kind.rule().delay_after(failures, base);
    ThrottleState {
        failures,
        last_failure_at: now,
        not_before: (delay > Duration::zero()).then(|| now + delay),
    }
}

/// The runs that bear on one login attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttemptKeys<'a> {
    pub pair: Option<&'a ThrottleState>,
    pub address: Option<&'a ThrottleState>,
    pub account: Option<&'a ThrottleState>,
}

impl AttemptKeys<'_> {
    pub fn get(&self, kind: ThrottleKind) -> Option<&ThrottleState> {
        match kind {
            ThrottleKind::Pair => self.pair,
            ThrottleKind::Address => self.address,
            ThrottleKind::Account => self.account,
        }
    }

    /// Whether the account-wide wait applies: not from an address the user signed in from
    /// recently (`known_address`) whose own pair is still within its free failures.
    pub fn account_wait_applies(&self, known_address: bool, now: NaiveDateTime) -> bool {
        let pair_failures = self.pair.map_or(0, |s| s.live_failures(now));
        !(known_address && pair_failures <= ThrottleKind::Pair.rule().free_failures)
    }

    /// The kinds whose wait holds this attempt back.
    pub fn applicable(&self, known_address: bool, now: NaiveDateTime) -> Vec<ThrottleKind> {
        let account = self.account_wait_applies(known_address, now);
        ThrottleKind::ALL
            .into_iter()
            .filter(|k| *k != ThrottleKind::Account || account)
            .collect()
    }
}

/// Whether a login attempt may have its password checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Check,
    /// Refused unchecked: wait until `until` (the longest of the waits that apply), `because` of it.
    Wait {
        until: NaiveDateTime,
        because: ThrottleKind,
    },
}

pub fn admit(keys: &AttemptKeys, known_address: bool, now: NaiveDateTime) -> Admission {
    keys.applicable(known_address, now)
        .into_iter()
        .filter_map(|k| keys.get(k).and_then(|s| s.waiting_until(now)).map(|t| (t, k)))
        .max_by_key(|(t, _)| *t)
        .map_or(Admission::Check, |(until, because)| Admission::Wait { until, because })
}

/// Whole seconds until `until`, rounded up, at least one (for `Retry-After`).
pub fn retry_after_secs(until: NaiveDateTime, now: NaiveDateTime) -> i64 {
    let ms = (until - now).num_milliseconds().max(1);
    (ms + 999) / 1000
}

// ------------------------------------------------------------------ password policy
//
// OWASP ASVS 4.0.3 §2.1 (and NIST SP 800-63B §5.1.1.2, which it follows): at least 12 characters
// after runs of spaces are collapsed (V2.1.1), up to 128 allowed and more refused (V2.1.2), any
// printable Unicode character allowed and no composition rules such as "one digit, one capital"
// (V2.1.4, V2.1.9); instead, passwords known to be guessed first are refused (V2.1.7): those on a
// common-password list, repeated or sequential characters, and context-specific words — the
// username and the demo password this project publishes in its README.

/// V2.1.1: "at least 12 characters in length (after multiple spaces are combined)".
pub const MIN_PASSWORD_CHARS: usize = 12;
/// V2.1.2: "passwords of at least 64 characters are permitted, and … more than 128 … denied".
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The password of every demo account (README "Set-up"). It is public, so it is refused for any
/// real account; only the demo seeding path sets it, bypassing the policy on purpose.
pub const DEMO_PASSWORD: &str = "mch-demo-2026";

/// 49,233 common passwords, lower-case, from @zxcvbn-ts/language-common 4.1.3 (MIT), built from
/// the Xato.net ten-million-password release; source and licence in rules/passwords/README.md.
const COMMON_PASSWORDS: &str = include_str!("../../rules/passwords/common-passwords.txt");

fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("# "))
            .collect()
    })
}

/// Character runs people type as "a password": digits and letters up and down (both cyclic, so
/// `7890123` counts), and the rows of a US keyboard, alone and one after another.
const SEQUENCES: [&str; 7] = [
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertyuiopasdfghjklzxcvbnm",
];

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    /// On the common-password list, as typed (in any capitalisation).
    Common,
    /// A common password with digits or symbols added before or after it (`Iloveyou2026!`).
    CommonWithAffix,
    /// One character, or a unit of up to four, repeated (`aaaaaaaaaaaa`, `abcabcabcabc`).
    Repeated,
    /// A run of [`SEQUENCES`] forwards or backwards (`123456789012`, `zyxwvutsrqpo`, `qwertyuiop[]`).
    Sequence,
    /// Contains the username, or a part of it of four or more characters (`doctor.wang` → `wang`).
    ContainsUsername,
    /// The demo password published in the README.
    Published,
}

impl PasswordProblem {
    pub fn code(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "password_too_short",
            PasswordProblem::TooLong => "password_too_long",
            PasswordProblem::Common | PasswordProblem::CommonWithAffix => "password_common",
            PasswordProblem::Repeated => "password_repeated",
            PasswordProblem::Sequence => "password_sequence",
            PasswordProblem::ContainsUsername => "password_contains_username",
            PasswordProblem::Published => "password_published",
        }
    }

    pub fn message_zh(self) -> String {
        match self {
            PasswordProblem::TooShort => format!("密码至少 {MIN_PASSWORD_CHARS} 个字符（连续的空格算一个）"),
            PasswordProblem::TooLong => format!("密码最多 {MAX_PASSWORD_CHARS} 个字符"),
            PasswordProblem::Common => "这是常见密码（在泄露密码清单中），很容易被猜中".into(),
            PasswordProblem::CommonWithAffix => {
                "这是常见密码前后加了数字或符号（常见密码在泄露密码清单中），很容易被猜中".into()
            }
            PasswordProblem::Repeated => "密码由同一个字符或很短的片段重复组成，很容易被猜中".into(),
            PasswordProblem::Sequence => "密码是简单的顺序（如 123456、abcdef、qwerty 键盘行），很容易被猜中".into(),
            PasswordProblem::ContainsUsername => "密码不能包含用户名".into(),
            PasswordProblem::Published => "这是本系统公开的演示密码，只能用于演示数据".into(),
        }
    }
}

/// Length as ASVS V2.1.1 counts it: characters, a run of spaces counting as one.
fn policy_length(password: &str) -> usize {
    let mut n = 0;
    let mut prev_space = false;
    for c in password.chars() {
        if !(c == ' ' && prev_space) {
            n += 1;
        }
        prev_space = c == ' ';
    }
    n
}

fn is_repeated(chars: &[char]) -> bool {
    (1..=4).any(|unit| chars.len() >= 2 * unit && (unit..chars.len()).all(|i| chars[i] == chars[i - unit]))
}

fn is_sequence(lower: &str) -> bool {
    let n = lower.chars().count();
    n >= 3
        && SEQUENCES.iter().any(|s| {
            let forward = s.repeat(n / s.len() + 2);
            let backward: String = forward.chars().rev().collect();
            forward.contains(lower) || backward.contains(lower)
        })
}

fn contains_username(lower: &str, username: &str) -> bool {
    let u = username.trim().to_lowercase();
    if u.chars().count() >= 3 && lower.contains(&u) {
        return true;
    }
    u.split(['.', '_', '-'])
        .filter(|part| part.chars().count() >= 4)
        .any(|part| lower.contains(part))
}

fn is_common_with_affix(lower: &str) -> bool {
    let set = common_passwords();
    let cores = [
        lower.trim_matches(|c: char| !c.is_alphanumeric()),
        lower.trim_matches(|c: char| !c.is_alphabetic()),
    ];
    cores
        .iter()
        .any(|core| *core != lower && core.chars().count() >= 4 && set.contains(core))
}

/// Everything wrong with `password` as the password of `username` (empty: acceptable).
pub fn password_problems(password: &str, username: &str) -> Vec<PasswordProblem> {
    let mut problems = Vec::new();
    let length = policy_length(password);
    if length < MIN_PASSWORD_CHARS {
        problems.push(PasswordProblem::TooShort);
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        problems.push(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    if lower == DEMO_PASSWORD {
        problems.push(PasswordProblem::Published);
    } else if common_passwords().contains(lower.as_str()) {
        problems.push(PasswordProblem::Common);
    } else if is_common_with_affix(&lower) {
        problems.push(PasswordProblem::CommonWithAffix);
    }
    let chars: Vec<char> = lower.chars().collect();
    if is_repeated(&chars) {
        problems.push(PasswordProblem::Repeated);
    } else if is_sequence(&lower) {
        problems.push(PasswordProblem::Sequence);
    }
    if contains_username(&lower, username) {
        problems.push(PasswordProblem::ContainsUsername);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facility::model::{Facility, Kind, Level};

    fn facility(level: Level, j: &str, t: Option<&str>) -> Facility {
        Facility {
            id: "f".into(),
            code: "F".into(),
            name: "x".into(),
            level,
            kind: Kind::HealthCentre,
            jurisdiction: j.into(),
            township_code: t.map(str::to_string),
            capabilities: vec![],
        }
    }

    #[test]
    fn a_township_sees_only_its_township() {
        let s = Scope::of_facility(&facility(Level::Township, "340524", Some("340524101")));
        assert!(s.covers("340524", Some("340524101")));
        assert!(!s.covers("340524", Some("340524102")));
        assert!(!s.covers("340524", None));
    }

    #[test]
    fn a_county_sees_its_county_a_city_its_city_a_province_everything_in_it() {
        let county = Scope::of_facility(&facility(Level::County, "340524", None));
        assert!(county.covers("340524", Some("340524102")));
        assert!(!county.covers("340525", None));
        let city = Scope::of_facility(&facility(Level::City, "340500", None));
        assert!(city.covers("340524", None) && city.covers("340521", None));
        assert!(!city.covers("340624", None));
        let province = Scope::of_facility(&facility(Level::Province, "340000", None));
        assert!(province.covers("341102", None));
        assert!(!province.covers("350102", None));
    }

    #[test]
    fn administrators_and_auditors_do_not_read_clinical_records() {
        assert!(!role_allows(Role::Admin, Action::ReadRecord));
        assert!(!role_allows(Role::Auditor, Action::ReadRecord));
        assert!(role_allows(Role::Auditor, Action::ReadAudit));
        assert!(!role_allows(Role::Clinician, Action::ReadAudit));
        assert!(!role_allows(Role::ReferralCoordinator, Action::RecordVisit));
        assert!(!role_allows(Role::HospitalSystem, Action::SeeFullIdNumber));
    }

    fn t(secs: i64) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn waits_double_after_the_free_failures_up_to_their_cap() {
        let base = chrono::Duration::seconds(2);
        let pair: Vec<i64> = (1..=16)
            .map(|n| ThrottleKind::Pair.rule().delay_after(n, base).num_seconds())
            .collect();
        assert_eq!(pair, [0, 0, 0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
        let account: Vec<i64> = (19..=28)
            .map(|n| ThrottleKind::Account.rule().delay_after(n, base).num_seconds())
            .collect();
        assert_eq!(
            account,
            [0, 0, 2, 4, 8, 16, 32, 60, 60, 60],
            "the account is slowed, never locked"
        );
        assert_eq!(ThrottleKind::Address.rule().delay_after(21, base).num_seconds(), 2);
        assert_eq!(ThrottleKind::Pair.rule().delay_after(10_000, base).num_seconds(), 900);
    }

    /// ASVS V2.2.1: "no more than 100 failed attempts per hour is possible on a single account",
    /// even from as many addresses as an attacker likes (each guess sent the moment it may be).
    #[test]
    fn an_account_takes_fewer_than_100_failures_an_hour_from_any_number_of_addresses() {
        let base = chrono::Duration::seconds(DEFAULT_LOGIN_BASE_DELAY_SECS);
        let mut state: Option<ThrottleState> = None;
        let (mut now, mut failures) = (t(0), 0);
        while now < t(3600) {
            let keys = AttemptKeys {
                account: state.as_ref(),
                ..AttemptKeys::default()
            };
            match admit(&keys, false, now) {
                Admission::Check => {
                    failures += 1;
                    state = Some(count_failure(ThrottleKind::Account, state.as_ref(), now, base));
                }
                Admission::Wait { until, .. } => now = until,
            }
        }
        assert!((60..100).contains(&failures), "{failures}");
    }

    #[test]
    fn the_account_wait_does_not_apply_from_a_known_address_with_few_failures() {
        let now = t(100);
        let waiting = ThrottleState {
            failures: 30,
            last_failure_at: t(90),
            not_before: Some(t(130)),
        };
        let keys = AttemptKeys {
            account: Some(&waiting),
            ..AttemptKeys::default()
        };
        assert_eq!(
            admit(&keys, false, now),
            Admission::Wait {
                until: t(130),
                because: ThrottleKind::Account
            }
        );
        assert_eq!(admit(&keys, true, now), Admission::Check);
        // Unless the pair at that address has failed past its free five itself.
        let pair = ThrottleState {
            failures: 6,
            last_failure_at: t(10),
            not_before: Some(t(12)),
        };
        let keys = AttemptKeys {
            pair: Some(&pair),
            account: Some(&waiting),
            ..AttemptKeys::default()
        };
        assert!(matches!(
            admit(&keys, true, now),
            Admission::Wait {
                because: ThrottleKind::Account,
                ..
            }
        ));
    }

    #[test]
    fn the_longest_applicable_wait_wins_and_a_quiet_hour_ends_a_run() {
        let now = t(1000);
        let pair = ThrottleState {
            failures: 7,
            last_failure_at: t(990),
            not_before: Some(t(1004)),
        };
        let address = ThrottleState {
            failures: 21,
            last_failure_at: t(995),
            not_before: Some(t(1025)),
        };
        let keys = AttemptKeys {
            pair: Some(&pair),
            address: Some(&address),
            account: None,
        };
        assert_eq!(
            admit(&keys, true, now),
            Admission::Wait {
                until: t(1025),
                because: ThrottleKind::Address
            }
        );
        assert_eq!(retry_after_secs(t(1025), now), 25);
        assert_eq!(retry_after_secs(now + chrono::Duration::milliseconds(1), now), 1);
        let base = chrono::Duration::seconds(2);
        assert_eq!(
            count_failure(ThrottleKind::Pair, Some(&pair), t(1010), base).failures,
            8
        );
        let later = t(990 + 3601);
        let restarted = count_failure(ThrottleKind::Pair, Some(&pair), later, base);
        assert_eq!((restarted.failures, restarted.not_before), (1, None));
    }

    #[test]
    fn the_common_password_list_is_embedded_whole() {
        let set = super::common_passwords();
        assert!(set.len() >= 49_000, "{}", set.len());
        for pw in [
            "123456",
            "password",
            "1234567890",
            "password12",
            "1qaz2wsx3edc",
            "#name?",
        ] {
            assert!(set.contains(pw), "{pw}");
        }
        assert!(!set.iter().any(|p| p.starts_with("# ")), "the header is not a password");
    }

    #[test]
    fn the_passwords_of_the_finding_are_refused_for_what_they_are() {
        use PasswordProblem::*;
        assert_eq!(password_problems("aaaaaaaaaa", "dr.wang"), vec![TooShort, Repeated]);
        assert_eq!(
            password_problems("1234567890", "dr.wang"),
            vec![TooShort, Common, Sequence]
        );
        assert_eq!(password_problems("password12", "dr.wang"), vec![TooShort, Common]);
    }

    #[test]
    fn long_weak_passwords_are_refused_with_their_reason() {
        use PasswordProblem::*;
        let cases: &[(&str, &[PasswordProblem])] = &[
            ("aaaaaaaaaaaaaaaa", &[Repeated]),
            ("AaAaAaAaAaAaAa", &[Repeated]),
            ("abcabcabcabcab", &[Repeated]),
            ("12121212121212", &[Repeated]),
            ("123456789012345", &[Sequence]),
            ("9876543210987", &[Sequence]),
            ("abcdefghijklm", &[Sequence]),
            ("ZYXWVUTSRQPONM", &[Sequence]),
            ("qwertyuiop[]", &[CommonWithAffix, Sequence]),
            ("asdfghjkl;'", &[TooShort, CommonWithAffix, Sequence]),
            ("qwertyuiopasdf", &[Sequence]),
            ("1qaz2wsx3edc", &[Common]),
            ("QWERTY123456", &[Common]),
            ("Iloveyou2026!", &[CommonWithAffix]),
            ("!!dragon!!2026", &[CommonWithAffix]),
            ("--1234567890--", &[CommonWithAffix]),
            ("mch-demo-2026", &[Published]),
            ("MCH-Demo-2026", &[Published]),
            ("Dr.Wang-2026-spring", &[ContainsUsername]),
            ("spring-wang-2026", &[ContainsUsername]),
        ];
        for (pw, expected) in cases {
            assert_eq!(&password_problems(pw, "dr.wang"), expected, "{pw}");
        }
    }

    #[test]
    fn strong_passwords_are_accepted_whatever_their_characters() {
        let repeated = "x7Q!".repeat(16);
        for pw in [
            "晨雾-河堤-七月-银杏树下",
            "correct horse battery staple",
            "test-password-123",
            "a-long-password-1",
            "Xk9#mQ2$vL7!pR4&",
            "长长长密码短语-2026-吗",
            repeated.as_str(),
        ] {
            let problems = password_problems(pw, "clinician.twn-a");
            if pw.starts_with("x7Q!") {
                // 64 characters of a repeated four-character unit: repeated, not too long.
                assert_eq!(problems, vec![PasswordProblem::Repeated]);
            } else {
                assert!(problems.is_empty(), "{pw}: {problems:?}");
            }
        }
        assert!(
            password_problems(&"Ab3$efgh".repeat(16), "u").is_empty(),
            "128 characters are allowed"
        );
        assert_eq!(
            password_problems(&format!("{}x", "Ab3$efgh".repeat(16)), "u"),
            vec![PasswordProblem::TooLong]
        );
    }

    #[test]
    fn runs_of_spaces_count_as_one_character() {
        assert_eq!(
            password_problems("river      stone", "u"),
            vec![PasswordProblem::TooShort],
            "11 characters once the spaces are combined"
        );
        assert!(password_problems("river  stone  moon", "u").is_empty());
    }

    #[test]
    fn short_usernames_do_not_forbid_their_letters() {
        // A two-letter username would refuse every password containing those letters.
        assert!(password_problems("violin-sunrise-harbour", "li").is_empty());
        assert_eq!(
            password_problems("harbour-liu-sunrise", "liu"),
            vec![PasswordProblem::ContainsUsername]
        );
    }
}
