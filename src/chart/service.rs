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
        Ok(PregnancyChart {
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
