//! Users, sessions, tokens and login throttling.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{ThrottleKind, ThrottleState};
use crate::storage::AnyConnection;
use crate::storage::schema::{access_grants, api_tokens, login_known_addresses, login_throttle, sessions, users};

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

/// A throttle key: its kind, the lower-cased typed username ('' for an address) and the client
/// address ('' for an account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    pub kind: ThrottleKind,
    pub username: String,
    pub address: String,
}

/// A stored run, for the administrators' list.
#[derive(Debug, Clone)]
pub struct ThrottleRow {
    pub key: ThrottleKey,
    pub state: ThrottleState,
}

type ThrottleTuple = (String, String, String, i32, NaiveDateTime, Option<NaiveDateTime>);

fn throttle_row(t: ThrottleTuple) -> Option<ThrottleRow> {
    let (kind, username, address, failures, last_failure_at, not_before) = t;
    Some(ThrottleRow {
        key: ThrottleKey {
            kind: ThrottleKind::parse(&kind)?,
            username,
            address,
        },
        state: ThrottleState {
            failures,
            last_failure_at,
            not_before,
        },
    })
}

fn by_key(key: &ThrottleKey) -> diesel::dsl::Find<login_throttle::table, (&'static str, &str, &str)> {
    login_throttle::table.find((key.kind.as_str(), key.username.as_str(), key.address.as_str()))
}

/// Read a key's run, first taking its row lock (a no-op update): on PostgreSQL another instance
/// counting the same key waits until this transaction commits, so concurrent attempts all count
/// and none slips past a wait. (SQLite has one writer for the whole database.)
pub fn lock_throttle(conn: &mut AnyConnection, key: &ThrottleKey) -> QueryResult<Option<ThrottleState>> {
    diesel::update(by_key(key))
        .set(login_throttle::failures.eq(login_throttle::failures))
        .execute(conn)?;
    by_key(key)
        .select((
            login_throttle::failures,
            login_throttle::last_failure_at,
            login_throttle::not_before,
        ))
        .first::<(i32, NaiveDateTime, Option<NaiveDateTime>)>(conn)
        .optional()
        .map(|r| {
            r.map(|(failures, last_failure_at, not_before)| ThrottleState {
                failures,
                last_failure_at,
                not_before,
            })
        })
}

