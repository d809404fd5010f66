//! Before-pregnancy use cases (RULES.md §3, §8): a couple's record, the marriage check, the
//! pre-pregnancy screening with its risk evaluation, the follow-ups, and birth registration with
//! the 母子健康手册 number issued in the same step (多证合一, §6.1).
//!
//! Access follows the wife's record (her area, or an access grant): the couple is hers, and the
//! husband's findings are read only through it (issue 12: "a man's record is visible only in the
//! couple's context"). Every read and write is audited against both partners. Registration never
//! gates care: booking, visits, delivery and vaccines do not look at it.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::model::{
    self, BirthRegistration, CheckedFollowup, Couple, CoupleStatus, EndInput, Findings, Followup, FollowupKind,
    FollowupResult, MarriageAdvice, MarriageInput, Partner, PremaritalExam, PremaritalInput, PrepregnancyExam,
    PrepregnancyInput, RegistrationInput, RegistrationStatus, RiskClass,
};
use super::repo;
use crate::audit::service::{guarded, record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::identity::model::{Person, PersonInput, Sex};
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::policy::model::{Case, HonourCertificate, Procedure, decision_due, honour_certificate};
use crate::pregnancy::model::PregnancyStatus;
use crate::storage::{AnyConnection, Db};

/// The audit target of a couple's record: the wife's (the couple is read through her record).
pub fn couple_target(c: &Couple) -> AuditTarget {
    AuditTarget {
        entity_type: "couple",
        entity_id: Some(c.id.clone()),
        person_id: Some(c.wife_id.clone()),
    }
}

/// Both partners' audit entries for one access: the man's record is touched too.
fn both(c: &Couple) -> Vec<AuditTarget> {
    vec![
        couple_target(c),
        AuditTarget {
            entity_type: "couple",
            entity_id: Some(c.id.clone()),
            person_id: Some(c.husband_id.clone()),
        },
    ]
}

/// Who may act on a couple: role and the wife's area. A referral's access grant does not reach
/// it — a grant is for her pregnancy's care, and the couple holds her husband's findings (the
/// safer reading of issue 12's "visible only in the couple's context to those who may see it").
fn may_on_couple(actor: &Actor, action: Action, couple: &Couple) -> bool {
    actor.may_on(action, &couple.jurisdiction, couple.township_code.as_deref())
}

/// Load a couple the actor may act on (by the wife's area), or refuse.
fn couple_for(c: &mut AnyConnection, actor: &Actor, action: Action, id: &str) -> Result<Couple, ServiceError> {
    let couple = repo::couple_by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该夫妻档案"))?;
    if !may_on_couple(actor, action, &couple) {
        return Err(ServiceError::forbidden(couple_target(&couple)));
    }
    Ok(couple)
}

fn current_for(c: &mut AnyConnection, actor: &Actor, action: Action, id: &str) -> Result<Couple, ServiceError> {
    let couple = couple_for(c, actor, action, id)?;
    if couple.status != CoupleStatus::Current {
        return Err(ServiceError::Conflict(
            "该婚姻已终止（离婚或丧偶），不能再登记；请为新的婚姻建立夫妻档案".into(),
        ));
    }
    Ok(couple)
}

fn storage_conflict(e: diesel::result::Error, message: &str) -> ServiceError {
    match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ServiceError::Conflict(message.into())
        }
        e => e.into(),
    }
}

// ------------------------------------------------------------------ couples

/// One partner as the desk gives them: a person already on record, or the identity fields of a
/// person to find by ID number or create (as a card read or registration does).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerRef {
    pub person_id: Option<String>,
    pub person: Option<PersonInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoupleInput {
    pub wife: PartnerRef,
    pub husband: PartnerRef,
    #[serde(default)]
    pub marriage: MarriageInput,
}

fn partner_person(
    c: &mut AnyConnection,
    actor: &Actor,
    who: Partner,
    given: &PartnerRef,
    today: NaiveDate,
) -> Result<Person, ServiceError> {
    let field = who.as_str();
    let person = match (&given.person_id, &given.person) {
        (Some(id), None) => person_for(c, actor, Action::ReadRecord, id)?,
        (None, Some(p)) => {
            let new = p.validate(today).map_err(|e| match e {
                ServiceError::Invalid(errors) => ServiceError::Invalid(
                    errors
                        .into_iter()
                        .map(|f| FieldError::new(&format!("{field}.{}", f.field), f.code, f.message))
                        .collect(),
                ),
                e => e,
            })?;
            crate::identity::service::find_or_create(c, actor, new, &[])?.0
        }
        _ => {
            return Err(ServiceError::invalid(
                field,
                "required",
                format!("请给出{}：已建档的服务对象，或其身份信息（二选一）", who.label_zh()),
            ));
        }
    };
    let wrong = match who {
        Partner::Wife => person.sex == Sex::Male,
        Partner::Husband => person.sex == Sex::Female,
    };
    if wrong {
        return Err(ServiceError::invalid(
            field,
            "sex",
            format!("{}的性别与档案不符，请核对", who.label_zh()),
        ));
    }
    Ok(person)
}

