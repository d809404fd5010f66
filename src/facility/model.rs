//! Facilities of the region: level, kind, jurisdiction and capabilities. Pure.

use serde::Serialize;

use crate::error::{FieldError, ServiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Village,
    Township,
    County,
    City,
    Province,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Village,
        Level::Township,
        Level::County,
        Level::City,
        Level::Province,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Village => "village",
            Level::Township => "township",
            Level::County => "county",
            Level::City => "city",
            Level::Province => "province",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Level::Village => "村",
            Level::Township => "乡镇",
            Level::County => "县",
            Level::City => "市",
            Level::Province => "省",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Clinic,
    HealthCentre,
    MchCentre,
    Hospital,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Clinic, Kind::HealthCentre, Kind::MchCentre, Kind::Hospital];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Clinic => "clinic",
            Kind::HealthCentre => "health_centre",
            Kind::MchCentre => "mch_centre",
            Kind::Hospital => "hospital",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Capabilities a facility may declare (ARCHITECTURE.md "External interfaces").
pub const CAPABILITIES: [&str; 9] = [
    "maternal_critical_care",
    "neonatal_critical_care",
    "icu",
    "nicu",
    "blood_bank",
    "midwifery",
    "neonatal_transport",
    "operating_theatre_24h",
    "prenatal_diagnosis",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facility {
    pub id: String,
    pub code: String,
    pub name: String,
    pub level: Level,
    pub kind: Kind,
    /// GB/T 2260 6-digit code of the county where the facility sits (city/province centres use
    /// their seat's code; the level widens their scope).
    pub jurisdiction: String,
    /// 9-digit township code for village and township facilities.
    pub township_code: Option<String>,
    pub capabilities: Vec<String>,
}

/// A facility in the directory with its place in the critical-care network (责任片区, RULES.md
/// §4.1: each delivery facility is assigned a responsible maternal and neonatal centre).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryEntry {
    #[serde(flatten)]
    pub facility: Facility,
    pub maternal_centre_id: Option<String>,
    pub neonatal_centre_id: Option<String>,
    /// The green channel's duty telephone (转诊联系电话).
    pub duty_phone: Option<String>,
}

/// What an administrator changes in the directory.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DirectoryUpdate {
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub maternal_centre_id: Option<String>,
    pub neonatal_centre_id: Option<String>,
    pub duty_phone: Option<String>,
}

