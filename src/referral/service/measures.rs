//! Per centre and month: counts, response times, feedback completeness (aggregates only).

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::referral::model;
use crate::referral::repo;
use crate::storage::Db;

#[derive(Debug, Clone, Serialize)]
pub struct CentreMeasures {
    #[serde(flatten)]
    pub m: model::CentreMonth,
    pub facility_name: String,
}

/// Per centre and month: received, accepted, rejected, median / 90th-percentile times, feedback
/// completeness (issue 4 §8). Aggregates only; centres within the actor's area.
pub async fn measures(db: &Db, actor: &Actor, month: NaiveDate) -> Result<Vec<CentreMeasures>, ServiceError> {
    let actor = actor.clone();
    db.read(move |c| {
        if !(actor.may(Action::Refer) || actor.may(Action::ReadRecord) || actor.may(Action::Administer)) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "referral_measures",
                ..AuditTarget::default()
            }));
        }
        let start = month.with_day0(0).unwrap_or(month);
        let next = start
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(start + Duration::days(31));
        // The month in China time, as stored UTC.
        let from = start.and_time(chrono::NaiveTime::MIN) - Duration::hours(8);
        let to = next.and_time(chrono::NaiveTime::MIN) - Duration::hours(8);
        let events = repo::logged_events(c, from, to)?;
        let dir = crate::facility::repo::all(c)?;
        let month_key = start.format("%Y-%m").to_string();
        // Aggregates are not patient data: a township sees its county's centres.
        let area = match &actor.scope {
            crate::auth::model::Scope::Township(_) => actor.facility.jurisdiction.as_str(),
            crate::auth::model::Scope::Area(p) => p.as_str(),
        };
        Ok(model::centre_measures(&events)
            .into_iter()
            .filter(|m| m.month == month_key)
            .filter_map(|m| {
                let f = dir.iter().find(|f| f.id == m.facility_id)?;
                (actor.may(Action::Administer) || f.jurisdiction.starts_with(area)).then(|| CentreMeasures {
                    facility_name: f.name.clone(),
                    m,
                })
            })
            .collect())
    })
    .await
}