/// Create a couple: both partners found or created, each in at most one current couple.
pub async fn create_couple(db: &Db, actor: &Actor, input: CoupleInput) -> Result<CoupleView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        if !actor.may(Action::RegisterPerson) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "couple",
                ..Default::default()
            }));
        }
        let today = today_china();
        let wife = partner_person(c, actor, Partner::Wife, &input.wife, today)?;
        let husband = partner_person(c, actor, Partner::Husband, &input.husband, today)?;
        if wife.id == husband.id {
            return Err(ServiceError::invalid("husband", "same_person", "夫妻双方不能是同一人"));
        }
        let marriage = input
            .marriage
            .validate(today, wife.id_number.as_deref(), husband.id_number.as_deref())?;
        for (p, who) in [(&wife, Partner::Wife), (&husband, Partner::Husband)] {
            if let Some(d) = marriage.marriage_date
                && p.age_on(d) < model::legal_marriage_age(who)
            {
                return Err(ServiceError::invalid(
                    "marriage.marriage_date",
                    "age",
                    format!(
                        "结婚日期时{}未达法定婚龄（{} 周岁，《民法典》第一千零四十七条），请核对",
                        who.label_zh(),
                        model::legal_marriage_age(who)
                    ),
                ));
            }
            if repo::current_couple_of(c, &p.id)?.is_some() {
                return Err(ServiceError::Conflict(format!(
                    "{}{}已有在婚的夫妻档案；离婚或丧偶须先在原档案上登记婚姻终止",
                    who.label_zh(),
                    p.name
                )));
            }
        }
        let couple = Couple {
            id: new_id(),
            wife_id: wife.id.clone(),
            husband_id: husband.id.clone(),
            marriage,
            status: CoupleStatus::Current,
            ended_on: None,
            end_reason: None,
            jurisdiction: wife.jurisdiction.clone(),
            township_code: wife.township_code.clone(),
            created_at: now_utc(),
            created_by: actor.name.clone(),
            version: 1,
        };
        repo::insert_couple(c, &couple)
            .map_err(|e| storage_conflict(e, "夫妻一方刚被登记进另一夫妻档案，请刷新后核对"))?;
        record_many(c, actor, "create", both(&couple), "couple registered")?;
        view_in(c, actor, couple)
    })
    .await
}

/// Record the end of a marriage (离婚 / 丧偶): the couple stays as history; each partner may
/// join a later couple.
pub async fn end_couple(db: &Db, actor: &Actor, id: String, input: EndInput) -> Result<CoupleView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let couple = current_for(c, actor, Action::RegisterPerson, &id)?;
        let (on, reason) = input.validate(today_china(), couple.marriage.marriage_date)?;
        if !repo::end_couple(c, &couple.id, couple.version, on, reason)? {
            return Err(ServiceError::Conflict("夫妻档案刚被他人修改，请刷新后重试".into()));
        }
        record_many(c, actor, "update", both(&couple), "marriage ended")?;
        let ended = repo::couple_by_id(c, &couple.id)?.ok_or(ServiceError::NotFound("没有找到该夫妻档案"))?;
        view_in(c, actor, ended)
    })
    .await
}

// ------------------------------------------------------------------ the views

