//! Person queries.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::model::{PERSON_ENTITY, Person, PersonVersion, Sex};
use crate::ids::{new_id, now_utc};
use crate::storage::AnyConnection;
use crate::storage::history;
use crate::storage::schema::{card_reads, person_identifiers, persons};

#[derive(Queryable, Selectable)]
#[diesel(table_name = persons)]
struct PersonRow {
    id: String,
    name: String,
    sex: String,
    birth_date: NaiveDate,
    nation_code: Option<String>,
    id_number: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
    version: i32,
}

impl From<PersonRow> for Person {
    fn from(r: PersonRow) -> Person {
        Person {
            id: r.id,
            name: r.name,
            sex: Sex::parse(&r.sex).unwrap_or(Sex::Unknown),
            birth_date: r.birth_date,
            nation_code: r.nation_code,
            id_number: r.id_number,
            phone: r.phone,
            address: r.address,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            version: r.version,
        }
    }
}

/// Insert a new person with her other identifiers (system, value) and, for a FHIR create, the
/// document she came in as; keeps version 1.
pub fn insert(
    conn: &mut AnyConnection,
    p: &Person,
    facility_id: &str,
    identifiers: &[(String, String)],
    received: Option<&str>,
) -> QueryResult<()> {
    let now = now_utc();
    diesel::insert_into(persons::table)
        .values((
            persons::id.eq(&p.id),
            persons::name.eq(&p.name),
            persons::sex.eq(p.sex.as_str()),
            persons::birth_date.eq(p.birth_date),
            persons::nation_code.eq(&p.nation_code),
            persons::id_number.eq(&p.id_number),
            persons::phone.eq(&p.phone),
            persons::address.eq(&p.address),
            persons::jurisdiction.eq(&p.jurisdiction),
            persons::township_code.eq(&p.township_code),
            persons::created_by_facility_id.eq(facility_id),
            persons::created_at.eq(now),
            persons::updated_at.eq(now),
            persons::version.eq(p.version),
            persons::received.eq(received),
        ))
        .execute(conn)?;
    for (system, value) in identifiers {
        insert_identifier(conn, &p.id, system, value)?;
    }
    snapshot(conn, &p.id)
}

/// Keep the person as she now is as her current version (`record_versions`): called after every
/// change, in its transaction.
pub fn snapshot(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    let Some(v) = version_now(conn, id)? else { return Ok(()) };
    history::record(conn, PERSON_ENTITY, id, v.person.version, v.updated_at, &v)
}

