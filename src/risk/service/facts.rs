//! What the record already shows about a woman, for screening, grading and re-grading: the
//! latest measured values from visits and results, dated, and the grade they give.

use chrono::{Datelike, NaiveDate};

use crate::error::ServiceError;
use crate::identity::model::Person;
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::risk::model::{
    Assessment, AssessmentRecord, AssessmentStatus, Facts, RiskColour, RiskFactor, evaluate as grade_facts,
};
use crate::risk::repo;
use crate::storage::AnyConnection;

fn years_between(birth: NaiveDate, on: NaiveDate) -> f64 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    f64::from(age)
}

/// Take a source's value for a fact unless a newer source decided it; true when taken.
fn pick<T: Copy>(slot: &mut Option<T>, done: &mut bool, value: Option<T>, newer: bool) -> bool {
    if let Some(v) = value
        && !*done
    {
        *done = true;
        if newer || slot.is_none() {
            *slot = Some(v);
            return true;
        }
    }
    false
}

/// What the record already shows about a woman: age at booking, the latest measured values from
/// visits and results, and what the last confirmed grading recorded (values entered on the grading
/// form and the items a clinician ticked). A visit or result newer than that grading wins for the
/// values it measured.
pub fn known_facts(conn: &mut AnyConnection, p: &Pregnancy, person: &Person) -> Result<Facts, ServiceError> {
    Ok(known_facts_dated(conn, p, person)?.0)
}

/// Which day and kind of source each measured value came from (fact name → date, "随访"/"检验").
pub(super) type Dated = Vec<(&'static str, NaiveDate, &'static str)>;

/// One dated source of measured values: a visit or a result.
#[derive(Default)]
struct Measured {
    day: NaiveDate,
    at: chrono::NaiveDateTime,
    label: &'static str,
    weight_kg: Option<f64>,
    height_cm: Option<f64>,
    hb_g_l: Option<f64>,
    bp: Option<(f64, f64)>,
    platelets_10e9_l: Option<f64>,
    hiv: Option<crate::risk::model::TestResult>,
    syphilis: Option<crate::risk::model::TestResult>,
    hbsag: Option<crate::risk::model::TestResult>,
}