#[derive(Debug, Clone, Serialize)]
pub struct PremaritalView {
    pub exam: PremaritalExam,
    pub partner_label: &'static str,
    pub advice_label: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExamView {
    pub exam: PrepregnancyExam,
    pub class_label: &'static str,
    pub high_risk: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowupView {
    pub followup: Followup,
    pub kind_label: &'static str,
    pub result_label: Option<&'static str>,
    pub open: bool,
    pub overdue: bool,
    /// The results this follow-up may be answered with (for the form).
    pub choices: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistrationView {
    pub registration: BirthRegistration,
    pub status_label: &'static str,
    pub procedure_label: &'static str,
    pub waiting: bool,
}

/// An earlier or later couple either partner belongs to (history is kept).
#[derive(Debug, Clone, Serialize)]
pub struct CoupleBrief {
    pub id: String,
    pub status_label: &'static str,
    pub marriage_date: Option<NaiveDate>,
    pub ended_on: Option<NaiveDate>,
    pub end_reason_label: Option<&'static str>,
}

/// Everything of a couple, for the page and `GET /api/couples/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct CoupleView {
    pub couple: Couple,
    pub status_label: &'static str,
    pub end_reason_label: Option<&'static str>,
    pub wife: PersonSummary,
    pub husband: PersonSummary,
    pub premarital: Vec<PremaritalView>,
    pub exams: Vec<ExamView>,
    pub followups: Vec<FollowupView>,
    pub registrations: Vec<RegistrationView>,
    /// 独生子女父母光荣证 status from the latest registration's roster (RULES.md §8.3).
    pub honour_certificate: Option<HonourCertificate>,
    pub other_couples: Vec<CoupleBrief>,
    /// Her active pregnancy, if booked.
    pub pregnancy_id: Option<String>,
}

fn followup_view(f: Followup, today: NaiveDate) -> FollowupView {
    let open = f.done_on.is_none();
    let choices = [
        FollowupResult::Pregnant,
        FollowupResult::NotPregnant,
        FollowupResult::Delivered,
        FollowupResult::NotDelivered,
        FollowupResult::Lost,
    ]
    .into_iter()
    .filter(|r| r.fits(f.kind))
    .map(|r| (r.as_str(), r.label_zh()))
    .collect();
    FollowupView {
        kind_label: f.kind.label_zh(),
        result_label: f.result.map(FollowupResult::label_zh),
        overdue: open && f.due < today,
        open,
        choices,
        followup: f,
    }
}

fn registration_view(r: BirthRegistration) -> RegistrationView {
    RegistrationView {
        status_label: r.status.label_zh(),
        procedure_label: r.procedure.label_zh(),
        waiting: r.status == RegistrationStatus::AwaitingApproval,
        registration: r,
    }
}

fn brief(c: &Couple) -> CoupleBrief {
    CoupleBrief {
        id: c.id.clone(),
        status_label: c.status.label_zh(),
        marriage_date: c.marriage.marriage_date,
        ended_on: c.ended_on,
        end_reason_label: c.end_reason.map(|r| r.label_zh()),
    }
}

/// The couple's whole record (the caller audits the access).
fn view_in(c: &mut AnyConnection, actor: &Actor, couple: Couple) -> Result<CoupleView, ServiceError> {
    let today = today_china();
    let wife = crate::identity::repo::by_id(c, &couple.wife_id)?.ok_or(ServiceError::NotFound("没有找到女方档案"))?;
    let husband =
        crate::identity::repo::by_id(c, &couple.husband_id)?.ok_or(ServiceError::NotFound("没有找到男方档案"))?;
    let premarital = repo::premaritals_of(c, &couple.id)?
        .into_iter()
        .map(|e| PremaritalView {
            partner_label: e.partner.label_zh(),
            advice_label: e.advice.label_zh(),
            exam: e,
        })
        .collect();
    let exams = repo::exams_of(c, &couple.id)?
        .into_iter()
        .map(|e| ExamView {
            class_label: e.risk_class.label_zh(),
            high_risk: e.risk_class == RiskClass::High,
            exam: e,
        })
        .collect();
    let followups = repo::followups_of(c, &couple.id)?
        .into_iter()
        .map(|f| followup_view(f, today))
        .collect();
    let registrations: Vec<RegistrationView> = repo::registrations_of(c, &couple.id)?
        .into_iter()
        .map(registration_view)
        .collect();
    let honour_certificate = registrations.first().map(|r| {
        let reg = &r.registration;
        // Registering a further child is "applying for another" (§8.3).
        let another = (reg.birth_order > 1).then_some(reg.registered_on);
        honour_certificate(&reg.children, another)
    });
    let mut other_couples = Vec::new();
    for p in [&couple.wife_id, &couple.husband_id] {
        for o in repo::couples_of(c, p)? {
            if o.id != couple.id
                && !other_couples.iter().any(|b: &CoupleBrief| b.id == o.id)
                && may_on_couple(actor, Action::ReadRecord, &o)
            {
                record(
                    c,
                    actor,
                    "read",
                    couple_target(&o),
                    "listed as a partner's other marriage",
                )?;
                other_couples.push(brief(&o));
            }
        }
    }
    let pregnancy_id = crate::pregnancy::repo::active_for_person(c, &couple.wife_id)?.map(|p| p.id);
    Ok(CoupleView {
        status_label: couple.status.label_zh(),
        end_reason_label: couple.end_reason.map(|r| r.label_zh()),
        wife: PersonSummary::of(&wife, today),
        husband: PersonSummary::of(&husband, today),
        premarital,
        exams,
        followups,
        registrations,
        honour_certificate,
        other_couples,
        pregnancy_id,
        couple,
    })
}

/// A couple's record, if the actor may read the wife's (audited for both partners).
pub async fn couple_view(db: &Db, actor: &Actor, id: String) -> Result<CoupleView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let couple = couple_for(c, &actor2, Action::ReadRecord, &id)?;
        record_many(c, &actor2, "read", both(&couple), "couple record")?;
        view_in(c, &actor2, couple)
    })
    .await
}

/// The couples a person belongs to, newest first (for her page; audited per couple).
pub fn couples_of_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
) -> Result<Vec<CoupleBrief>, ServiceError> {
    let mut out = Vec::new();
    for couple in repo::couples_of(c, person_id)? {
        if may_on_couple(actor, Action::ReadRecord, &couple) {
            record(c, actor, "read", couple_target(&couple), "couple listed on person page")?;
            out.push(brief(&couple));
        }
    }
    Ok(out)
}

/// [`couples_of_person_in`] as its own unit of work (the person page).
pub async fn couples_of_person(db: &Db, actor: &Actor, person_id: String) -> Result<Vec<CoupleBrief>, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| couples_of_person_in(c, &actor2, &person_id)).await
}

// ------------------------------------------------------------------ the marriage check

fn next_number(c: &mut AnyConnection, kind: &str, area: &str, on: NaiveDate) -> Result<String, ServiceError> {
    let prefix = model::registry_number(kind, area, on.year(), 0);
    let prefix = &prefix[..prefix.len() - 5];
    let serial = repo::issued_with_prefix(c, prefix)? + 1;
    Ok(model::registry_number(kind, area, on.year(), serial))
}

/// Record one partner's marriage check (婚前医学检查) with the doctor's advice; the certificate
/// (婚前医学检查证明) number is issued.
pub async fn record_premarital(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    input: PremaritalInput,
) -> Result<PremaritalExam, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let couple = couple_for(c, actor, Action::Screen, &couple_id)?;
        let checked = input.validate(model::rules(), today_china())?;
        crate::privacy::service::refuse_fetal_sex(
            &[
                (
                    "advice_reason",
                    "医学理由",
                    checked.advice_reason.as_deref().unwrap_or(""),
                ),
                ("findings.note", "备注", checked.findings.note.as_deref().unwrap_or("")),
                (
                    "findings.medications",
                    "用药史",
                    checked.findings.medications.as_deref().unwrap_or(""),
                ),
            ],
            couple_target(&couple),
        )?;
        let exam = PremaritalExam {
            id: new_id(),
            couple_id: couple.id.clone(),
            partner: checked.partner,
            exam_date: checked.exam_date,
            certificate_no: next_number(c, "HJ", &actor.facility.jurisdiction, checked.exam_date)?,
            findings: checked.findings,
            advice: checked.advice,
            advice_reason: checked.advice_reason,
            facility_id: actor.facility.id.clone(),
            recorded_by: actor.name.clone(),
            created_at: now_utc(),
        };
        repo::insert_premarital(c, &exam).map_err(|e| storage_conflict(e, "证明编号刚被占用，请重试"))?;
        let person_id = match exam.partner {
            Partner::Wife => couple.wife_id.clone(),
            Partner::Husband => couple.husband_id.clone(),
        };
        record(
            c,
            actor,
            "create",
            AuditTarget {
                entity_type: "premarital_exam",
                entity_id: Some(exam.id.clone()),
                person_id: Some(person_id),
            },
            "marriage check recorded",
        )?;
        Ok(exam)
    })
    .await
}

