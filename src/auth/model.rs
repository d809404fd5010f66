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
}
