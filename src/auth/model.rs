//! Roles, actors, scopes and the access rules. Pure: no I/O.

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