// ------------------------------------------------------------------ the screening

/// Record the couple's 孕前优生健康检查 and evaluate it (§3.3): the class, each factor with its
/// category, the advice. Her 早孕随访 is due `early_pregnancy_due_days` after it (a newer
/// screening restarts an open one).
pub async fn record_prepregnancy(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    input: PrepregnancyInput,
) -> Result<ExamView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let couple = current_for(c, actor, Action::Screen, &couple_id)?;
        let rules = model::rules();
        let checked = input.validate(rules, today_china())?;
        crate::privacy::service::refuse_fetal_sex(
            &[
                ("wife.note", "女方备注", checked.wife.note.as_deref().unwrap_or("")),
                (
                    "wife.medications",
                    "女方用药史",
                    checked.wife.medications.as_deref().unwrap_or(""),
                ),
                (
                    "husband.note",
                    "男方备注",
                    checked.husband.as_ref().and_then(|h| h.note.as_deref()).unwrap_or(""),
                ),
                (
                    "husband.medications",
                    "男方用药史",
                    checked
                        .husband
                        .as_ref()
                        .and_then(|h| h.medications.as_deref())
                        .unwrap_or(""),
                ),
            ],
            couple_target(&couple),
        )?;
        let wife =
            crate::identity::repo::by_id(c, &couple.wife_id)?.ok_or(ServiceError::NotFound("没有找到女方档案"))?;
        let husband =
            crate::identity::repo::by_id(c, &couple.husband_id)?.ok_or(ServiceError::NotFound("没有找到男方档案"))?;
        let age = |p: &Person| f64::from(p.age_on(checked.exam_date));
        let ev = model::evaluate(
            rules,
            &checked.wife,
            Some(age(&wife)),
            checked.husband.as_ref(),
            checked.husband.as_ref().map(|_| age(&husband)),
        );
        let exam = PrepregnancyExam {
            id: new_id(),
            couple_id: couple.id.clone(),
            exam_date: checked.exam_date,
            wife: checked.wife,
            husband: checked.husband,
            risk_class: ev.class,
            factors: ev.factors,
            advice: ev.advice,
            rule_set: ev.rule_set,
            facility_id: actor.facility.id.clone(),
            recorded_by: actor.name.clone(),
            created_at: now_utc(),
        };
        repo::insert_exam(c, &exam)?;
        let due = exam.exam_date + chrono::Duration::days(rules.followup.early_pregnancy_due_days);
        let pregnant_now = crate::pregnancy::repo::active_for_person(c, &couple.wife_id)?.is_some();
        match repo::open_followup_of(c, &couple.id)? {
            // A newer screening restarts the open 早孕随访; a back-dated one leaves it be.
            Some(f) if f.kind == FollowupKind::EarlyPregnancy => {
                let current = repo::exam_by_id(c, &f.exam_id)?;
                if current.is_none_or(|e| exam.exam_date >= e.exam_date) {
                    repo::restart_followup(c, &f.id, &exam.id, due)?;
                }
            }
            // Her outcome follow-up is still open: answering it starts the 早孕随访 of this
            // screening (see `complete`).
            Some(_) => {}
            // Already booked: nothing to follow up before pregnancy.
            None if pregnant_now => {}
            None => repo::insert_followup(
                c,
                &new_followup(&couple, &exam.id, FollowupKind::EarlyPregnancy, due, None),
            )?,
        }
        record_many(c, actor, "create", both(&couple), "pre-pregnancy screening recorded")?;
        Ok(ExamView {
            class_label: exam.risk_class.label_zh(),
            high_risk: exam.risk_class == RiskClass::High,
            exam,
        })
    })
    .await
}

fn new_followup(
    couple: &Couple,
    exam_id: &str,
    kind: FollowupKind,
    due: NaiveDate,
    pregnancy_id: Option<String>,
) -> Followup {
    Followup {
        id: new_id(),
        couple_id: couple.id.clone(),
        exam_id: exam_id.to_string(),
        kind,
        due,
        done_on: None,
        result: None,
        note: None,
        pregnancy_id,
        recorded_by: None,
        jurisdiction: couple.jurisdiction.clone(),
        township_code: couple.township_code.clone(),
    }
}

/// One screening, as the 评估建议告知书 prints it.
pub async fn exam_view(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    exam_id: String,
) -> Result<(CoupleView, ExamView), ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let couple = couple_for(c, &actor2, Action::ReadRecord, &couple_id)?;
        let exam = repo::exam_by_id(c, &exam_id)?
            .filter(|e| e.couple_id == couple.id)
            .ok_or(ServiceError::NotFound("没有找到该孕前优生健康检查"))?;
        record_many(c, &actor2, "read", both(&couple), "screening advice printed")?;
        let view = view_in(c, &actor2, couple)?;
        Ok((
            view,
            ExamView {
                class_label: exam.risk_class.label_zh(),
                high_risk: exam.risk_class == RiskClass::High,
                exam,
            },
        ))
    })
    .await
}

