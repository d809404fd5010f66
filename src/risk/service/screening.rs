//! Screening at booking (附件1): the form and the screening record; a positive screen asks for
//! grading at a 二级以上 facility within two weeks.

use serde::Serialize;

use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::ServiceError;
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::pregnancy::service::pregnancy_for;
use crate::risk::model::{
    Facts, SCREEN_FOLLOW_UP_DAYS, ScreeningFinding, ScreeningItem, ScreeningRecord, screen as screen_facts,
    screening_table,
};
use crate::risk::repo;
use crate::storage::Db;

use super::facts::{known_facts, known_facts_dated, sources_of};
use super::shared::{config_error, pregnancy_target, row_scope};

/// The screening form: the table, what data already shows.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningForm {
    pub pregnancy_id: String,
    pub person: PersonSummary,
    pub items: Vec<ScreeningItem>,
    pub facts: Facts,
    pub found: Vec<ScreeningFinding>,
    pub latest: Option<ScreeningRecord>,
    /// Where each pre-filled value came from (visit, result, pre-pregnancy screening).
    pub sources: Vec<super::facts::FactSource>,
    pub prepregnancy: Option<super::facts::PrepregnancyNote>,
}

pub async fn screening_form(db: &Db, actor: &Actor, pregnancy_id: String) -> Result<ScreeningForm, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let p = pregnancy_for(c, &actor2, Action::Screen, &pregnancy_id)?;
        let person = person_for(c, &actor2, Action::ReadRecord, &p.person_id)?;
        record(
            c,
            &actor2,
            "read",
            pregnancy_target(&p, "pregnancy", None),
            "risk screening form",
        )?;
        let (facts, dated) = known_facts_dated(c, &p, &person)?;
        let (sources, prepregnancy) = sources_of(c, &p, &dated)?;
        let table = screening_table().map_err(config_error)?;
        let found = screen_facts(table, &facts, &[]).map_err(|e| ServiceError::invalid("facts", "facts", e))?;
        Ok(ScreeningForm {
            pregnancy_id: p.id.clone(),
            person: PersonSummary::of(&person, today_china()),
            items: table.items.clone(),
            facts,
            found,
            latest: repo::latest_screening(c, &p.id)?,
            sources,
            prepregnancy,
        })
    })
    .await
}

/// Screen at booking (附件1): positive if any item; a positive woman is marked for grading at a
/// 二级以上 facility and her township gets a follow-up due in two weeks.
pub async fn screen(
    db: &Db,
    actor: &Actor,
    pregnancy_id: String,
    ticked: Vec<String>,
) -> Result<ScreeningRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let p = pregnancy_for(c, actor, Action::Screen, &pregnancy_id)?;
        let person = person_for(c, actor, Action::ReadRecord, &p.person_id)?;
        let facts = known_facts(c, &p, &person)?;
        let table = screening_table().map_err(config_error)?;
        let items = screen_facts(table, &facts, &ticked).map_err(|e| ServiceError::invalid("items", "screening", e))?;
        let positive = !items.is_empty();
        let today = today_china();
        let s = ScreeningRecord {
            id: new_id(),
            pregnancy_id: p.id.clone(),
            positive,
            items,
            screened_by: actor.name.clone(),
            facility_id: actor.facility.id.clone(),
            follow_up_due: positive.then(|| today + chrono::Days::new(SCREEN_FOLLOW_UP_DAYS)),
            graded_at: None,
            created_at: now_utc(),
        };
        repo::insert_screening(c, &s, &row_scope(&p))?;
        record(
            c,
            actor,
            "create",
            pregnancy_target(&p, "risk_screening", Some(&s.id)),
            if positive { "screen positive" } else { "screen negative" },
        )?;
        Ok(s)
    })
    .await
}
