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