/// Her screenings as the wife of any couple the actor may read (her FHIR `$everything`), each
/// access audited against her. The husband's findings stay in the couple's record.
pub fn screenings_of_wife_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
) -> Result<Vec<PrepregnancyExam>, ServiceError> {
    let mut out = Vec::new();
    for couple in repo::couples_of(c, person_id)? {
        if couple.wife_id != person_id || !may_on_couple(actor, Action::ReadRecord, &couple) {
            continue;
        }
        let exams = repo::exams_of(c, &couple.id)?;
        if !exams.is_empty() {
            record(
                c,
                actor,
                "read",
                couple_target(&couple),
                "screening results by interface",
            )?;
        }
        out.extend(exams);
    }
    Ok(out)
}

/// The latest screening of a woman within the pre-fill window before `on` (the booking day):
/// what her first five-colour screening and grading start from. Read inside the caller's
/// transaction (the caller has checked access to her pregnancy and audits the form).
pub fn screening_for_prefill(
    c: &mut AnyConnection,
    wife_id: &str,
    on: NaiveDate,
) -> Result<Option<PrepregnancyExam>, ServiceError> {
    let since = on - chrono::Duration::days(model::rules().followup.prefill_valid_days);
    Ok(repo::latest_exam_of_wife(c, wife_id, since)?.filter(|e| e.exam_date <= on))
}

/// The pre-pregnancy chronic diseases of the wife, by name: prompts on the grading form, never
/// ticked for the clinician (a disease before pregnancy may be cured or controlled).
pub fn disease_names(f: &Findings) -> Vec<String> {
    let rules = model::rules();
    f.diseases
        .iter()
        .map(|d| rules.disease_name(d).unwrap_or(d).to_string())
        .collect()
}

// ------------------------------------------------------------------ follow-ups

/// Answer a follow-up (§3.4): 已孕 opens the 妊娠结局随访 (due from her EDD: the booked
/// pregnancy's, the one she gave, or the latest plausible one); 未孕 schedules the next 早孕随访
/// until the window closes; 失访 closes it.
pub async fn answer_followup(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    followup_id: String,
    input: model::FollowupInput,
) -> Result<FollowupView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let couple = couple_for(c, actor, Action::RecordVisit, &couple_id)?;
        let f = repo::followups_of(c, &couple.id)?
            .into_iter()
            .find(|f| f.id == followup_id)
            .ok_or(ServiceError::NotFound("没有找到该随访"))?;
        if f.done_on.is_some() {
            return Err(ServiceError::Conflict("该随访已有结果，请刷新后查看".into()));
        }
        let today = today_china();
        let checked = input.validate(f.kind, today)?;
        crate::privacy::service::refuse_fetal_sex(
            &[("note", "备注", checked.note.as_deref().unwrap_or(""))],
            couple_target(&couple),
        )?;
        let exam = repo::exam_by_id(c, &f.exam_id)?.ok_or(ServiceError::NotFound("没有找到该孕前优生健康检查"))?;
        if checked.done_on < exam.exam_date {
            return Err(ServiceError::invalid(
                "done_on",
                "before_exam",
                "随访日期不能早于孕前优生健康检查日期",
            ));
        }
        complete(c, actor, &couple, &f, &checked, exam.exam_date)?;
        let done = repo::followups_of(c, &couple.id)?
            .into_iter()
            .find(|x| x.id == f.id)
            .ok_or(ServiceError::NotFound("没有找到该随访"))?;
        Ok(followup_view(done, today))
    })
    .await
}

fn complete(
    c: &mut AnyConnection,
    actor: &Actor,
    couple: &Couple,
    f: &Followup,
    checked: &CheckedFollowup,
    exam_date: NaiveDate,
) -> Result<(), ServiceError> {
    let rules = &model::rules().followup;
    let pregnancy = crate::pregnancy::repo::active_for_person(c, &couple.wife_id)?;
    let linked = match checked.result {
        FollowupResult::Pregnant => pregnancy.as_ref().map(|p| p.id.clone()),
        _ => f.pregnancy_id.clone(),
    };
    if !repo::complete_followup(
        c,
        &f.id,
        checked.result,
        checked.done_on,
        checked.note.as_deref(),
        linked.as_deref(),
        &actor.name,
    )? {
        return Err(ServiceError::Conflict("该随访刚被他人填写，请刷新后查看".into()));
    }
    match checked.result {
        FollowupResult::Pregnant => {
            let edd = pregnancy
                .as_ref()
                .map(|p| p.dating.edd)
                .or(checked.edd)
                .unwrap_or_else(|| model::assumed_edd(checked.done_on));
            let next = new_followup(
                couple,
                &f.exam_id,
                FollowupKind::Outcome,
                model::outcome_due(rules, edd),
                linked,
            );
            repo::insert_followup(c, &next)?;
        }
        FollowupResult::NotPregnant => {
            if let Some(due) = model::next_early_followup(rules, exam_date, checked.done_on) {
                repo::insert_followup(
                    c,
                    &new_followup(couple, &f.exam_id, FollowupKind::EarlyPregnancy, due, None),
                )?;
            }
        }
        // The outcome answered: a screening recorded since (she plans again) starts its own
        // 早孕随访 now, unless she is already booked.
        _ if f.kind == FollowupKind::Outcome && pregnancy.is_none() => {
            if let Some(newer) = repo::exams_of(c, &couple.id)?.into_iter().next()
                && newer.id != f.exam_id
                && newer.exam_date > exam_date
            {
                let due = newer.exam_date + chrono::Duration::days(rules.early_pregnancy_due_days);
                repo::insert_followup(
                    c,
                    &new_followup(couple, &newer.id, FollowupKind::EarlyPregnancy, due, None),
                )?;
            }
        }
        _ => {}
    }
    record_many(c, actor, "update", both(couple), "screening follow-up answered")?;
    Ok(())
}

