//! The one check every feature runs on its free text before anything is stored.

use super::model::states_fetal_sex;
use crate::error::{AuditTarget, FieldError, ServiceError};

/// The field code of a fetal-sex refusal (forms and JSON name the field with it).
pub const FETAL_SEX: &str = "fetal_sex";

/// The zh-CN reason shown beside a refused field.
pub fn fetal_sex_message(label: &str) -> String {
    format!(
        "{label}含有胎儿性别信息，依法不得记录（《人口与计划生育法》第三十九条：严禁非医学需要的胎儿性别鉴定），请删除后再保存"
    )
}

/// Refuse input whose free text states the sex of a fetus (RULES.md §9.1): `texts` are the input's
/// free-text fields as `(field, label, text)`; every field that states it is named with the reason,
/// and the refusal carries `target` so the door audits the attempt — without the text. Nothing is
/// stored: callers check before they write.
pub fn refuse_fetal_sex(texts: &[(&str, &str, &str)], target: AuditTarget) -> Result<(), ServiceError> {
    let fields: Vec<FieldError> = texts
        .iter()
        .filter(|(_, _, text)| states_fetal_sex(text))
        .map(|(field, label, _)| FieldError::new(field, FETAL_SEX, fetal_sex_message(label)))
        .collect();
    if fields.is_empty() {
        return Ok(());
    }
    Err(ServiceError::Refused {
        fields,
        target: Some(target),
    })
}

/// Refuse a document kept as received (a FHIR resource) that states fetal sex in any of its
/// strings, at any depth (a note, an extension, a display text): named as the field `document`.
pub fn refuse_fetal_sex_in_document(received: Option<&str>, target: AuditTarget) -> Result<(), ServiceError> {
    let Some(text) = received else {
        return Ok(());
    };
    let states = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(doc) => super::model::document_states_fetal_sex(&doc),
        Err(_) => states_fetal_sex(text),
    };
    if !states {
        return Ok(());
    }
    Err(ServiceError::Refused {
        fields: vec![FieldError::new("document", FETAL_SEX, fetal_sex_message("提交的文档"))],
        target: Some(target),
    })
}

/// The audit detail of a refusal: which fields, never what they said.
pub fn refusal_detail(fields: &[FieldError]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    format!("refused: fetal sex stated (RULES.md §9.1) in {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_that_states_it_is_named_and_the_text_is_not_repeated() {
        let target = AuditTarget {
            entity_type: "visit",
            ..Default::default()
        };
        let r = refuse_fetal_sex(
            &[
                ("complaints", "主诉", "B超提示男胎"),
                ("advice", "指导意见", "胎儿性别：女"),
                ("other", "其他", "胎心 140"),
            ],
            target.clone(),
        );
        let Err(ServiceError::Refused { fields, target: t }) = r else {
            panic!("refused expected")
        };
        assert_eq!(t, Some(target));
        assert_eq!(
            fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            ["complaints", "advice"]
        );
        assert!(
            fields
                .iter()
                .all(|f| f.code == FETAL_SEX && !f.message.contains("男胎"))
        );
        assert_eq!(
            refusal_detail(&fields),
            "refused: fetal sex stated (RULES.md §9.1) in complaints, advice"
        );
        assert!(refuse_fetal_sex(&[("a", "甲", "胎动好")], AuditTarget::default()).is_ok());
    }
}
