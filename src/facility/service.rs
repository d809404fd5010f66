//! Facility directory use cases. The directory itself is not patient data.

use super::model::{Facility, NewFacility};
use super::repo;
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