/// Reaction to a booking (`pregnancy::events::PREGNANCY_BOOKED`): her open 早孕随访 closes itself
/// as 已孕 and the 妊娠结局随访 is due from the booked EDD; an open outcome follow-up is linked
/// to the pregnancy; her couple's unlinked registration gives the pregnancy its handbook number.
pub fn close_followup_on_booking(
    c: &mut AnyConnection,
    e: &crate::pregnancy::events::PregnancyBooked,
) -> Result<(), ServiceError> {
    let p = &e.pregnancy;
    let Some(couple) = repo::current_couple_of(c, &p.person_id)? else {
        return Ok(());
    };
    if couple.wife_id != p.person_id {
        return Ok(());
    }
    let rules = &model::rules().followup;
    let due = model::outcome_due(rules, p.dating.edd);
    let mut touched = false;
    if let Some(f) = repo::open_followup_of(c, &couple.id)? {
        match f.kind {
            FollowupKind::EarlyPregnancy => {
                repo::complete_followup(
                    c,
                    &f.id,
                    FollowupResult::Pregnant,
                    p.booking_date,
                    Some("建册时自动关闭"),
                    Some(&p.id),
                    &e.actor.name,
                )?;
                repo::insert_followup(
                    c,
                    &new_followup(&couple, &f.exam_id, FollowupKind::Outcome, due, Some(p.id.clone())),
                )?;
            }
            FollowupKind::Outcome => repo::link_followup(c, &f.id, &p.id, due)?,
        }
        touched = true;
    }
    // Only a registration made since her last delivery is for this pregnancy (an older unlinked
    // one was for a child born outside the system).
    let mut last_delivery = None;
    for earlier in crate::pregnancy::repo::for_person(c, &p.person_id)? {
        if earlier.id != p.id
            && let Some(d) = crate::pregnancy::repo::delivery_for(c, &earlier.id)?
        {
            last_delivery = last_delivery.max(Some(d.delivery_date));
        }
    }
    if let Some(r) = repo::registrations_of(c, &couple.id)?.into_iter().find(|r| {
        r.pregnancy_id.is_none()
            && r.status != RegistrationStatus::Refused
            && last_delivery.is_none_or(|d| r.registered_on > d)
    }) {
        repo::link_registration(c, &r.id, &p.id)?;
        touched = true;
    }
    if touched {
        record(
            c,
            &e.actor,
            "update",
            couple_target(&couple),
            "follow-up closed by booking",
        )?;
    }
    Ok(())
}

/// Reaction to a delivery (`pregnancy::events::DELIVERY_RECORDED`): her 妊娠结局随访 for this
/// pregnancy is answered 已分娩 on the delivery date.
pub fn close_outcome_on_delivery(
    c: &mut AnyConnection,
    e: &crate::pregnancy::events::DeliveryRecorded,
) -> Result<(), ServiceError> {
    let p = &e.pregnancy;
    let Some(couple) = repo::current_couple_of(c, &p.person_id)?.filter(|x| x.wife_id == p.person_id) else {
        return Ok(());
    };
    if let Some(f) = repo::open_followup_of(c, &couple.id)?
        && f.kind == FollowupKind::Outcome
        && f.pregnancy_id.as_deref().is_none_or(|id| id == p.id)
    {
        repo::complete_followup(
            c,
            &f.id,
            FollowupResult::Delivered,
            e.delivery.delivery_date,
            Some("分娩记录自动关闭"),
            Some(&p.id),
            &e.actor.name,
        )?;
        record(
            c,
            &e.actor,
            "update",
            couple_target(&couple),
            "outcome follow-up closed by delivery",
        )?;
    }
    Ok(())
}

