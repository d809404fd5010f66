//! Facility queries.

use chrono::Utc;
use diesel::prelude::*;

use super::model::{DirectoryEntry, DirectoryUpdate, Facility, Kind, Level};
use crate::storage::AnyConnection;
use crate::storage::schema::facilities;

#[derive(Queryable, Selectable)]
#[diesel(table_name = facilities)]
struct FacilityRow {
    id: String,
    code: String,
    name: String,
    level: String,
    kind: String,
    jurisdiction: String,
    township_code: Option<String>,
    capabilities: String,
}

impl FacilityRow {
    fn into_model(self) -> Facility {
        Facility {
            id: self.id,
            code: self.code,
            name: self.name,
            // The CHECK constraints keep these columns to the known values.
            level: Level::parse(&self.level).unwrap_or(Level::Village),
            kind: Kind::parse(&self.kind).unwrap_or(Kind::Clinic),
            jurisdiction: self.jurisdiction,
            township_code: self.township_code,
            capabilities: self
                .capabilities
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

pub fn insert(conn: &mut AnyConnection, f: &Facility) -> QueryResult<()> {
    diesel::insert_into(facilities::table)
        .values((
            facilities::id.eq(&f.id),
            facilities::code.eq(&f.code),
            facilities::name.eq(&f.name),
            facilities::level.eq(f.level.as_str()),
            facilities::kind.eq(f.kind.as_str()),
            facilities::jurisdiction.eq(&f.jurisdiction),
            facilities::township_code.eq(&f.township_code),
            facilities::capabilities.eq(f.capabilities.join(",")),
            facilities::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<Facility>> {
    Ok(facilities::table
        .select(FacilityRow::as_select())
        .order((facilities::jurisdiction, facilities::code))
        .load(conn)?
        .into_iter()
        .map(FacilityRow::into_model)
        .collect())
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Facility>> {
    Ok(facilities::table
        .find(id)
        .select(FacilityRow::as_select())
        .first(conn)
        .optional()?
        .map(FacilityRow::into_model))
}

pub fn by_code(conn: &mut AnyConnection, code: &str) -> QueryResult<Option<Facility>> {
    Ok(facilities::table
        .filter(facilities::code.eq(code))
        .select(FacilityRow::as_select())
        .first(conn)
        .optional()?
        .map(FacilityRow::into_model))
}

pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    facilities::table.count().get_result(conn)
}

/// A facility row with its responsible maternal and neonatal centres and duty phone.
type DirectoryRow = (FacilityRow, Option<String>, Option<String>, Option<String>);

/// The directory with each facility's responsible centres.
pub fn directory(conn: &mut AnyConnection) -> QueryResult<Vec<DirectoryEntry>> {
    let rows: Vec<DirectoryRow> = facilities::table
        .select((
            FacilityRow::as_select(),
            facilities::maternal_centre_id,
            facilities::neonatal_centre_id,
            facilities::duty_phone,
        ))
        .order((facilities::jurisdiction, facilities::code))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(f, m, n, p)| DirectoryEntry {
            facility: f.into_model(),
            maternal_centre_id: m,
            neonatal_centre_id: n,
            duty_phone: p,
        })
        .collect())
}

pub fn update_directory(conn: &mut AnyConnection, id: &str, u: &DirectoryUpdate) -> QueryResult<bool> {
    diesel::update(facilities::table.find(id))
        .set((
            facilities::capabilities.eq(u.capabilities.join(",")),
            facilities::maternal_centre_id.eq(&u.maternal_centre_id),
            facilities::neonatal_centre_id.eq(&u.neonatal_centre_id),
            facilities::duty_phone.eq(&u.duty_phone),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// The directory with when each facility was added (its FHIR `meta.lastUpdated`).
pub fn directory_dated(conn: &mut AnyConnection) -> QueryResult<Vec<(DirectoryEntry, chrono::NaiveDateTime)>> {
    let created: std::collections::HashMap<String, chrono::NaiveDateTime> = facilities::table
        .select((facilities::id, facilities::created_at))
        .load::<(String, chrono::NaiveDateTime)>(conn)?
        .into_iter()
        .collect();
    Ok(directory(conn)?
        .into_iter()
        .filter_map(|e| created.get(&e.facility.id).copied().map(|t| (e, t)))
        .collect())
}
