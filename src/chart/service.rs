//! The pregnancy page, assembled from the features that hold its parts.

use serde::Serialize;

use crate::audit::model::AuditEvent;
use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::ServiceError;
use crate::identity::service::{PersonView, person_for, view_of};
use crate::ids::today_china;
use crate::pregnancy::model::{GestationalAge, Pregnancy};
use crate::pregnancy::service::{pregnancy_for, pregnancy_target};
use crate::privacy::model::shown;
use crate::storage::Db;
use crate::visits::model::Visit;
use crate::visits::schedule::{self, ContactStatus};

/// One row of the visit table on the pregnancy page.
#[derive(Debug, Clone, Serialize)]
pub struct VisitRow {
    pub visit: Visit,
    pub ga: String,
    pub bmi: Option<String>,
}

/// The pregnancy page: identity, dating, visits, schedule and who opened this record.
#[derive(Debug, Clone, Serialize)]
pub struct PregnancyChart {
    pub person: PersonView,
    pub pregnancy: Pregnancy,
    pub status_label: &'static str,
    pub ga_today: GestationalAge,
    pub ga_today_text: String,
    pub visits: Vec<VisitRow>,
    pub schedule: Vec<ContactStatus>,
    pub access_log: Vec<AuditEvent>,
    pub risk: crate::risk::service::RiskSummary,
    pub delivery: Option<crate::pregnancy::model::Delivery>,
    pub postpartum_schedule: Vec<ContactStatus>,
    pub referrals: Vec<crate::referral::service::ReferralSummary>,
    /// Her babies of this pregnancy (their own records).
    pub children: Vec<crate::child::service::ChildSummary>,
    /// Results received from hospitals, newest first (never a fetal-sex finding, RULES.md §9.1).
    pub results: Vec<crate::observations::model::Observation>,
    /// Her 母子健康手册 number, issued with the birth registration (多证合一, RULES.md §6.1).
    pub handbook_no: Option<String>,
    /// Weight gain, BP, Hb, fundal height and the grades over the pregnancy, for the charts.
    pub trends: Trends,
}

/// The series the pregnancy page draws (x: gestational days), from the antenatal visits.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trends {
    /// Gain over her pre-pregnancy weight, kg.
    pub weight_gain: Vec<(f64, f64)>,
    pub systolic: Vec<(f64, f64)>,
    pub diastolic: Vec<(f64, f64)>,
    pub hb: Vec<(f64, f64)>,
    pub fundal_height: Vec<(f64, f64)>,
    /// Her pre-pregnancy weight and where it came from (the screening, or an early visit).
    pub baseline: Option<(f64, String)>,
    /// Her BMI class and the recommended band (day, low, high), weekly, with the rule's name.
    pub band_label: Option<String>,
    pub band: Vec<(f64, f64, f64)>,
    /// Confirmed grades as (from day, to day, colour, label), in time order.
    pub grades: Vec<(f64, f64, String, String)>,
}

/// Her trends: visits by gestational day; the weight baseline from the pre-pregnancy screening
/// within the pre-fill window, else a weight at a visit up to 13+6 weeks (labelled as such);
/// the recommended band for her BMI class (WS/T 801—2022 as data, `visits::weight_gain`).
fn trends_of(
    c: &mut crate::storage::AnyConnection,
    p: &crate::pregnancy::model::Pregnancy,
    visits: &[crate::visits::model::Visit],
    history: &[crate::risk::model::AssessmentRecord],
    until: chrono::NaiveDate,
) -> Result<Trends, ServiceError> {
    let ga = |d: chrono::NaiveDate| p.dating.gestational_age_on(d).days as f64;
    let antenatal: Vec<&crate::visits::model::Visit> = visits.iter().filter(|v| !v.kind.is_postpartum()).collect();
    let screening = crate::couple::service::screening_for_prefill(c, &p.person_id, p.booking_date)?;
    let early = antenatal
        .iter()
        .find(|v| v.weight_kg.is_some() && ga(v.visit_date) < 98.0);
    let baseline = match (&screening, early) {
        (Some(e), _) if e.wife.weight_kg.is_some() => e
            .wife
            .weight_kg
            .map(|w| (w, format!("孕前优生健康检查 {}", e.exam_date))),
        (_, Some(v)) => v
            .weight_kg
            .map(|w| (w, format!("孕早期 {} 体重（代替孕前体重）", v.visit_date))),
        _ => None,
    };
    let height = screening
        .as_ref()
        .and_then(|e| e.wife.height_cm)
        .or_else(|| antenatal.iter().find_map(|v| v.height_cm));
    let mut t = Trends::default();
    for v in &antenatal {
        let x = ga(v.visit_date);
        if let (Some(w), Some((b, _))) = (v.weight_kg, &baseline) {
            t.weight_gain.push((x, ((w - b) * 10.0).round() / 10.0));
        }
        if let (Some(s), Some(d)) = (v.systolic_mmhg, v.diastolic_mmhg) {
            t.systolic.push((x, f64::from(s)));
            t.diastolic.push((x, f64::from(d)));
        }
        if let Some(h) = v.hb_g_l {
            t.hb.push((x, f64::from(h)));
        }
        if let Some(f) = v.fundal_height_cm {
            t.fundal_height.push((x, f));
        }
    }
    let rules = crate::visits::weight_gain::rules();
    if let Some(bmi) = crate::visits::model::bmi(baseline.as_ref().map(|b| b.0), height)
        && let Some(band) = rules.band(bmi)
    {
        t.band_label = Some(format!("孕前 BMI {bmi:.1}，{}；{}", band.label, rules.name));
        t.band = (0..=42)
            .map(|week| {
                let (lo, hi) = rules.range_at(band, f64::from(week));
                (f64::from(week) * 7.0, lo, hi)
            })
            .collect();
    }
    t.baseline = baseline;
    let confirmed: Vec<&crate::risk::model::AssessmentRecord> = history
        .iter()
        .filter(|a| a.status == crate::risk::model::AssessmentStatus::Confirmed)
        .collect();
    for (i, a) in confirmed.iter().enumerate() {
        let from = ga((a.created_at + chrono::Duration::hours(8)).date()).max(0.0);
        let to = confirmed
            .get(i + 1)
            .map_or(ga(until), |n| ga((n.created_at + chrono::Duration::hours(8)).date()))
            .max(from);
        let label = if a.purple {
            format!("{}+紫色", a.colour_label)
        } else {
            a.colour_label.to_string()
        };
        t.grades.push((from, to, a.colour.as_str().to_string(), label));
    }
    t.weight_gain.retain(|(x, _)| *x >= 0.0);
    Ok(t)
}