/// Reaction to a merge (`identity::events::PERSONS_MERGING`): two records that are each in a
/// current couple are not merged blindly (a person must decide which marriage is the real one).
pub fn refuse_merging_two_current_couples(
    c: &mut AnyConnection,
    e: &crate::identity::events::PersonsMerging,
) -> Result<(), ServiceError> {
    if repo::current_couple_of(c, &e.survivor.id)?.is_some() && repo::current_couple_of(c, &e.merged.id)?.is_some() {
        return Err(ServiceError::Conflict(
            "两份档案各有在婚的夫妻档案，不能自动合并；请先核对并终止其中错误的一份".into(),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------ birth registration

/// Register a birth (生育登记 / 再生育) under the policy in force (§8): the birth order, the
/// procedure and the rule more favourable to the couple, its source; the 生育服务登记 number and
/// the 母子健康手册 number are issued in one step (多证合一). An approval case waits on its
/// deadline; outside-policy is recorded as such. Nothing here gates care.
pub async fn register_birth(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    input: RegistrationInput,
) -> Result<RegistrationView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let couple = current_for(c, actor, Action::BookPregnancy, &couple_id)?;
        let on = input.validate(today_china())?;
        let case = Case {
            date: on,
            provinces: vec![
                couple.marriage.wife_province.clone(),
                couple.marriage.husband_province.clone(),
            ],
            remarriage: input.remarriage.unwrap_or(couple.remarriage()),
            children: input.children.clone(),
        };
        let decision =
            crate::policy::model::evaluate(&case).map_err(|e| ServiceError::invalid("date", "policy", e.0))?;
        let order = i32::try_from(decision.birth_order).unwrap_or(i32::MAX);
        // The same birth order again is a duplicate while the earlier registration is still in
        // use (not refused, and unlinked or linked to an active pregnancy); after a loss or a
        // child's death (广东 2021 再生育) the order may come again.
        let mut in_use = false;
        for r in repo::registrations_of(c, &couple.id)? {
            if r.birth_order != order || r.status == RegistrationStatus::Refused {
                continue;
            }
            in_use |= match &r.pregnancy_id {
                None => true,
                Some(pid) => {
                    crate::pregnancy::repo::by_id(c, pid)?.is_some_and(|p| p.status == PregnancyStatus::Active)
                }
            };
        }
        if in_use {
            return Err(ServiceError::Conflict(format!(
                "该夫妻第 {order} 孩已有生育登记，可继续使用（子女出生后再登记下一孩）"
            )));
        }
        let status = RegistrationStatus::of(decision.procedure);
        let pregnancy = crate::pregnancy::repo::active_for_person(c, &couple.wife_id)?;
        let area = &actor.facility.jurisdiction;
        let r = BirthRegistration {
            id: new_id(),
            couple_id: couple.id.clone(),
            registration_no: next_number(c, "SY", area, on)?,
            handbook_no: next_number(c, "MZ", area, on)?,
            registered_on: on,
            birth_order: order,
            procedure: decision.procedure,
            status,
            explanation: model::explain(&decision, &input.children),
            rule: decision.rule,
            source: decision.source,
            province: decision.province,
            decision_due: match decision.procedure {
                Procedure::Approval => decision_due(&decision.steps, on),
                _ => None,
            },
            decided_on: None,
            children: input.children,
            pregnancy_id: pregnancy.map(|p| p.id),
            facility_id: actor.facility.id.clone(),
            recorded_by: actor.name.clone(),
            created_at: now_utc(),
        };
        repo::insert_registration(c, &r, &couple.jurisdiction, couple.township_code.as_deref())
            .map_err(|e| storage_conflict(e, "登记编号刚被占用，请重试"))?;
        record_many(c, actor, "create", both(&couple), "birth registered")?;
        Ok(registration_view(r))
    })
    .await
}

/// The approval's answer to a 再生育 request, as the desk records it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `approved` or `refused`.
    pub decision: Option<String>,
    pub decided_on: Option<String>,
}

pub async fn decide_registration(
    db: &Db,
    actor: &Actor,
    couple_id: String,
    registration_id: String,
    input: DecisionInput,
) -> Result<RegistrationView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let couple = couple_for(c, actor, Action::BookPregnancy, &couple_id)?;
        let r = repo::registration_by_id(c, &registration_id)?
            .filter(|r| r.couple_id == couple.id)
            .ok_or(ServiceError::NotFound("没有找到该生育登记"))?;
        let status = match input.decision.as_deref().map(str::trim) {
            Some("approved") => RegistrationStatus::Approved,
            Some("refused") => RegistrationStatus::Refused,
            _ => {
                return Err(ServiceError::invalid(
                    "decision",
                    "required",
                    "请选择审批结果（批准或不批准）",
                ));
            }
        };
        let today = today_china();
        let on = match input.decided_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => today,
            Some(t) => match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                Ok(d) if d > today => {
                    return Err(ServiceError::invalid("decided_on", "future", "审批日期不能晚于今天"));
                }
                Ok(d) if d < r.registered_on => {
                    return Err(ServiceError::invalid(
                        "decided_on",
                        "before_request",
                        "审批日期不能早于申请日期",
                    ));
                }
                Ok(d) => d,
                Err(_) => {
                    return Err(ServiceError::invalid(
                        "decided_on",
                        "format",
                        "审批日期格式应为 YYYY-MM-DD",
                    ));
                }
            },
        };
        if !repo::decide_registration(c, &r.id, status, on)? {
            return Err(ServiceError::Conflict("该登记不在审批中，请刷新后查看".into()));
        }
        record_many(c, actor, "update", both(&couple), "registration decision recorded")?;
        let stored = repo::registration_by_id(c, &r.id)?.ok_or(ServiceError::NotFound("没有找到该生育登记"))?;
        Ok(registration_view(stored))
    })
    .await
}

/// The 母子健康手册 number a pregnancy was booked under (多证合一), for her pregnancy page and
/// later her child's. Read in the caller's transaction (access checked and audited there).
pub fn handbook_of_pregnancy(c: &mut AnyConnection, pregnancy_id: &str) -> Result<Option<String>, ServiceError> {
    Ok(repo::registration_of_pregnancy(c, pregnancy_id)?.map(|r| r.handbook_no))
}

// ------------------------------------------------------------------ worklist