/// The person's record as it is now, with what a version holds.
pub fn version_now(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<PersonVersion>> {
    let Some((row, received, updated_at)) = persons::table
        .find(id)
        .select((PersonRow::as_select(), persons::received, persons::updated_at))
        .first::<(PersonRow, Option<String>, chrono::NaiveDateTime)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    Ok(Some(PersonVersion {
        person: Person::from(row),
        identifiers: identifiers(conn, id)?,
        received,
        updated_at,
    }))
}

/// Bump a person's version after a change to what her record holds, and keep the new version.
fn bump(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::update(persons::table.find(id))
        .set((
            persons::updated_at.eq(now_utc()),
            persons::version.eq(persons::version + 1),
        ))
        .execute(conn)?;
    snapshot(conn, id)
}

/// Write back changed identity fields if nobody changed the person since `expected_version`;
/// `identifiers` replace her other identifiers. Returns false when another writer got there first.
pub fn update(
    conn: &mut AnyConnection,
    p: &Person,
    expected_version: i32,
    identifiers: &[(String, String)],
    received: Option<&str>,
) -> QueryResult<bool> {
    let n = diesel::update(persons::table.find(&p.id).filter(persons::version.eq(expected_version)))
        .set((
            persons::name.eq(&p.name),
            persons::sex.eq(p.sex.as_str()),
            persons::birth_date.eq(p.birth_date),
            persons::nation_code.eq(&p.nation_code),
            persons::id_number.eq(&p.id_number),
            persons::phone.eq(&p.phone),
            persons::address.eq(&p.address),
            persons::received.eq(received),
            persons::updated_at.eq(now_utc()),
            persons::version.eq(expected_version + 1),
        ))
        .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(person_identifiers::table.filter(person_identifiers::person_id.eq(&p.id))).execute(conn)?;
    for (system, value) in identifiers {
        insert_identifier(conn, &p.id, system, value)?;
    }
    snapshot(conn, &p.id)?;
    Ok(true)
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Person>> {
    Ok(persons::table
        .find(id)
        .select(PersonRow::as_select())
        .first(conn)
        .optional()?
        .map(Person::from))
}

/// Several persons at once (lists), in no particular order.
pub fn by_ids(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<Person>> {
    let mut out = Vec::with_capacity(ids.len());
    // Bounded IN lists (SQLite's variable limit is far above this).
    for chunk in ids.chunks(500) {
        out.extend(
            persons::table
                .filter(persons::id.eq_any(chunk))
                .select(PersonRow::as_select())
                .load(conn)?
                .into_iter()
                .map(Person::from),
        );
    }
    Ok(out)
}

pub fn by_id_number(conn: &mut AnyConnection, id_number: &str) -> QueryResult<Option<Person>> {
    Ok(persons::table
        .filter(persons::id_number.eq(id_number))
        .select(PersonRow::as_select())
        .first(conn)
        .optional()?
        .map(Person::from))
}

/// Same name and birth date (the near-duplicate rule), whatever their ID number.
pub fn by_name_and_birth_date(conn: &mut AnyConnection, name: &str, birth_date: NaiveDate) -> QueryResult<Vec<Person>> {
    Ok(persons::table
        .filter(persons::name.eq(name))
        .filter(persons::birth_date.eq(birth_date))
        .select(PersonRow::as_select())
        .limit(20)
        .load(conn)?
        .into_iter()
        .map(Person::from)
        .collect())
}

/// Persons whose name contains `name`, within a scope given as a township code or a prefix.
pub fn search_by_name(
    conn: &mut AnyConnection,
    name: &str,
    township: Option<&str>,
    prefix: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Person>> {
    let pattern = format!(
        "%{}%",
        name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let mut q = persons::table
        .filter(persons::name.like(pattern).escape('\\'))
        .into_boxed();
    if let Some(t) = township {
        q = q.filter(persons::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(persons::jurisdiction.like(format!("{p}%")));
    }
    Ok(q.order((persons::name, persons::birth_date))
        .limit(limit)
        .select(PersonRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Person::from)
        .collect())
}

pub fn identifiers(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Vec<(String, String)>> {
    person_identifiers::table
        .filter(person_identifiers::person_id.eq(person_id))
        .select((person_identifiers::system, person_identifiers::value))
        .order(person_identifiers::system)
        .load(conn)
}

pub fn holder_of(conn: &mut AnyConnection, system: &str, value: &str) -> QueryResult<Option<String>> {
    person_identifiers::table
        .filter(person_identifiers::system.eq(system))
        .filter(person_identifiers::value.eq(value))
        .select(person_identifiers::person_id)
        .first(conn)
        .optional()
}

/// Add an identifier to a person (a new version of her record).
pub fn add_identifier(conn: &mut AnyConnection, person_id: &str, system: &str, value: &str) -> QueryResult<()> {
    insert_identifier(conn, person_id, system, value)?;
    bump(conn, person_id)
}

fn insert_identifier(conn: &mut AnyConnection, person_id: &str, system: &str, value: &str) -> QueryResult<()> {
    diesel::insert_into(person_identifiers::table)
        .values((
            person_identifiers::id.eq(new_id()),
            person_identifiers::person_id.eq(person_id),
            person_identifiers::system.eq(system),
            person_identifiers::value.eq(value),
            person_identifiers::created_at.eq(now_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub struct CardReadRow<'a> {
    pub person_id: &'a str,
    pub card_number: &'a str,
    pub issuer_code: Option<&'a str>,
    pub facility_id: &'a str,
    pub read_by: &'a str,
    pub jurisdiction: &'a str,
}

pub fn insert_card_read(conn: &mut AnyConnection, r: CardReadRow<'_>) -> QueryResult<()> {
    diesel::insert_into(card_reads::table)
        .values((
            card_reads::id.eq(new_id()),
            card_reads::person_id.eq(r.person_id),
            card_reads::card_number.eq(r.card_number),
            card_reads::issuer_code.eq(r.issuer_code),
            card_reads::facility_id.eq(r.facility_id),
            card_reads::read_by.eq(r.read_by),
            card_reads::read_at.eq(now_utc()),
            card_reads::jurisdiction.eq(r.jurisdiction),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The persons whose cards were read at a facility since `since`, newest first.
pub fn recent_card_reads(
    conn: &mut AnyConnection,
    facility_id: &str,
    since: chrono::NaiveDateTime,
) -> QueryResult<Vec<(chrono::NaiveDateTime, Person)>> {
    Ok(card_reads::table
        .inner_join(persons::table)
        .filter(card_reads::facility_id.eq(facility_id))
        .filter(card_reads::read_at.ge(since))
        .order(card_reads::read_at.desc())
        .limit(20)
        .select((card_reads::read_at, PersonRow::as_select()))
        .load::<(chrono::NaiveDateTime, PersonRow)>(conn)?
        .into_iter()
        .map(|(at, p)| (at, Person::from(p)))
        .collect())
}

pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    persons::table.count().get_result(conn)
}

/// Move a person and every record that carries her area to another county (a hand-over between
/// jurisdictions), under the receiving township when it is known.
pub fn move_to_jurisdiction(
    conn: &mut AnyConnection,
    person_id: &str,
    jurisdiction: &str,
    township: Option<&str>,
) -> QueryResult<()> {
    use crate::storage::schema::{deliveries, pregnancies, risk_assessments, risk_cases, risk_screenings, visits};
    let none: Option<String> = township.map(str::to_string);
    diesel::update(persons::table.find(person_id))
        .set((
            persons::jurisdiction.eq(jurisdiction),
            persons::township_code.eq(&none),
            persons::updated_at.eq(now_utc()),
            persons::version.eq(persons::version + 1),
        ))
        .execute(conn)?;
    diesel::update(pregnancies::table.filter(pregnancies::person_id.eq(person_id)))
        .set((
            pregnancies::jurisdiction.eq(jurisdiction),
            pregnancies::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(visits::table.filter(visits::person_id.eq(person_id)))
        .set((visits::jurisdiction.eq(jurisdiction), visits::township_code.eq(&none)))
        .execute(conn)?;
    diesel::update(deliveries::table.filter(deliveries::person_id.eq(person_id)))
        .set((
            deliveries::jurisdiction.eq(jurisdiction),
            deliveries::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(risk_screenings::table.filter(risk_screenings::person_id.eq(person_id)))
        .set((
            risk_screenings::jurisdiction.eq(jurisdiction),
            risk_screenings::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(risk_assessments::table.filter(risk_assessments::person_id.eq(person_id)))
        .set((
            risk_assessments::jurisdiction.eq(jurisdiction),
            risk_assessments::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(risk_cases::table.filter(risk_cases::person_id.eq(person_id)))
        .set((
            risk_cases::jurisdiction.eq(jurisdiction),
            risk_cases::township_code.eq(&none),
        ))
        .execute(conn)?;
    use crate::storage::schema::{observations, referrals};
    diesel::update(observations::table.filter(observations::person_id.eq(person_id)))
        .set((
            observations::jurisdiction.eq(jurisdiction),
            observations::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(referrals::table.filter(referrals::person_id.eq(person_id)))
        .set((
            referrals::jurisdiction.eq(jurisdiction),
            referrals::township_code.eq(&none),
        ))
        .execute(conn)?;
    use crate::storage::schema::{conditions, immunizations};
    diesel::update(conditions::table.filter(conditions::person_id.eq(person_id)))
        .set((
            conditions::jurisdiction.eq(jurisdiction),
            conditions::township_code.eq(&none),
        ))
        .execute(conn)?;
    diesel::update(immunizations::table.filter(immunizations::person_id.eq(person_id)))
        .set((
            immunizations::jurisdiction.eq(jurisdiction),
            immunizations::township_code.eq(&none),
        ))
        .execute(conn)?;
    {
        use crate::storage::schema::{child_services, child_visits, children};
        diesel::update(children::table.filter(children::person_id.eq(person_id)))
            .set((
                children::jurisdiction.eq(jurisdiction),
                children::township_code.eq(&none),
            ))
            .execute(conn)?;
        diesel::update(child_visits::table.filter(child_visits::child_id.eq(person_id)))
            .set((
                child_visits::jurisdiction.eq(jurisdiction),
                child_visits::township_code.eq(&none),
            ))
            .execute(conn)?;
        diesel::update(child_services::table.filter(child_services::child_id.eq(person_id)))
            .set((
                child_services::jurisdiction.eq(jurisdiction),
                child_services::township_code.eq(&none),
            ))
            .execute(conn)?;
    }
    {
        // Her couples follow her (a couple lives where the wife's record lives), with their
        // follow-ups and registrations.
        use crate::storage::schema::{birth_registrations, couples, prepregnancy_followups};
        let ids: Vec<String> = couples::table
            .filter(couples::wife_id.eq(person_id))
            .select(couples::id)
            .load(conn)?;
        diesel::update(couples::table.filter(couples::id.eq_any(&ids)))
            .set((couples::jurisdiction.eq(jurisdiction), couples::township_code.eq(&none)))
            .execute(conn)?;
        diesel::update(prepregnancy_followups::table.filter(prepregnancy_followups::couple_id.eq_any(&ids)))
            .set((
                prepregnancy_followups::jurisdiction.eq(jurisdiction),
                prepregnancy_followups::township_code.eq(&none),
            ))
            .execute(conn)?;
        diesel::update(birth_registrations::table.filter(birth_registrations::couple_id.eq_any(&ids)))
            .set((
                birth_registrations::jurisdiction.eq(jurisdiction),
                birth_registrations::township_code.eq(&none),
            ))
            .execute(conn)?;
    }
    snapshot(conn, person_id)
}

/// Re-point everything that belongs to `from` to `to` (a merge); how many rows of each kind moved.
pub fn repoint(conn: &mut AnyConnection, from: &str, to: &str) -> QueryResult<Vec<(&'static str, usize)>> {
    use crate::storage::schema::{
        access_grants, conditions, deliveries, hl7_messages, immunizations, observations, pregnancies, referrals,
        risk_assessments, risk_cases, risk_screenings, visits,
    };
    macro_rules! move_rows {
        ($t:ident) => {
            diesel::update($t::table.filter($t::person_id.eq(from)))
                .set($t::person_id.eq(to))
                .execute(conn)?
        };
    }
    let moved = vec![
        ("identifiers", move_rows!(person_identifiers)),
        ("card_reads", move_rows!(card_reads)),
        ("pregnancies", move_rows!(pregnancies)),
        ("visits", move_rows!(visits)),
        ("deliveries", move_rows!(deliveries)),
        ("risk_screenings", move_rows!(risk_screenings)),
        ("risk_assessments", move_rows!(risk_assessments)),
        ("risk_cases", move_rows!(risk_cases)),
        ("observations", move_rows!(observations)),
        ("hl7_messages", move_rows!(hl7_messages)),
        ("referrals", move_rows!(referrals)),
        ("access_grants", move_rows!(access_grants)),
        ("conditions", move_rows!(conditions)),
        ("immunizations", move_rows!(immunizations)),
    ];
    // Her children follow her; a child's own record moves with her (the child feature refuses a
    // merge of two children's records before anything moves).
    use crate::storage::schema::{child_services, child_visits, children};
    let mut moved = moved;
    moved.push((
        "children_of",
        diesel::update(children::table.filter(children::mother_id.eq(from)))
            .set(children::mother_id.eq(to))
            .execute(conn)?,
    ));
    moved.push((
        "child_record",
        diesel::update(children::table.filter(children::person_id.eq(from)))
            .set(children::person_id.eq(to))
            .execute(conn)?,
    ));
    diesel::update(child_visits::table.filter(child_visits::child_id.eq(from)))
        .set(child_visits::child_id.eq(to))
        .execute(conn)?;
    diesel::update(child_services::table.filter(child_services::child_id.eq(from)))
        .set(child_services::child_id.eq(to))
        .execute(conn)?;
    // Her couples follow her (the couple feature refuses a merge of two current couples first).
    use crate::storage::schema::couples;
    moved.push((
        "couples",
        diesel::update(couples::table.filter(couples::wife_id.eq(from)))
            .set(couples::wife_id.eq(to))
            .execute(conn)?
            + diesel::update(couples::table.filter(couples::husband_id.eq(from)))
                .set(couples::husband_id.eq(to))
                .execute(conn)?,
    ));
    // The survivor's record now holds the merged person's identifiers: a new version of it.
    bump(conn, to)?;
    Ok(moved)
}

/// Remove a person whose records all moved to another (a merge keeps her in `person_merges`).
pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<usize> {
    history::forget(conn, PERSON_ENTITY, id)?;
    diesel::delete(persons::table.find(id)).execute(conn)
}

/// The sex of a newborn recorded after her record was made at delivery (set once, from unknown).
pub fn set_sex(conn: &mut AnyConnection, id: &str, sex: super::model::Sex) -> QueryResult<usize> {
    let n = diesel::update(persons::table.find(id))
        .set((
            persons::sex.eq(sex.as_str()),
            persons::updated_at.eq(now_utc()),
            persons::version.eq(persons::version + 1),
        ))
        .execute(conn)?;
    snapshot(conn, id)?;
    Ok(n)
}

/// A child's registered name replaces the one given at birth (a new version of her record).
pub fn set_name(conn: &mut AnyConnection, id: &str, name: &str) -> QueryResult<usize> {
    let n = diesel::update(persons::table.find(id))
        .set((
            persons::name.eq(name),
            persons::updated_at.eq(now_utc()),
            persons::version.eq(persons::version + 1),
        ))
        .execute(conn)?;
    snapshot(conn, id)?;
    Ok(n)
}

pub fn set_id_number(conn: &mut AnyConnection, id: &str, id_number: &str) -> QueryResult<usize> {
    let n = diesel::update(persons::table.find(id))
        .set((
            persons::id_number.eq(id_number),
            persons::updated_at.eq(now_utc()),
            persons::version.eq(persons::version + 1),
        ))
        .execute(conn)?;
    snapshot(conn, id)?;
    Ok(n)
}

/// One merge as stored.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct MergeRow {
    pub id: String,
    pub survivor_id: String,
    pub merged_id: String,
    pub merged_snapshot: String,
    pub moved: String,
    pub actor_name: String,
    pub source_message_id: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

pub fn insert_merge(conn: &mut AnyConnection, m: &MergeRow, facility_id: &str, jurisdiction: &str) -> QueryResult<()> {
    use crate::storage::schema::person_merges as pm;
    diesel::insert_into(pm::table)
        .values((
            pm::id.eq(&m.id),
            pm::survivor_id.eq(&m.survivor_id),
            pm::merged_id.eq(&m.merged_id),
            pm::merged_snapshot.eq(&m.merged_snapshot),
            pm::moved.eq(&m.moved),
            pm::actor_name.eq(&m.actor_name),
            pm::facility_id.eq(facility_id),
            pm::source_message_id.eq(&m.source_message_id),
            pm::jurisdiction.eq(jurisdiction),
            pm::created_at.eq(m.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The merges a person survived, newest first.
pub fn merges_into(conn: &mut AnyConnection, survivor_id: &str) -> QueryResult<Vec<MergeRow>> {
    use crate::storage::schema::person_merges as pm;
    pm::table
        .filter(pm::survivor_id.eq(survivor_id))
        .order(pm::created_at.desc())
        .select((
            pm::id,
            pm::survivor_id,
            pm::merged_id,
            pm::merged_snapshot,
            pm::moved,
            pm::actor_name,
            pm::source_message_id,
            pm::created_at,
        ))
        .load(conn)
}

/// The persons holding an identifier value (in one system, or any).
pub fn holders(conn: &mut AnyConnection, system: Option<&str>, value: &str) -> QueryResult<Vec<String>> {
    let mut q = person_identifiers::table
        .filter(person_identifiers::value.eq(value))
        .select(person_identifiers::person_id)
        .into_boxed();
    if let Some(s) = system {
        q = q.filter(person_identifiers::system.eq(s));
    }
    q.limit(100).load(conn)
}

/// How a name criterion matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// The name starts with the text (a family name finds the family).
    Prefix,
    Contains,
    Exact,
}

/// What [`find`] filters on (every field optional, combined with AND).
pub struct PersonFilter<'a> {
    pub ids: Option<Vec<String>>,
    pub name: Option<(NameMatch, String)>,
    pub birth_from: Option<NaiveDate>,
    pub birth_to: Option<NaiveDate>,
    pub sex: Option<&'a str>,
    pub updated: crate::ids::TimeRange,
    pub scope: Option<crate::auth::model::Scope>,
}

/// Persons matching a filter in creation order (ids are time-ordered), one page of them, and how
/// many match in all.
pub fn find(
    conn: &mut AnyConnection,
    f: &PersonFilter<'_>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Person>, i64)> {
    let build = || {
        let mut q = persons::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(persons::id.eq_any(ids.clone()));
        }
        if let Some((how, n)) = &f.name {
            let escaped = n.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q = match how {
                NameMatch::Exact => q.filter(persons::name.eq(n.clone())),
                NameMatch::Prefix => q.filter(persons::name.like(format!("{escaped}%")).escape('\\')),
                NameMatch::Contains => q.filter(persons::name.like(format!("%{escaped}%")).escape('\\')),
            };
        }
        if let Some(d) = f.birth_from {
            q = q.filter(persons::birth_date.ge(d));
        }
        if let Some(d) = f.birth_to {
            q = q.filter(persons::birth_date.lt(d));
        }
        if let Some(s) = f.sex {
            q = q.filter(persons::sex.eq(s.to_string()));
        }
        if let Some(t) = f.updated.from {
            q = q.filter(persons::updated_at.ge(t));
        }
        if let Some(t) = f.updated.to {
            q = q.filter(persons::updated_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(persons::township_code.eq(t.to_string())),
            Some((None, Some(p))) => q = q.filter(persons::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order(persons::id)
        .offset(offset)
        .limit(limit)
        .select(PersonRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(Person::from).collect(), total))
}
