//! Facility directory use cases. The directory itself is not patient data.

use super::model::{DirectoryEntry, DirectoryUpdate, Facility, NewFacility};
use super::repo;
use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::AuditTarget;
use crate::error::ServiceError;
use crate::ids::new_id;
use crate::storage::Db;

/// Add a facility (CLI `facility add`, demo seeding).
pub async fn add(db: &Db, new: NewFacility) -> Result<Facility, ServiceError> {
    let facility = new.validate(new_id())?;
    db.write(move |c| {
        if repo::by_code(c, &facility.code)?.is_some() {
            return Err(ServiceError::Conflict(format!("机构代码 {} 已存在", facility.code)));
        }
        repo::insert(c, &facility)?;
        Ok(facility)
    })
    .await
}

pub async fn list(db: &Db) -> Result<Vec<Facility>, ServiceError> {
    db.read(|c| Ok(repo::all(c)?)).await
}

pub async fn by_code(db: &Db, code: &str) -> Result<Facility, ServiceError> {
    let code = code.to_string();
    db.read(move |c| repo::by_code(c, &code)?.ok_or(ServiceError::NotFound("没有这个机构代码")))
        .await
}

/// The directory with the critical-care network (any signed-in staff may read it; not patient data).
pub async fn directory(db: &Db) -> Result<Vec<DirectoryEntry>, ServiceError> {
    db.read(|c| Ok(repo::directory(c)?)).await
}

/// An administrator edits a facility's capabilities, responsible centres and duty phone (audited).
pub async fn update_directory(
    db: &Db,
    actor: &Actor,
    facility_id: String,
    update: DirectoryUpdate,
) -> Result<DirectoryEntry, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let target = AuditTarget {
            entity_type: "facility",
            entity_id: Some(facility_id.clone()),
            person_id: None,
        };
        if !actor2.may(Action::Administer) {
            return Err(ServiceError::forbidden(target));
        }
        let all = repo::all(c)?;
        if !all.iter().any(|f| f.id == facility_id) {
            return Err(ServiceError::NotFound("没有这个机构"));
        }
        let update = update.validate(&facility_id, &all)?;
        repo::update_directory(c, &facility_id, &update)?;
        record(
            c,
            &actor2,
            "update",
            target,
            &format!(
                "directory: capabilities={} maternal_centre={} neonatal_centre={}",
                update.capabilities.join(","),
                update.maternal_centre_id.as_deref().unwrap_or("-"),
                update.neonatal_centre_id.as_deref().unwrap_or("-")
            ),
        )?;
        repo::directory(c)?
            .into_iter()
            .find(|e| e.facility.id == facility_id)
            .ok_or(ServiceError::NotFound("没有这个机构"))
    })
    .await
}

/// The directory for an interface (FHIR Organization and Location), with when each facility was
/// added: any authenticated caller may read it (not patient data, not audited).
pub fn directory_in(
    c: &mut crate::storage::AnyConnection,
    _actor: &Actor,
) -> Result<Vec<(DirectoryEntry, chrono::NaiveDateTime)>, ServiceError> {
    Ok(repo::directory_dated(c)?)
}