/// Store a key's run (insert or replace). Two instances inserting the same new key at once: the
/// second insert fails on the primary key inside its own savepoint and is written as an update.
pub fn put_throttle(conn: &mut AnyConnection, key: &ThrottleKey, state: &ThrottleState) -> QueryResult<()> {
    let update = |c: &mut AnyConnection| {
        diesel::update(by_key(key))
            .set((
                login_throttle::failures.eq(state.failures),
                login_throttle::last_failure_at.eq(state.last_failure_at),
                login_throttle::not_before.eq(state.not_before),
            ))
            .execute(c)
    };
    if update(conn)? > 0 {
        return Ok(());
    }
    let inserted = crate::storage::savepoint(conn, |c| {
        diesel::insert_into(login_throttle::table)
            .values((
                login_throttle::kind.eq(key.kind.as_str()),
                login_throttle::username.eq(&key.username),
                login_throttle::address.eq(&key.address),
                login_throttle::failures.eq(state.failures),
                login_throttle::last_failure_at.eq(state.last_failure_at),
                login_throttle::not_before.eq(state.not_before),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            update(conn).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

pub fn delete_throttle(conn: &mut AnyConnection, key: &ThrottleKey) -> QueryResult<()> {
    diesel::delete(by_key(key)).execute(conn).map(|_| ())
}

/// Take back a failure counted ahead of a check that succeeded: the run goes back to `previous`
/// (its state before the attempt) when nothing else counted on it since (`counted` is still
/// there); otherwise only the one failure is taken back and any wait left to run out.
pub fn take_back_failure(
    conn: &mut AnyConnection,
    key: &ThrottleKey,
    counted: &ThrottleState,
    previous: Option<&ThrottleState>,
) -> QueryResult<()> {
    let unchanged = by_key(key)
        .filter(login_throttle::failures.eq(counted.failures))
        .filter(login_throttle::last_failure_at.eq(counted.last_failure_at));
    let restored = match previous {
        Some(p) => diesel::update(unchanged)
            .set((
                login_throttle::failures.eq(p.failures),
                login_throttle::last_failure_at.eq(p.last_failure_at),
                login_throttle::not_before.eq(p.not_before),
            ))
            .execute(conn)?,
        None => diesel::delete(unchanged).execute(conn)?,
    };
    if restored == 0 {
        diesel::update(by_key(key).filter(login_throttle::failures.gt(0)))
            .set(login_throttle::failures.eq(login_throttle::failures - 1))
            .execute(conn)?;
    }
    Ok(())
}

/// Runs with a failure since `since` or a wait after `now`, waiting ones first.
pub fn throttle_rows(
    conn: &mut AnyConnection,
    since: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<ThrottleRow>> {
    let rows: Vec<ThrottleTuple> = login_throttle::table
        .filter(
            login_throttle::last_failure_at
                .ge(since)
                .or(login_throttle::not_before.gt(now)),
        )
        .order((
            login_throttle::not_before.desc(),
            login_throttle::failures.desc(),
            login_throttle::username,
            login_throttle::address,
        ))
        .limit(limit)
        .select((
            login_throttle::kind,
            login_throttle::username,
            login_throttle::address,
            login_throttle::failures,
            login_throttle::last_failure_at,
            login_throttle::not_before,
        ))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(throttle_row).collect())
}

/// Remove the runs of a username (its account and every pair with it) and/or of an address (the
/// address and every pair from it); the removed rows are returned.
pub fn clear_throttles(
    conn: &mut AnyConnection,
    username: Option<&str>,
    address: Option<&str>,
) -> QueryResult<Vec<ThrottleRow>> {
    let mut q = login_throttle::table.into_boxed();
    match (username, address) {
        (Some(u), Some(a)) => {
            q = q.filter(
                login_throttle::kind
                    .ne(ThrottleKind::Address.as_str())
                    .and(login_throttle::username.eq(u))
                    .or(login_throttle::kind
                        .ne(ThrottleKind::Account.as_str())
                        .and(login_throttle::address.eq(a))),
            )
        }
        (Some(u), None) => {
            q = q.filter(
                login_throttle::kind
                    .ne(ThrottleKind::Address.as_str())
                    .and(login_throttle::username.eq(u)),
            )
        }
        (None, Some(a)) => {
            q = q.filter(
                login_throttle::kind
                    .ne(ThrottleKind::Account.as_str())
                    .and(login_throttle::address.eq(a)),
            )
        }
        (None, None) => return Ok(Vec::new()),
    }
    let rows: Vec<ThrottleTuple> = q
        .select((
            login_throttle::kind,
            login_throttle::username,
            login_throttle::address,
            login_throttle::failures,
            login_throttle::last_failure_at,
            login_throttle::not_before,
        ))
        .load(conn)?;
    let rows: Vec<ThrottleRow> = rows.into_iter().filter_map(throttle_row).collect();
    for r in &rows {
        delete_throttle(conn, &r.key)?;
    }
    Ok(rows)
}

/// Forget runs that ended (no failure since `ended_before`, no wait after `now`).
pub fn purge_throttles(
    conn: &mut AnyConnection,
    ended_before: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::last_failure_at.lt(ended_before))
            .filter(
                login_throttle::not_before
                    .is_null()
                    .or(login_throttle::not_before.le(now)),
            ),
    )
    .execute(conn)
}

/// Whether the user signed in from this address since `since`.
pub fn is_known_address(
    conn: &mut AnyConnection,
    user_id: &str,
    address: &str,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    Ok(login_known_addresses::table
        .filter(login_known_addresses::user_id.eq(user_id))
        .filter(login_known_addresses::address.eq(address))
        .filter(login_known_addresses::last_success_at.ge(since))
        .select(login_known_addresses::address)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Remember a successful login from an address; forget the user's addresses unused since `forget_before`.
pub fn remember_address(
    conn: &mut AnyConnection,
    user_id: &str,
    address: &str,
    now: NaiveDateTime,
    forget_before: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(
        login_known_addresses::table
            .filter(login_known_addresses::user_id.eq(user_id))
            .filter(login_known_addresses::last_success_at.lt(forget_before)),
    )
    .execute(conn)?;
    let updated = diesel::update(
        login_known_addresses::table
            .filter(login_known_addresses::user_id.eq(user_id))
            .filter(login_known_addresses::address.eq(address)),
    )
    .set(login_known_addresses::last_success_at.eq(now))
    .execute(conn)?;
    if updated > 0 {
        return Ok(());
    }
    let inserted = crate::storage::savepoint(conn, |c| {
        diesel::insert_into(login_known_addresses::table)
            .values((
                login_known_addresses::user_id.eq(user_id),
                login_known_addresses::address.eq(address),
                login_known_addresses::last_success_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) | Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(())
        }
        Err(e) => Err(e),
    }
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