#[derive(Debug, Clone, Serialize)]
pub struct DueFollowup {
    pub followup: FollowupView,
    pub wife_name: String,
    pub wife_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitingRegistration {
    pub registration: RegistrationView,
    pub wife_name: String,
    pub wife_id: String,
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TownshipCount {
    pub township_code: Option<String>,
    pub screened: i64,
    pub high_risk: i64,
    pub pregnant: i64,
    pub lost: i64,
    /// Screened, answered neither 已孕 nor 失访 yet: screened but not (yet) booked.
    pub open: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Worklist {
    pub followups: Vec<DueFollowup>,
    pub followups_total: i64,
    pub registrations: Vec<WaitingRegistration>,
    pub registrations_total: i64,
    pub townships: Vec<TownshipCount>,
}

/// The before-pregnancy worklist of the actor's area: follow-ups due within a week or overdue,
/// 再生育 requests waiting on a deadline, and per township over the last year the couples
/// screened, high risk, pregnant, lost and still open (audited per couple listed).
pub async fn worklist(db: &Db, actor: &Actor) -> Result<Worklist, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "couple",
                ..Default::default()
            }));
        }
        let today = today_china();
        let (township, prefix) = actor.scope.filters();
        let (rows, followups_total) = repo::due_followups(c, township, prefix, today + chrono::Duration::days(7), 200)?;
        let (waiting, registrations_total) = repo::waiting_registrations(c, township, prefix, 200)?;
        let counted = repo::township_counts(c, township, prefix, today - chrono::Duration::days(365), today)?;
        let townships = count_by_township(counted);
        let mut targets: Vec<AuditTarget> = rows
            .iter()
            .map(|r| AuditTarget {
                entity_type: "couple",
                entity_id: Some(r.followup.couple_id.clone()),
                person_id: Some(r.wife_id.clone()),
            })
            .collect();
        targets.extend(waiting.iter().map(|(r, _, wife_id)| AuditTarget {
            entity_type: "couple",
            entity_id: Some(r.couple_id.clone()),
            person_id: Some(wife_id.clone()),
        }));
        record_many(c, actor, "read", targets, "before-pregnancy worklist")?;
        Ok(Worklist {
            followups: rows
                .into_iter()
                .map(|r| DueFollowup {
                    followup: followup_view(r.followup, today),
                    wife_name: r.wife_name,
                    wife_id: r.wife_id,
                })
                .collect(),
            followups_total,
            registrations: waiting
                .into_iter()
                .map(|(r, wife_name, wife_id)| WaitingRegistration {
                    overdue: r.decision_due.is_some_and(|d| d < today),
                    registration: registration_view(r),
                    wife_name,
                    wife_id,
                })
                .collect(),
            registrations_total,
            townships,
        })
    })
    .await
}

/// Per township, couples (not screenings) screened in the period: a couple counts once, high
/// risk by its latest screening, pregnant / lost by its best answered 早孕随访 (已孕 over 失访),
/// open otherwise (screened, not yet pregnant or booked).
fn count_by_township(rows: Vec<repo::ScreeningCountRow>) -> Vec<TownshipCount> {
    use std::collections::BTreeMap;
    // couple → (township, latest exam date, high risk, rank)
    let mut couples: BTreeMap<String, (Option<String>, NaiveDate, bool, u8)> = BTreeMap::new();
    for (township, couple, exam_date, class, result) in rows {
        let rank = match result.as_deref() {
            Some("pregnant") => 2,
            Some("lost") => 1,
            _ => 0,
        };
        let high = class == RiskClass::High.as_str();
        let e = couples.entry(couple).or_insert((township, exam_date, high, rank));
        if exam_date > e.1 {
            (e.1, e.2) = (exam_date, high);
        }
        e.3 = e.3.max(rank);
    }
    let mut out: BTreeMap<Option<String>, TownshipCount> = BTreeMap::new();
    for (_, (township, _, high, rank)) in couples {
        let t = out.entry(township.clone()).or_insert_with(|| TownshipCount {
            township_code: township,
            ..TownshipCount::default()
        });
        t.screened += 1;
        t.high_risk += i64::from(high);
        match rank {
            2 => t.pregnant += 1,
            1 => t.lost += 1,
            _ => t.open += 1,
        }
    }
    out.into_values().collect()
}

/// The home page's share of the worklist: overdue follow-ups and approvals past their deadline,
/// at most `limit` of each with their totals; only those shown are read and audited.
pub async fn overdue_tasks(db: &Db, actor: &Actor, limit: i64) -> Result<Worklist, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Ok(Worklist {
                followups: Vec::new(),
                followups_total: 0,
                registrations: Vec::new(),
                registrations_total: 0,
                townships: Vec::new(),
            });
        }
        let today = today_china();
        let (township, prefix) = actor.scope.filters();
        let (rows, followups_total) =
            repo::due_followups(c, township, prefix, today - chrono::Duration::days(1), limit)?;
        let (waiting, _) = repo::waiting_registrations(c, township, prefix, 500)?;
        let late: Vec<repo::WaitingRow> = waiting
            .into_iter()
            .filter(|(r, _, _)| r.decision_due.is_some_and(|d| d < today))
            .collect();
        let registrations_total = late.len() as i64;
        let late: Vec<repo::WaitingRow> = late.into_iter().take(usize::try_from(limit).unwrap_or(0)).collect();
        let targets = rows
            .iter()
            .map(|r| (r.followup.couple_id.clone(), r.wife_id.clone()))
            .chain(late.iter().map(|(r, _, w)| (r.couple_id.clone(), w.clone())))
            .map(|(couple, wife)| AuditTarget {
                entity_type: "couple",
                entity_id: Some(couple),
                person_id: Some(wife),
            })
            .collect();
        record_many(c, actor, "search", targets, "before-pregnancy tasks")?;
        Ok(Worklist {
            followups: rows
                .into_iter()
                .map(|r| DueFollowup {
                    followup: followup_view(r.followup, today),
                    wife_name: r.wife_name,
                    wife_id: r.wife_id,
                })
                .collect(),
            followups_total,
            registrations: late
                .into_iter()
                .map(|(r, wife_name, wife_id)| WaitingRegistration {
                    overdue: true,
                    registration: registration_view(r),
                    wife_name,
                    wife_id,
                })
                .collect(),
            registrations_total,
            townships: Vec::new(),
        })
    })
    .await
}

/// The advice choices of the marriage-check form.
pub fn advice_choices() -> Vec<(&'static str, &'static str)> {
    MarriageAdvice::ALL.iter().map(|a| (a.as_str(), a.label_zh())).collect()
}

/// The audit target of a refused request naming a couple: the wife's record.
pub async fn refusal_target(db: &Db, couple_id: String) -> Result<Option<AuditTarget>, ServiceError> {
    db.read(move |c| Ok(repo::couple_by_id(c, &couple_id)?.as_ref().map(couple_target)))
        .await
}