/// Open the pregnancy page: one audited read of everything the page shows, in one transaction.
pub async fn pregnancy(db: &Db, actor: &Actor, pregnancy_id: String) -> Result<PregnancyChart, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        let p = pregnancy_for(c, actor, Action::ReadRecord, &pregnancy_id)?;
        record(c, actor, "read", pregnancy_target(&p), "pregnancy page")?;
        let person = person_for(c, actor, Action::ReadRecord, &p.person_id)?;
        let mut person = view_of(c, actor, person)?;
        // The whole ID number is shown only on the person's own page (issue 2); here it is masked.
        person.id_number_display = person
            .person
            .id_number
            .as_deref()
            .map(crate::identity::model::mask_id_number);
        person.health_card_numbers = person
            .health_card_numbers
            .iter()
            .map(|n| crate::identity::model::mask_id_number(n))
            .collect();
        let today = today_china();
        // A text stored before every door refused fetal sex is withheld, never shown (RULES.md §9.1).
        let mut visits = crate::visits::repo::for_pregnancy(c, &p.id)?;
        for v in &mut visits {
            v.complaints = shown(std::mem::take(&mut v.complaints));
            v.advice = shown(std::mem::take(&mut v.advice));
        }
        let first_height = visits.iter().find_map(|v| v.height_cm);
        let rows = visits
            .iter()
            .map(|v| VisitRow {
                ga: p.dating.gestational_age_on(v.visit_date).to_string(),
                bmi: crate::visits::model::bmi(v.weight_kg, v.height_cm.or(first_height)).map(|b| format!("{b:.1}")),
                visit: v.clone(),
            })
            .collect();
        let delivery = crate::pregnancy::repo::delivery_for(c, &p.id)?.map(|mut d| {
            d.complications = shown(std::mem::take(&mut d.complications));
            d
        });
        let antenatal_dates: Vec<_> = visits
            .iter()
            .filter(|v| !v.kind.is_postpartum())
            .map(|v| v.visit_date)
            .collect();
        // After delivery the antenatal schedule is judged as of the delivery day; later contacts lapse.
        let (statuses, postpartum_schedule) = match &delivery {
            None => (
                schedule::statuses(schedule::national(), &p.dating, &antenatal_dates, today),
                Vec::new(),
            ),
            Some(d) => {
                let antenatal = schedule::statuses(schedule::national(), &p.dating, &antenatal_dates, d.delivery_date)
                    .into_iter()
                    .filter(|s| s.window_start <= d.delivery_date)
                    .collect();
                let seen: Vec<(String, chrono::NaiveDate)> = visits
                    .iter()
                    .map(|v| (v.kind.as_str().to_string(), v.visit_date))
                    .collect();
                let post = schedule::postpartum_statuses(
                    schedule::postpartum(),
                    d.delivery_date,
                    d.discharge_date,
                    &seen,
                    today,
                );
                (antenatal, post)
            }
        };
        let access_log = crate::audit::repo::for_person(c, &p.person_id, None, None, 30)?;
        let ga_today = p.dating.gestational_age_on(today);
        let risk = crate::risk::service::summary(c, &p.id)?;
        let referrals = crate::referral::service::for_person(c, &p.person_id)?;
        let results = crate::observations::repo::for_pregnancy(c, &p.id)?;
        let children = crate::child::service::children_of_pregnancy_in(c, actor, &p.id)?;
        let handbook_no = crate::couple::service::handbook_of_pregnancy(c, &p.id)?;
        let history = crate::risk::repo::assessments(c, &p.id)?;
        let until = delivery.as_ref().map_or(today, |d| d.delivery_date);
        let trends = trends_of(c, &p, &visits, &history, until)?;
        Ok(PregnancyChart {
            trends,
            handbook_no,
            children,
            results,
            risk,
            referrals,
            person,
            status_label: p.status.label_zh(),
            ga_today,
            ga_today_text: ga_today.to_string(),
            pregnancy: p,
            visits: rows,
            schedule: statuses,
            access_log,
            delivery,
            postpartum_schedule,
        })
    })
    .await
}