/// [`known_facts`] with the date each measured value came from.
pub(super) fn known_facts_dated(
    conn: &mut AnyConnection,
    p: &Pregnancy,
    person: &Person,
) -> Result<(Facts, Dated), ServiceError> {
    use crate::observations::service::FactValue;
    let last = repo::assessments(conn, &p.id)?
        .into_iter()
        .rev()
        .find(|a| a.status == AssessmentStatus::Confirmed);
    let mut f = last.as_ref().map(|a| a.facts.clone()).unwrap_or_default();
    let since = last.as_ref().map(|a| (a.created_at.date(), a.created_at));
    f.age_years = Some(years_between(person.birth_date, p.booking_date));
    let mut sources: Vec<Measured> = crate::visits::repo::for_pregnancy(conn, &p.id)?
        .into_iter()
        .map(|v| Measured {
            day: v.visit_date,
            at: v.recorded_at,
            label: "随访",
            weight_kg: v.weight_kg,
            height_cm: v.height_cm,
            hb_g_l: v.hb_g_l.map(f64::from),
            bp: match (v.systolic_mmhg, v.diastolic_mmhg) {
                (Some(s), Some(d)) => Some((f64::from(s), f64::from(d))),
                _ => None,
            },
            ..Measured::default()
        })
        .collect();
    // Results (RULES.md §7.2 testing in pregnancy, §1.3 lab items of the grading table).
    for r in crate::observations::service::dated_facts(conn, &p.id)? {
        let mut m = Measured {
            day: r.day,
            at: r.at,
            label: "检验",
            ..Measured::default()
        };
        match (r.fact.as_str(), r.value) {
            ("hb_g_l", FactValue::Number(v)) => m.hb_g_l = Some(v),
            ("platelets_10e9_l", FactValue::Number(v)) => m.platelets_10e9_l = Some(v),
            ("hiv", FactValue::Test(t)) => m.hiv = Some(t),
            ("syphilis", FactValue::Test(t)) => m.syphilis = Some(t),
            ("hbsag", FactValue::Test(t)) => m.hbsag = Some(t),
            _ => continue,
        }
        sources.push(m);
    }
    // The pre-pregnancy screening (孕前优生健康检查, issue 12 §4) within the pre-fill window
    // before booking: the oldest source, so anything measured in pregnancy wins over it.
    let screening = crate::couple::service::screening_for_prefill(conn, &person.id, p.booking_date)?;
    if let Some(e) = &screening {
        let w = &e.wife;
        sources.push(Measured {
            day: e.exam_date,
            at: e.created_at,
            label: PREPREGNANCY_SOURCE,
            weight_kg: w.weight_kg,
            height_cm: w.height_cm,
            hb_g_l: w.hb_g_l,
            bp: w.systolic_mmhg.zip(w.diastolic_mmhg),
            platelets_10e9_l: w.platelets_10e9_l,
            hiv: w.hiv,
            syphilis: w.syphilis,
            hbsag: w.hbsag,
        });
    }
    // Newest first: the newest source that measured a value decides it, unless it is older than
    // the last grading and that grading recorded the value itself.
    sources.sort_by_key(|m| std::cmp::Reverse((m.day, m.at)));
    let mut done = [false; 8];
    let mut dated: Dated = Vec::new();
    for v in &sources {
        // Newer than the grading: a later day, or the same day but recorded after it.
        let newer = since.is_none_or(|(day, at)| v.day > day || (v.day == day && v.at > at));
        let mut took = |name: &'static str, taken: bool| {
            if taken {
                dated.push((name, v.day, v.label));
            }
        };
        took("weight_kg", pick(&mut f.weight_kg, &mut done[0], v.weight_kg, newer));
        took("height_cm", pick(&mut f.height_cm, &mut done[1], v.height_cm, newer));
        took("hb_g_l", pick(&mut f.hb_g_l, &mut done[2], v.hb_g_l, newer));
        took(
            "platelets_10e9_l",
            pick(&mut f.platelets_10e9_l, &mut done[4], v.platelets_10e9_l, newer),
        );
        took("hiv", pick(&mut f.hiv, &mut done[5], v.hiv, newer));
        took("syphilis", pick(&mut f.syphilis, &mut done[6], v.syphilis, newer));
        took("hbsag", pick(&mut f.hbsag, &mut done[7], v.hbsag, newer));
        if let Some((s, d)) = v.bp
            && !done[3]
        {
            done[3] = true;
            if newer || f.systolic_mmhg.is_none() {
                f.systolic_mmhg = Some(s);
                f.diastolic_mmhg = Some(d);
                dated.push(("systolic_mmhg", v.day, v.label));
                dated.push(("diastolic_mmhg", v.day, v.label));
            }
        }
    }
    // Previous caesareans are history, not a measurement: the screening's count fills what the
    // record does not hold yet.
    if let Some(e) = &screening
        && f.previous_caesareans.is_none()
        && let Some(n) = e.wife.caesareans
    {
        f.previous_caesareans = Some(n);
        dated.push(("previous_caesareans", e.exam_date, PREPREGNANCY_SOURCE));
    }
    Ok((f, dated))
}

/// The source label of values pre-filled from the pre-pregnancy screening.
pub(super) const PREPREGNANCY_SOURCE: &str = "孕前优生检查";

/// Where a pre-filled value on the screening or grading form came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FactSource {
    pub fact: &'static str,
    pub label: &'static str,
    pub day: NaiveDate,
    pub source: &'static str,
}

/// What the pre-pregnancy screening tells the forms beyond values: its date and class, and her
/// chronic diseases as prompts to consider — never ticked for the clinician.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PrepregnancyNote {
    pub couple_id: String,
    pub exam_date: NaiveDate,
    pub class_label: &'static str,
    pub diseases: Vec<String>,
    pub factors: Vec<String>,
}

