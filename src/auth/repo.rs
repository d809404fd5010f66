//! Users, sessions, tokens and login throttling.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::storage::AnyConnection;
use crate::storage::schema::{access_grants, api_tokens, login_throttle, sessions, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub facility_id: String,
    pub active: bool,
}

pub fn insert_user(conn: &mut AnyConnection, u: &UserRow, now: NaiveDateTime) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(&u.id),
            users::username.eq(&u.username),
            users::display_name.eq(&u.display_name),
            users::password_hash.eq(&u.password_hash),
            users::role.eq(&u.role),
            users::facility_id.eq(&u.facility_id),
            users::active.eq(u.active),
            users::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn user_by_username(conn: &mut AnyConnection, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn user_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn users_all(conn: &mut AnyConnection) -> QueryResult<Vec<UserRow>> {
    users::table
        .order(users::username)
        .select(UserRow::as_select())
        .load(conn)
}

pub fn throttle(conn: &mut AnyConnection, username: &str) -> QueryResult<Option<(i32, Option<NaiveDateTime>)>> {
    login_throttle::table
        .find(username)
        .select((login_throttle::failures, login_throttle::locked_until))
        .first(conn)
        .optional()
}

/// Whether a throttle key is locked now.
pub fn is_locked(conn: &mut AnyConnection, key: &str, now: NaiveDateTime) -> QueryResult<bool> {
    Ok(throttle(conn, key)?
        .and_then(|(_, until)| until)
        .is_some_and(|until| until > now))
}

/// Count one attempt for a key; returns true when the key is locked (the attempt is refused).
/// The count is incremented in place (`failures = failures + 1`, a row lock on PostgreSQL), so
/// concurrent attempts — also from several instances — all count. Reaching `max` locks the key
/// for `lockout` and restarts the count.
pub fn count_attempt(
    conn: &mut AnyConnection,
    key: &str,
    now: NaiveDateTime,
    max: i32,
    lockout: chrono::Duration,
) -> QueryResult<bool> {
    if is_locked(conn, key, now)? {
        return Ok(true);
    }
    let n = diesel::update(login_throttle::table.find(key))
        .set(login_throttle::failures.eq(login_throttle::failures + 1))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(login_throttle::table)
            .values((
                login_throttle::username.eq(key),
                login_throttle::failures.eq(1),
                login_throttle::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    if let Some((failures, _)) = throttle(conn, key)?
        && failures >= max
    {
        diesel::update(login_throttle::table.find(key))
            .set((
                login_throttle::failures.eq(0),
                login_throttle::locked_until.eq(Some(now + lockout)),
            ))
            .execute(conn)?;
    }
    Ok(false)
}

pub fn clear_throttle(conn: &mut AnyConnection, username: &str) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(username))
        .execute(conn)
        .map(|_| ())
}

pub struct SessionRow {
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

pub fn insert_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: &str,
    csrf: &str,
    now: NaiveDateTime,
    client_addr: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(csrf),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::client_addr.eq(client_addr),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn session(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<SessionRow>> {
    Ok(sessions::table
        .find(token_hash)
        .select((
            sessions::user_id,
            sessions::csrf_token,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .first::<(String, String, NaiveDateTime, NaiveDateTime)>(conn)
        .optional()?
        .map(|(user_id, csrf_token, created_at, last_seen_at)| SessionRow {
            user_id,
            csrf_token,
            created_at,
            last_seen_at,
        }))
}

pub fn touch_session(conn: &mut AnyConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(token_hash))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

pub fn delete_session(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(token_hash))
        .execute(conn)
        .map(|_| ())
}

/// Remove sessions idle since before `idle_cutoff` or created before `absolute_cutoff`.
pub fn purge_sessions(
    conn: &mut AnyConnection,
    idle_cutoff: NaiveDateTime,
    absolute_cutoff: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::last_seen_at
                .lt(idle_cutoff)
                .or(sessions::created_at.lt(absolute_cutoff)),
        ),
    )
    .execute(conn)
}

pub fn insert_token(
    conn: &mut AnyConnection,
    id: &str,
    token_hash: &str,
    name: &str,
    facility_id: &str,
    role: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(id),
            api_tokens::token_hash.eq(token_hash),
            api_tokens::name.eq(name),
            api_tokens::facility_id.eq(facility_id),
            api_tokens::role.eq(role),
            api_tokens::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// (token id, name, facility id) of a live token.
pub fn token(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<(String, String, String, String)>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .select((
            api_tokens::id,
            api_tokens::name,
            api_tokens::facility_id,
            api_tokens::role,
        ))
        .first(conn)
        .optional()
}

/// A time-limited grant: the staff of `facility_id` may care for this person (and, when given, only
/// this pregnancy) until `expires_at` (issue 4 §6: access follows the patient on a referral).
pub struct Grant<'a> {
    pub id: &'a str,
    pub facility_id: &'a str,
    pub person_id: &'a str,
    pub pregnancy_id: Option<&'a str>,
    pub referral_id: Option<&'a str>,
    pub granted_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_grant(conn: &mut AnyConnection, g: &Grant) -> QueryResult<()> {
    diesel::insert_into(access_grants::table)
        .values((
            access_grants::id.eq(g.id),
            access_grants::facility_id.eq(g.facility_id),
            access_grants::person_id.eq(g.person_id),
            access_grants::pregnancy_id.eq(g.pregnancy_id),
            access_grants::referral_id.eq(g.referral_id),
            access_grants::granted_at.eq(g.granted_at),
            access_grants::expires_at.eq(g.expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Whether a live grant lets `facility_id` at this person — for a pregnancy, a grant for that
/// pregnancy or one for the person as a whole (a newborn's referral).
pub fn has_grant(
    conn: &mut AnyConnection,
    facility_id: &str,
    person_id: &str,
    pregnancy_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let mut q = access_grants::table
        .filter(access_grants::facility_id.eq(facility_id))
        .filter(access_grants::person_id.eq(person_id))
        .filter(access_grants::expires_at.gt(now))
        .into_boxed();
    if let Some(p) = pregnancy_id {
        q = q.filter(
            access_grants::pregnancy_id
                .eq(p)
                .or(access_grants::pregnancy_id.is_null()),
        );
    }
    Ok(q.select(access_grants::id).first::<String>(conn).optional()?.is_some())
}

/// End the grants a referral gave (the transfer was cancelled before arrival).
pub fn end_grants_for_referral(conn: &mut AnyConnection, referral_id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        access_grants::table
            .filter(access_grants::referral_id.eq(referral_id))
            .filter(access_grants::expires_at.gt(now)),
    )
    .set(access_grants::expires_at.eq(now))
    .execute(conn)
    .map(|_| ())
}