impl DirectoryUpdate {
    /// Check against the directory: known capabilities; a responsible centre must be another
    /// facility that has the matching critical-care capability.
    pub fn validate(mut self, facility_id: &str, directory: &[Facility]) -> Result<DirectoryUpdate, ServiceError> {
        let mut errors = Vec::new();
        let mut caps: Vec<String> = Vec::new();
        for c in self.capabilities.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            if !CAPABILITIES.contains(&c) {
                errors.push(FieldError::new(
                    "capabilities",
                    "capability",
                    format!("未知的能力：{c}"),
                ));
            } else if !caps.iter().any(|x| x == c) {
                caps.push(c.to_string());
            }
        }
        self.capabilities = caps;
        for (field, value, cap, label) in [
            (
                "maternal_centre_id",
                &mut self.maternal_centre_id,
                "maternal_critical_care",
                "危重孕产妇救治中心",
            ),
            (
                "neonatal_centre_id",
                &mut self.neonatal_centre_id,
                "neonatal_critical_care",
                "危重新生儿救治中心",
            ),
        ] {
            *value = value.take().filter(|v| !v.trim().is_empty());
            if let Some(id) = value.as_deref() {
                match directory.iter().find(|f| f.id == id) {
                    Some(f) if f.id == facility_id => {
                        errors.push(FieldError::new(field, "self", "责任中心不能是本机构"))
                    }
                    Some(f) if !f.capabilities.iter().any(|c| c == cap) => errors.push(FieldError::new(
                        field,
                        "capability",
                        format!("{} 未登记为{label}", f.name),
                    )),
                    Some(_) => {}
                    None => errors.push(FieldError::new(field, "unknown", "没有这个机构")),
                }
            }
        }
        self.duty_phone = self
            .duty_phone
            .take()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        if self
            .duty_phone
            .as_ref()
            .is_some_and(|p| p.chars().count() > 40 || !p.chars().all(|c| c.is_ascii_digit() || "-+ ()转".contains(c)))
        {
            errors.push(FieldError::new(
                "duty_phone",
                "phone",
                "值班电话只能包含数字、空格和 - + ( )",
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(ServiceError::Invalid(errors))
        }
    }
}

/// What `facility add` and the seeding take.
#[derive(Debug, Clone)]
pub struct NewFacility {
    pub code: String,
    pub name: String,
    pub level: String,
    pub kind: String,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub capabilities: Vec<String>,
}

fn all_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

impl NewFacility {
    /// Check and normalise into a facility with the given id.
    pub fn validate(self, id: String) -> Result<Facility, ServiceError> {
        let mut errors = Vec::new();
        let code = self.code.trim().to_string();
        if code.is_empty()
            || code.len() > 40
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(FieldError::new(
                "code",
                "facility_code",
                "机构代码须为 1–40 位字母、数字、- 或 _",
            ));
        }
        let name = self.name.trim().to_string();
        if name.is_empty() {
            errors.push(FieldError::new("name", "required", "请填写机构名称"));
        }
        let level = Level::parse(&self.level);
        if level.is_none() {
            errors.push(FieldError::new(
                "level",
                "facility_level",
                "级别须为 village、township、county、city 或 province",
            ));
        }
        let kind = Kind::parse(&self.kind);
        if kind.is_none() {
            errors.push(FieldError::new(
                "kind",
                "facility_kind",
                "类型须为 clinic、health_centre、mch_centre 或 hospital",
            ));
        }
        if !all_digits(&self.jurisdiction, 6) {
            errors.push(FieldError::new(
                "jurisdiction",
                "jurisdiction",
                "辖区须为 6 位 GB/T 2260 区划代码",
            ));
        }
        match (&self.township_code, level) {
            (Some(t), _) if !(all_digits(t, 9) && t.starts_with(&self.jurisdiction)) => {
                errors.push(FieldError::new(
                    "township_code",
                    "township_code",
                    "乡镇代码须为以辖区代码开头的 9 位数字",
                ));
            }
            (None, Some(Level::Village | Level::Township)) => {
                errors.push(FieldError::new(
                    "township_code",
                    "required",
                    "村、乡镇级机构须填写 9 位乡镇代码",
                ));
            }
            _ => {}
        }
        let mut capabilities = Vec::new();
        for c in self.capabilities.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            if CAPABILITIES.contains(&c) {
                if !capabilities.iter().any(|x: &String| x == c) {
                    capabilities.push(c.to_string());
                }
            } else {
                errors.push(FieldError::new(
                    "capabilities",
                    "capability",
                    format!("未知的能力：{c}"),
                ));
            }
        }
        match (level, kind, errors.is_empty()) {
            (Some(level), Some(kind), true) => Ok(Facility {
                id,
                code,
                name,
                level,
                kind,
                jurisdiction: self.jurisdiction,
                township_code: self.township_code,
                capabilities,
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(level: &str, t: Option<&str>) -> NewFacility {
        NewFacility {
            code: "T1".into(),
            name: "乡镇卫生院".into(),
            level: level.into(),
            kind: "health_centre".into(),
            jurisdiction: "340524".into(),
            township_code: t.map(str::to_string),
            capabilities: vec!["midwifery".into()],
        }
    }

    #[test]
    fn a_township_facility_needs_a_township_code_inside_its_county() {
        assert!(new("township", None).validate("x".into()).is_err());
        assert!(new("township", Some("340525101")).validate("x".into()).is_err());
        assert!(new("township", Some("340524101")).validate("x".into()).is_ok());
        assert!(new("county", None).validate("x".into()).is_ok());
    }

    #[test]
    fn unknown_levels_and_capabilities_are_refused() {
        assert!(new("hamlet", None).validate("x".into()).is_err());
        let mut f = new("county", None);
        f.capabilities = vec!["teleportation".into()];
        assert!(f.validate("x".into()).is_err());
    }
}