fn fact_label(fact: &str) -> &'static str {
    match fact {
        "weight_kg" => "体重",
        "height_cm" => "身高",
        "hb_g_l" => "血红蛋白",
        "platelets_10e9_l" => "血小板",
        "systolic_mmhg" => "收缩压",
        "diastolic_mmhg" => "舒张压",
        "hiv" => "HIV",
        "syphilis" => "梅毒",
        "hbsag" => "乙肝表面抗原",
        "previous_caesareans" => "剖宫产次数",
        _ => "其他",
    }
}

/// The sources of the pre-filled values, and the screening's note (for the forms).
pub(super) fn sources_of(
    conn: &mut AnyConnection,
    p: &Pregnancy,
    dated: &Dated,
) -> Result<(Vec<FactSource>, Option<PrepregnancyNote>), ServiceError> {
    let sources = dated
        .iter()
        .map(|(fact, day, source)| FactSource {
            fact,
            label: fact_label(fact),
            day: *day,
            source,
        })
        .collect();
    let note =
        crate::couple::service::screening_for_prefill(conn, &p.person_id, p.booking_date)?.map(|e| PrepregnancyNote {
            couple_id: e.couple_id.clone(),
            exam_date: e.exam_date,
            class_label: e.risk_class.label_zh(),
            diseases: crate::couple::service::disease_names(&e.wife),
            factors: e
                .factors
                .iter()
                .filter(|f| f.partner == crate::couple::model::Partner::Wife)
                .map(|f| format!("{}（{}）", f.name, f.category_label))
                .collect(),
        });
    Ok((sources, note))
}

/// Say when a data-decided factor was measured ("血红蛋白 58 g/L（…）· 2026-03-02 随访").
pub(super) fn annotate_dates(
    a: &mut Assessment,
    rules: &crate::risk::model::RuleSet,
    facts: &Facts,
    dated: &[(&'static str, NaiveDate, &'static str)],
) {
    for f in &mut a.factors {
        let day = rules
            .bands
            .iter()
            .filter(|b| b.code == f.code && facts.numeric(&b.fact).is_some_and(|v| b.contains(v)))
            .map(|b| if b.fact == "bmi" { "weight_kg" } else { b.fact.as_str() })
            .find_map(|fact| {
                dated
                    .iter()
                    .find(|(name, _, _)| *name == fact)
                    .map(|(_, d, l)| (*d, *l))
            });
        if let Some((d, label)) = day {
            f.reason = format!("{} · {d} {label}", f.reason);
        }
    }
}

/// RULES.md §1.3 red 2.x "红色预警范畴疾病产后尚未稳定": after delivery, a woman graded red keeps
/// red until a clinician confirms she is stable (by removing this factor with a reason).
fn postpartum_red_carry_over(
    p: &Pregnancy,
    history: &[AssessmentRecord],
    rules: &crate::risk::model::RuleSet,
) -> Option<RiskFactor> {
    if p.status != PregnancyStatus::Delivered {
        return None;
    }
    let confirmed = || history.iter().filter(|a| a.status == AssessmentStatus::Confirmed);
    let was_red = confirmed().any(|a| a.colour == RiskColour::Red);
    let declared_stable = confirmed().any(|a| a.removed.iter().any(|r| r.code == "R2.3"));
    let item = rules.item("R2.3")?;
    (was_red && !declared_stable).then(|| RiskFactor {
        code: item.code.clone(),
        colour: item.colour,
        reason: "孕期评估为红色，产后尚未确认病情稳定".to_string(),
    })
}

/// Grade the known facts, adding the postpartum carry-over of red.
pub(super) fn assess(
    p: &Pregnancy,
    history: &[AssessmentRecord],
    rules: &crate::risk::model::RuleSet,
    facts: &Facts,
) -> Result<Assessment, ServiceError> {
    let mut a = grade_facts(rules, facts).map_err(|e| ServiceError::invalid("facts", "facts", e))?;
    if let Some(f) = postpartum_red_carry_over(p, history, rules)
        && !a.factors.iter().any(|x| x.code == f.code)
    {
        a.factors.push(f);
        a = Assessment::of(a.factors, &rules.id);
    }
    Ok(a)
}
