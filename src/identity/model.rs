//! Persons and their identifiers. Pure.
//!
//! The 18-digit citizen ID number follows GB 11643-1999 (RULES.md §5.3): 6-digit address code,
//! 8-digit birth date, 3-digit sequence (odd = male), and an ISO 7064 MOD 11-2 check character.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, ServiceError};

/// GB 11643 weights Wi = 2^(17-i) mod 11 (RULES.md §5.3).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by remainder: "10X98765432"[S mod 11].
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Why an ID number was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdNumberError {
    Empty,
    Length(usize),
    NotDigits,
    BadCheckCharacter,
    BadBirthDate,
    BirthDateInFuture,
    Checksum { expected: char },
}

impl IdNumberError {
    pub fn code(&self) -> &'static str {
        match self {
            IdNumberError::Empty => "id_empty",
            IdNumberError::Length(_) => "id_length",
            IdNumberError::NotDigits => "id_not_digits",
            IdNumberError::BadCheckCharacter => "id_check_character",
            IdNumberError::BadBirthDate => "id_birth_date",
            IdNumberError::BirthDateInFuture => "id_birth_date_future",
            IdNumberError::Checksum { .. } => "id_checksum",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            IdNumberError::Empty => "请填写身份证号".into(),
            IdNumberError::Length(n) => format!("身份证号应为 18 位（或旧版 15 位），实际 {n} 位"),
            IdNumberError::NotDigits => "身份证号前 17 位须为数字".into(),
            IdNumberError::BadCheckCharacter => "身份证号最后一位须为数字或 X".into(),
            IdNumberError::BadBirthDate => "身份证号中的出生日期不是有效日期".into(),
            IdNumberError::BirthDateInFuture => "身份证号中的出生日期晚于今天".into(),
            IdNumberError::Checksum { .. } => "身份证号校验位不正确，请核对是否输错".into(),
        }
    }

    /// English text for the CLI's JSON contract.
    pub fn message_en(&self) -> String {
        match self {
            IdNumberError::Empty => "empty".into(),
            IdNumberError::Length(n) => {
                format!("must have 18 characters (or 15 for a legacy number), found {n}")
            }
            IdNumberError::NotDigits => "the first 17 characters must be digits".into(),
            IdNumberError::BadCheckCharacter => "the last character must be a digit or X".into(),
            IdNumberError::BadBirthDate => "the birth date part is not a calendar date".into(),
            IdNumberError::BirthDateInFuture => "the birth date part is in the future".into(),
            IdNumberError::Checksum { expected } => {
                format!("check character mismatch (expected {expected})")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Sex> {
        match s {
            "male" => Some(Sex::Male),
            "female" => Some(Sex::Female),
            "unknown" => Some(Sex::Unknown),
            _ => None,
        }
    }

    /// GB/T 2261.1 sex codes as read from a health card: 1 male, 2 female, 0/9 unknown.
    pub fn from_gb2261(code: &str) -> Option<Sex> {
        match code.trim() {
            "1" => Some(Sex::Male),
            "2" => Some(Sex::Female),
            "0" | "9" => Some(Sex::Unknown),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::Unknown => "未知",
        }
    }
}

/// A checked, normalised 18-digit ID number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct IdNumber(String);

fn check_char(body: &[u8]) -> char {
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize] as char
}

impl IdNumber {
    /// Parse what a person typed or a card held, as of `today`: surrounding whitespace is ignored,
    /// lower-case x is normalised, and 15-digit legacy numbers are upgraded (19 inserted before
    /// the year, check character appended — RULES.md §5.3).
    pub fn parse(input: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let s = input.trim().to_ascii_uppercase();
        if s.is_empty() {
            return Err(IdNumberError::Empty);
        }
        let b = s.as_bytes();
        let full: String = match b.len() {
            18 => {
                if !b[..17].iter().all(u8::is_ascii_digit) {
                    return Err(IdNumberError::NotDigits);
                }
                let last = b[17];
                if !(last.is_ascii_digit() || last == b'X') {
                    return Err(IdNumberError::BadCheckCharacter);
                }
                s.clone()
            }
            15 => {
                if !b.iter().all(u8::is_ascii_digit) {
                    return Err(IdNumberError::NotDigits);
                }
                let body = format!("{}19{}", &s[..6], &s[6..]);
                let c = check_char(body.as_bytes());
                format!("{body}{c}")
            }
            _ => return Err(IdNumberError::Length(s.chars().count())),
        };
        let fb = full.as_bytes();
        let birth = NaiveDate::parse_from_str(&full[6..14], "%Y%m%d").map_err(|_| IdNumberError::BadBirthDate)?;
        if birth.year() < 1880 {
            return Err(IdNumberError::BadBirthDate);
        }
        if birth > today {
            return Err(IdNumberError::BirthDateInFuture);
        }
        let expected = check_char(&fb[..17]);
        if fb[17] as char != expected {
            return Err(IdNumberError::Checksum { expected });
        }
        Ok(IdNumber(full))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Checked in `parse`.
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").unwrap_or_default()
    }

    /// Sex from the sequence code's last digit: odd male, even female.
    pub fn sex(&self) -> Sex {
        match self.0.as_bytes()[16] - b'0' {
            d if d % 2 == 1 => Sex::Male,
            _ => Sex::Female,
        }
    }

    /// The 6-digit address code (GB/T 2260) of the place of household registration at issue.
    pub fn address_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

/// Mask an ID number for lists: first 6 and last 4 kept (`340524********001X`).
pub fn mask_id_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// The name a newborn is registered under at delivery until the family names her: her mother's
/// name with 之子 / 之女 / 之婴, numbered for multiples (the ward's usual form).
pub fn newborn_placeholder_name(mother: &str, sex: Option<Sex>, order: i32, plurality: i32) -> String {
    let of = match sex {
        Some(Sex::Male) => "之子",
        Some(Sex::Female) => "之女",
        _ => "之婴",
    };
    if plurality > 1 {
        format!("{mother}{of}{order}")
    } else {
        format!("{mother}{of}")
    }
}

/// Whether a name is such a placeholder (an interface's real name for her is then no conflict).
pub fn is_newborn_placeholder(name: &str) -> bool {
    let core = name.trim_end_matches(|c: char| c.is_ascii_digit());
    ["之子", "之女", "之婴"]
        .iter()
        .any(|s| core.ends_with(s) && core.chars().count() > 2)
}

/// A person as the record holds them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub nation_code: Option<String>,
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub version: i32,
}

impl Person {
    pub fn age_on(&self, day: NaiveDate) -> i32 {
        let mut age = day.year() - self.birth_date.year();
        if (day.month(), day.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        age
    }
}

/// One version of a person's record: the person, her other identifiers (system, value) and the
/// interface document she was last registered or updated with (FHIR Patient), as kept in
/// `record_versions` at every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonVersion {
    pub person: Person,
    pub identifiers: Vec<(String, String)>,
    pub received: Option<String>,
    pub updated_at: chrono::NaiveDateTime,
}

/// The `record_versions` entity name of a person.
pub const PERSON_ENTITY: &str = "person";

/// Identifier systems kept beside the ID number (GLOSSARY.md).
pub const HEALTH_CARD_SYSTEM: &str = "health_card";

/// What a registrar or clinician typed to register a person.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PersonInput {
    pub name: String,
    pub id_number: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub nation_code: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

/// A validated new person (identity fields only; jurisdiction is the registering facility's).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPerson {
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub nation_code: Option<String>,
    pub id_number: Option<IdNumber>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

/// A typed text, trimmed; `None` when empty.
pub fn clean(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A person's name: 1–30 characters, no control characters or markup.
pub fn check_name(name: &str) -> Result<String, FieldError> {
    let n = name.trim();
    let count = n.chars().count();
    if count == 0 {
        return Err(FieldError::new("name", "required", "请填写姓名"));
    }
    if count > 30 || n.chars().any(|c| c.is_control() || "<>{}\\|^~".contains(c)) {
        return Err(FieldError::new("name", "name", "姓名须为 1–30 个字符，不含特殊符号"));
    }
    Ok(n.to_string())
}

/// A phone number as the register keeps it: at most 20 characters of digits, `+`, `-` and
/// spaces.
pub fn phone_format_ok(p: &str) -> bool {
    p.len() <= 20
        && p.chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == ' ')
}

impl PersonInput {
    /// Validate and cross-check: an ID number gives birth date and sex; if those were also typed,
    /// they must agree with it.
    pub fn validate(&self, today: NaiveDate) -> Result<NewPerson, ServiceError> {
        let mut errors = Vec::new();
        let name = check_name(&self.name).map_err(|e| errors.push(e)).ok();
        let id = match clean(&self.id_number) {
            Some(raw) => match IdNumber::parse(&raw, today) {
                Ok(id) => Some(id),
                Err(e) => {
                    errors.push(FieldError::new("id_number", e.code(), e.message_zh()));
                    None
                }
            },
            None => None,
        };
        let typed_birth = match clean(&self.birth_date) {
            Some(raw) => match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
                Ok(d) if d > today => {
                    errors.push(FieldError::new("birth_date", "future", "出生日期不能晚于今天"));
                    None
                }
                Ok(d) if d.year() < 1880 => {
                    errors.push(FieldError::new("birth_date", "date", "出生日期不合理"));
                    None
                }
                Ok(d) => Some(d),
                Err(_) => {
                    errors.push(FieldError::new("birth_date", "date", "出生日期格式应为 YYYY-MM-DD"));
                    None
                }
            },
            None => None,
        };
        let typed_sex = match clean(&self.sex) {
            Some(raw) => match Sex::parse(&raw) {
                Some(s) => Some(s),
                None => {
                    errors.push(FieldError::new("sex", "sex", "性别须为男、女或未知"));
                    None
                }
            },
            None => None,
        };
        if let Some(id) = &id {
            if let Some(b) = typed_birth
                && b != id.birth_date()
            {
                errors.push(FieldError::new(
                    "birth_date",
                    "id_mismatch",
                    format!("出生日期与身份证号不一致（身份证号为 {}）", id.birth_date()),
                ));
            }
            if let Some(s) = typed_sex
                && s != Sex::Unknown
                && s != id.sex()
            {
                errors.push(FieldError::new(
                    "sex",
                    "id_mismatch",
                    format!("性别与身份证号不一致（身份证号为{}）", id.sex().label_zh()),
                ));
            }
        }
        let birth_date = typed_birth.or(id.as_ref().map(IdNumber::birth_date));
        if birth_date.is_none() && id.is_none() && !errors.iter().any(|e| e.field == "birth_date") {
            errors.push(FieldError::new(
                "birth_date",
                "required",
                "没有身份证号时须填写出生日期",
            ));
        }
        let sex = match (typed_sex, &id) {
            (Some(Sex::Unknown), Some(id)) => id.sex(),
            (Some(s), _) => s,
            (None, Some(id)) => id.sex(),
            (None, None) => Sex::Unknown,
        };
        let nation_code = clean(&self.nation_code);
        if let Some(n) = &nation_code
            && !(n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
        {
            errors.push(FieldError::new(
                "nation_code",
                "nation_code",
                "民族代码须为 2 位数字（GB 3304）",
            ));
        }
        let phone = clean(&self.phone);
        if let Some(p) = &phone
            && !phone_format_ok(p)
        {
            errors.push(FieldError::new("phone", "phone", "电话号码格式不正确"));
        }
        let address = clean(&self.address);
        if address.as_ref().is_some_and(|a| a.chars().count() > 200) {
            errors.push(FieldError::new("address", "address", "地址过长（最多 200 字）"));
        }
        match (name, birth_date, errors.is_empty()) {
            (Some(name), Some(birth_date), true) => Ok(NewPerson {
                name,
                sex,
                birth_date,
                nation_code,
                id_number: id,
                phone,
                address,
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

/// What a card-reader bridge read from a 居民健康卡 (DDF1/EF05 card data + DDF1/EF06 holder data,
/// RULES.md §5.2).
#[derive(Debug, Clone, Deserialize)]
pub struct CardRead {
    pub card_number: String,
    pub name: String,
    pub sex_code: String,
    pub nation_code: Option<String>,
    pub birth_date: String,
    pub id_number: String,
    pub issuer_code: Option<String>,
}

/// A validated card read.
#[derive(Debug, Clone)]
pub struct CheckedCardRead {
    pub person: NewPerson,
    pub card_number: String,
    pub issuer_code: Option<String>,
    pub warnings: Vec<String>,
}

impl CardRead {
    /// The holder data must be self-consistent: the ID number must be valid and agree with the
    /// birth date and sex on the card. The card number normally equals the ID number (RULES.md
    /// §5.2); a different one (another document type) is kept and reported as a warning.
    pub fn validate(&self, today: NaiveDate) -> Result<CheckedCardRead, ServiceError> {
        let mut errors = Vec::new();
        let sex = match Sex::from_gb2261(&self.sex_code) {
            Some(s) => Some(s.as_str().to_string()),
            None => {
                errors.push(FieldError::new(
                    "sex_code",
                    "sex_code",
                    "性别代码须为 GB/T 2261.1 代码（1 男，2 女，0/9 未知）",
                ));
                None
            }
        };
        let card_number = self.card_number.trim().to_ascii_uppercase();
        if card_number.is_empty() || card_number.len() > 32 || !card_number.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.push(FieldError::new(
                "card_number",
                "card_number",
                "卡号须为 1–32 位字母或数字",
            ));
        }
        let input = PersonInput {
            name: self.name.clone(),
            id_number: Some(self.id_number.clone()),
            sex,
            birth_date: Some(self.birth_date.clone()),
            nation_code: self.nation_code.clone(),
            phone: None,
            address: None,
        };
        let person = match input.validate(today) {
            Ok(p) => Some(p),
            Err(ServiceError::Invalid(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(e) => return Err(e),
        };
        let issuer_code = clean(&self.issuer_code);
        match (person, errors.is_empty()) {
            (Some(person), true) => {
                let mut warnings = Vec::new();
                if person.id_number.as_ref().map(IdNumber::as_str) != Some(card_number.as_str()) {
                    warnings.push("卡号与身份证号不一致（可能为其他证件类别），已分别保存".to_string());
                }
                Ok(CheckedCardRead {
                    person,
                    card_number,
                    issuer_code,
                    warnings,
                })
            }
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn newborn_placeholders_are_recognised() {
        use super::*;
        let n = newborn_placeholder_name("李丽", Some(Sex::Female), 2, 2);
        assert_eq!(n, "李丽之女2");
        assert!(is_newborn_placeholder(&n) && is_newborn_placeholder("李丽之婴"));
        assert!(!is_newborn_placeholder("王小雨") && !is_newborn_placeholder("之女"));
    }

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn the_standards_own_example_is_valid() {
        // GB 11643-1999's worked example: body 34052419800101001 → S = 189, R = 2 → X.
        let id = IdNumber::parse("34052419800101001X", today()).unwrap();
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1980, 1, 1).unwrap());
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.masked(), "340524********001X");
        assert_eq!(id.address_code(), "340524");
    }

    #[test]
    fn lower_case_x_and_surrounding_whitespace_are_normalised() {
        let id = IdNumber::parse("  34052419800101001x \n", today()).unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
    }

    #[test]
    fn a_fifteen_digit_number_is_upgraded() {
        // 340524800101001 → 34052419800101001 + check X.
        let id = IdNumber::parse("340524800101001", today()).unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
    }

    #[test]
    fn each_kind_of_invalid_number_is_named() {
        let t = today();
        assert_eq!(IdNumber::parse("", t), Err(IdNumberError::Empty));
        assert_eq!(IdNumber::parse("3405241980010100", t), Err(IdNumberError::Length(16)));
        assert_eq!(IdNumber::parse("3405241980010100AX", t), Err(IdNumberError::NotDigits));
        assert_eq!(
            IdNumber::parse("34052419800101001Y", t),
            Err(IdNumberError::BadCheckCharacter)
        );
        assert_eq!(
            IdNumber::parse("340524198002300011", t),
            Err(IdNumberError::BadBirthDate)
        );
        assert_eq!(
            IdNumber::parse("340524203001010011", t),
            Err(IdNumberError::BirthDateInFuture)
        );
        assert_eq!(
            IdNumber::parse("340524198001010011", t),
            Err(IdNumberError::Checksum { expected: 'X' })
        );
        assert_eq!(
            IdNumber::parse("34052419800101001X0", t),
            Err(IdNumberError::Length(19))
        );
    }

    #[test]
    fn a_leap_day_birth_date_is_valid_only_in_leap_years() {
        let t = today();
        let body = "11010119880229002";
        let ok = format!("{body}{}", check_char(body.as_bytes()));
        assert!(IdNumber::parse(&ok, t).is_ok());
        let body = "11010119890229002";
        let bad = format!("{body}{}", check_char(body.as_bytes()));
        assert_eq!(IdNumber::parse(&bad, t), Err(IdNumberError::BadBirthDate));
    }

    #[test]
    fn sex_comes_from_the_seventeenth_digit() {
        let body = "11010119900307002";
        let id = IdNumber::parse(&format!("{body}{}", check_char(body.as_bytes())), today()).unwrap();
        assert_eq!(id.sex(), Sex::Female);
    }

    #[test]
    fn typed_birth_date_and_sex_must_agree_with_the_id_number() {
        let input = PersonInput {
            name: "王小红".into(),
            id_number: Some("34052419800101001X".into()),
            birth_date: Some("1980-01-02".into()),
            sex: Some("female".into()),
            ..Default::default()
        };
        let ServiceError::Invalid(errors) = input.validate(today()).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert!(fields.contains(&("birth_date", "id_mismatch")));
        assert!(fields.contains(&("sex", "id_mismatch")));
    }

    #[test]
    fn birth_date_and_sex_are_derived_from_the_id_number() {
        let input = PersonInput {
            name: " 王小红 ".into(),
            id_number: Some("34052419800101001X".into()),
            ..Default::default()
        };
        let p = input.validate(today()).unwrap();
        assert_eq!(p.name, "王小红");
        assert_eq!(p.birth_date, NaiveDate::from_ymd_opt(1980, 1, 1).unwrap());
        assert_eq!(p.sex, Sex::Male);
    }

    #[test]
    fn a_card_read_whose_card_number_differs_is_kept_with_a_warning() {
        let read = CardRead {
            card_number: "H12345678".into(),
            name: "李娜".into(),
            sex_code: "1".into(),
            nation_code: Some("01".into()),
            birth_date: "1980-01-01".into(),
            id_number: "34052419800101001X".into(),
            issuer_code: Some("340500".into()),
        };
        let c = read.validate(today()).unwrap();
        assert_eq!(c.warnings.len(), 1);
        let mut bad = read.clone();
        bad.sex_code = "2".into();
        assert!(bad.validate(today()).is_err());
    }

    #[test]
    fn masking_keeps_six_and_four() {
        assert_eq!(mask_id_number("110101199003070028"), "110101********0028");
        assert_eq!(mask_id_number("short"), "*****");
    }
}
