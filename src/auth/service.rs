//! Staff accounts, logins, sessions and API tokens.
//!
//! Sessions live in the database (server-side logout, idle timeout, absolute lifetime):
//! the cookie holds 32 random bytes, the table only their SHA-256. Idle timeout 30 minutes,
//! re-authentication after 12 hours (RELIABILITY.md 23). Failed logins are throttled with growing
//! waits per (username, address), per address and per account, never locking the right password
//! out of an address its user signs in from ("login throttling" in `model`); the throttle treats a
//! username that does not exist like one that does, and an unknown user costs the same Argon2
//! verification as a known one (RELIABILITY.md 24).

use chrono::{Duration, NaiveDateTime};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::{
    self, Action, Actor, ActorKind, Admission, AttemptKeys, FAILURE_RUN_ENDS_AFTER, KNOWN_ADDRESS_FOR, LoginPolicy,
    Role, ThrottleKind, ThrottleState,
};
use super::password;
use super::repo::{self, ThrottleKey, ThrottleRow, UserRow};
use crate::audit::model::Outcome;
use crate::audit::service::{record_event, record_unauthenticated};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::facility::model::Facility;
use crate::facility::repo as facility_repo;
use crate::ids::{new_id, now_utc};
use crate::storage::{AnyConnection, Db};

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_LIFETIME: Duration = Duration::hours(12);

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ServiceError::Storage(crate::storage::StorageError::Panicked))
}

fn actor_of(user: &UserRow, facility: Facility) -> Result<Actor, ServiceError> {
    let role = Role::parse(&user.role).ok_or(ServiceError::Unauthenticated)?;
    Ok(Actor::new(
        ActorKind::User,
        Some(user.id.clone()),
        &user.username,
        &user.display_name,
        role,
        facility,
    ))
}

fn user_actor(conn: &mut AnyConnection, user_id: &str) -> Result<Option<Actor>, ServiceError> {
    let Some(user) = repo::user_by_id(conn, user_id)? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    let Some(facility) = facility_repo::by_id(conn, &user.facility_id)? else {
        return Ok(None);
    };
    Ok(Some(actor_of(&user, facility)?))
}

/// Whether a new account's password is judged by the password policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordCheck {
    /// Every real account (CLI `user add`, any form that sets a password).
    Policy,
    /// The demo seed only: its accounts share the public [`model::DEMO_PASSWORD`], which the
    /// policy refuses for any real account.
    DemoSeedBypass,
}

/// Create a staff account (CLI `user add`). The password must pass the password policy
/// ([`model::password_problems`], OWASP ASVS 4.0.3 §2.1); every refusal says why.
pub async fn add_user(
    db: &Db,
    username: &str,
    display_name: &str,
    role: &str,
    facility_code: &str,
    password: String,
) -> Result<String, ServiceError> {
    create_user(
        db,
        username,
        display_name,
        role,
        facility_code,
        password,
        PasswordCheck::Policy,
    )
    .await
}

/// Create a demo account with the published demo password, bypassing the password policy on
/// purpose (`serve --demo`, `demo-data`). Never for real accounts: the demo password is public.
pub(crate) async fn add_demo_user(
    db: &Db,
    username: &str,
    display_name: &str,
    role: &str,
    facility_code: &str,
) -> Result<String, ServiceError> {
    create_user(
        db,
        username,
        display_name,
        role,
        facility_code,
        model::DEMO_PASSWORD.to_string(),
        PasswordCheck::DemoSeedBypass,
    )
    .await
}

async fn create_user(
    db: &Db,
    username: &str,
    display_name: &str,
    role: &str,
    facility_code: &str,
    password: String,
    check: PasswordCheck,
) -> Result<String, ServiceError> {
    let username = username.trim().to_string();
    if username.is_empty()
        || username.len() > 64
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(ServiceError::invalid(
            "username",
            "username",
            "用户名须为 1–64 位字母、数字、. _ -",
        ));
    }
    let role = Role::parse(role).ok_or_else(|| {
        ServiceError::invalid(
            "role",
            "role",
            "未知角色（clinician、referral_coordinator、registrar、hospital_system、admin、auditor）",
        )
    })?;
    if check == PasswordCheck::Policy {
        let problems = model::password_problems(&password, &username);
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(
                problems
                    .into_iter()
                    .map(|p| FieldError::new("password", p.code(), p.message_zh()))
                    .collect(),
            ));
        }
    }
    let hash = blocking(move || password::hash(&password))
        .await?
        .map_err(|e| ServiceError::invalid("password", "password", e))?;
    let display_name = if display_name.trim().is_empty() {
        username.clone()
    } else {
        display_name.trim().to_string()
    };
    let facility_code = facility_code.to_string();
    db.write(move |c| {
        let facility = facility_repo::by_code(c, &facility_code)?.ok_or(ServiceError::NotFound("没有这个机构代码"))?;
        if repo::user_by_username(c, &username)?.is_some() {
            return Err(ServiceError::Conflict(format!("用户名 {username} 已存在")));
        }
        let id = new_id();
        repo::insert_user(
            c,
            &UserRow {
                id: id.clone(),
                username,
                display_name,
                password_hash: hash,
                role: role.as_str().to_string(),
                facility_id: facility.id,
                active: true,
            },
            now_utc(),
        )?;
        Ok(id)
    })
    .await
}

/// A successful login: the cookie token (shown once) and the actor.
pub struct Login {
    pub token: String,
    pub actor: Actor,
}

/// Why a login did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong username or password — the same answer when no such user exists. `retry_after_secs`:
    /// the wait this failure started for the next attempt from this address, if it started one.
    #[error("用户名或密码错误")]
    Refused { retry_after_secs: Option<i64> },
    /// A wait is running: the password was not checked.
    #[error("登录尝试次数过多，请 {retry_after_secs} 秒后再试")]
    Throttled { retry_after_secs: i64 },
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// The throttle keys of one attempt: the pair, the address, the account (in this order, the
/// order rows are locked in).
fn attempt_keys(typed_username: &str, address: &str) -> [ThrottleKey; 3] {
    let username = typed_username.to_lowercase();
    [
        ThrottleKey {
            kind: ThrottleKind::Pair,
            username: username.clone(),
            address: address.to_string(),
        },
        ThrottleKey {
            kind: ThrottleKind::Address,
            username: String::new(),
            address: address.to_string(),
        },
        ThrottleKey {
            kind: ThrottleKind::Account,
            username,
            address: String::new(),
        },
    ]
}

/// How a key is named in the audit log and on the administrators' page.
fn key_label(key: &ThrottleKey) -> String {
    match key.kind {
        ThrottleKind::Pair => format!("{}@{}", key.username, key.address),
        ThrottleKind::Address => key.address.clone(),
        ThrottleKind::Account => key.username.clone(),
    }
}

/// A failure counted ahead of checking the password.
struct Counted {
    key: ThrottleKey,
    /// The run before this attempt.
    before: Option<ThrottleState>,
    after: ThrottleState,
}

enum Gate {
    Wait(i64),
    Check {
        user: Option<UserRow>,
        counted: Vec<Counted>,
        /// The kinds whose waits hold back this client's next attempt.
        applicable: Vec<ThrottleKind>,
    },
}

fn session_target() -> AuditTarget {
    AuditTarget {
        entity_type: "session",
        ..Default::default()
    }
}

/// Check a username and password; on success open a new session (a new id every login).
///
/// Throttling (see "login throttling" in [`model`]): the attempt is counted as a failure of its
/// pair, address and account before the password is checked — so parallel guesses, also on other
/// instances, all count — unless a wait that applies is running, in which case it is refused
/// unchecked. A correct password takes the count back. The answers and their timing are the same
/// for a username that does not exist (its keys are counted alike; a dummy hash is verified).
pub async fn login(
    db: &Db,
    policy: LoginPolicy,
    username: &str,
    password: &str,
    client_addr: Option<String>,
) -> Result<Login, LoginError> {
    let username = username.trim().to_string();
    let now = now_utc();
    let address = client_addr.clone().unwrap_or_else(|| "unknown".to_string());
    let keys = attempt_keys(&username, &address);
    let gate = {
        let (u, addr, client) = (username.clone(), address.clone(), client_addr.clone());
        db.write(move |c| {
            let user = repo::user_by_username(c, &u)?;
            let known = match &user {
                Some(user) if user.active => repo::is_known_address(c, &user.id, &addr, now - KNOWN_ADDRESS_FOR)?,
                _ => false,
            };
            let states = keys
                .iter()
                .map(|k| repo::lock_throttle(c, k))
                .collect::<Result<Vec<_>, _>>()?;
            let attempt = AttemptKeys {
                pair: states[0].as_ref(),
                address: states[1].as_ref(),
                account: states[2].as_ref(),
            };
            match model::admit(&attempt, known, now) {
                Admission::Wait { until, because } => {
                    let secs = model::retry_after_secs(until, now);
                    record_unauthenticated(
                        c,
                        &u,
                        client.as_deref(),
                        "login",
                        Outcome::Failure,
                        session_target(),
                        &format!(
                            "throttled ({}): retry after {secs} s; password not checked",
                            because.as_str()
                        ),
                    )?;
                    Ok::<_, ServiceError>(Gate::Wait(secs))
                }
                Admission::Check => {
                    let applicable = attempt.applicable(known, now);
                    let mut counted = Vec::new();
                    for (key, state) in keys.into_iter().zip(&states) {
                        let after = model::count_failure(key.kind, state.as_ref(), now, policy.base_delay);
                        repo::put_throttle(c, &key, &after)?;
                        counted.push(Counted {
                            before: state.clone(),
                            key,
                            after,
                        });
                    }
                    Ok(Gate::Check {
                        user,
                        counted,
                        applicable,
                    })
                }
            }
        })
        .await?
    };
    let (user, counted, applicable) = match gate {
        Gate::Wait(secs) => return Err(LoginError::Throttled { retry_after_secs: secs }),
        Gate::Check {
            user,
            counted,
            applicable,
        } => (user, counted, applicable),
    };
    let phc = user
        .as_ref()
        .filter(|u| u.active)
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_string());
    let pw = password.to_string();
    let good = blocking(move || password::verify(&pw, &phc)).await? && user.as_ref().is_some_and(|u| u.active);
    match (good, user) {
        (true, Some(user)) => {
            let token = random_token();
            let th = token_hash(&token);
            let csrf = random_token();
            let addr = client_addr.clone();
            let actor = db
                .write(move |c| {
                    // The right password ends the pair's and the address's run; the account's
                    // failure counted ahead is taken back, its run goes on (see `model`).
                    for Counted { key, before, after } in &counted {
                        match key.kind {
                            ThrottleKind::Pair | ThrottleKind::Address => repo::delete_throttle(c, key)?,
                            ThrottleKind::Account => repo::take_back_failure(c, key, after, before.as_ref())?,
                        }
                    }
                    repo::remember_address(c, &user.id, &address, now, now - KNOWN_ADDRESS_FOR)?;
                    repo::purge_throttles(c, now - FAILURE_RUN_ENDS_AFTER, now)?;
                    repo::insert_session(c, &th, &user.id, &csrf, now, addr.as_deref())?;
                    repo::purge_sessions(c, now - IDLE_TIMEOUT, now - ABSOLUTE_LIFETIME)?;
                    let actor = user_actor(c, &user.id)?
                        .ok_or(ServiceError::Unauthenticated)?
                        .with_client_addr(addr);
                    let e = crate::audit::service::event(&actor, "login", Outcome::Success, &session_target(), "");
                    crate::audit::repo::append(c, e)?;
                    Ok::<_, ServiceError>(actor)
                })
                .await?;
            Ok(Login { token, actor })
        }
        _ => {
            let waits: Vec<(ThrottleKind, i64)> = counted
                .iter()
                .filter_map(|k| k.after.not_before.map(|t| (k.key.kind, (t - now).num_seconds())))
                .collect();
            let retry_after_secs = waits
                .iter()
                .filter(|(kind, _)| applicable.contains(kind))
                .map(|(_, secs)| *secs)
                .max();
            let mut detail = "wrong username or password".to_string();
            if !waits.is_empty() {
                let list: Vec<String> = waits.iter().map(|(k, s)| format!("{} {s} s", k.as_str())).collect();
                detail.push_str(&format!("; next attempt waits ({})", list.join(", ")));
            }
            let client = client_addr.clone();
            db.write(move |c| {
                record_unauthenticated(
                    c,
                    &username,
                    client.as_deref(),
                    "login",
                    Outcome::Failure,
                    session_target(),
                    &detail,
                )?;
                // A run that this failure took past its free failures starts to wait: audited once
                // per run (each further failure's wait is in the login rows' detail).
                for k in counted.iter().filter(|k| k.after.not_before.is_some()) {
                    let free = k.key.kind.rule().free_failures;
                    if k.before.as_ref().map_or(0, |s| s.live_failures(now)) <= free {
                        let wait = k.after.not_before.map_or(0, |t| (t - now).num_seconds());
                        record_unauthenticated(
                            c,
                            &username,
                            client.as_deref(),
                            "login_lock",
                            Outcome::Failure,
                            AuditTarget {
                                entity_type: "login_throttle",
                                entity_id: Some(format!("{}:{}", k.key.kind.as_str(), key_label(&k.key))),
                                person_id: None,
                            },
                            &format!(
                                "{} failed logins in a row ({}): the next attempt waits {wait} s, doubling with each further failure up to {} s",
                                k.after.failures,
                                k.key.kind.as_str(),
                                k.key.kind.rule().max_delay.num_seconds()
                            ),
                        )?;
                    }
                }
                Ok::<_, ServiceError>(())
            })
            .await?;
            Err(LoginError::Refused { retry_after_secs })
        }
    }
}

/// Who looks at or clears login waits: an administrator on the page, or the command line run on
/// the server (whoever can run it can reach the database anyway).
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Admin(&'a Actor),
    CommandLine,
}

/// A run of failed logins as the administrators see it.
#[derive(Debug, Clone, Serialize)]
pub struct LoginLock {
    pub kind: ThrottleKind,
    pub kind_label: &'static str,
    /// The username as typed, lower-cased ('' for an address).
    pub username: String,
    /// The client address ('' for an account).
    pub address: String,
    pub failures: i32,
    pub last_failure_at: NaiveDateTime,
    pub not_before: Option<NaiveDateTime>,
    /// Seconds the next attempt still has to wait (None: none).
    pub waiting_secs: Option<i64>,
}

fn login_lock(row: ThrottleRow, now: NaiveDateTime) -> LoginLock {
    LoginLock {
        kind: row.key.kind,
        kind_label: row.key.kind.label_zh(),
        waiting_secs: row.state.waiting_until(now).map(|t| model::retry_after_secs(t, now)),
        username: row.key.username,
        address: row.key.address,
        failures: row.state.failures,
        last_failure_at: row.state.last_failure_at,
        not_before: row.state.not_before,
    }
}

fn throttle_target(entity_id: Option<String>) -> AuditTarget {
    AuditTarget {
        entity_type: "login_throttle",
        entity_id,
        person_id: None,
    }
}

/// Run administrators' work on login waits through the writer, with its audit row in the same
/// commit; an actor who is not an administrator is refused (and that is audited).
async fn administer_throttle<T, F>(
    db: &Db,
    operator: Operator<'_>,
    action: &'static str,
    f: F,
) -> Result<T, ServiceError>
where
    F: FnOnce(&mut AnyConnection) -> Result<(T, AuditTarget, String), ServiceError> + Send + 'static,
    T: Send + 'static,
{
    match operator {
        Operator::Admin(actor) => {
            let a = actor.clone();
            crate::audit::service::guarded(db, actor, action, move |c| {
                if !a.may(Action::Administer) {
                    return Err(ServiceError::forbidden(throttle_target(None)));
                }
                let (value, target, detail) = f(c)?;
                crate::audit::service::record(c, &a, action, target, &detail)?;
                Ok(value)
            })
            .await
        }
        Operator::CommandLine => {
            db.write(move |c| {
                let (value, target, detail) = f(c)?;
                crate::audit::service::record_system(c, action, target, &format!("command line: {detail}"))?;
                Ok(value)
            })
            .await
        }
    }
}

/// The runs of failed logins of the last hour and the waits still running, waiting ones first
/// (the administrators' page, `mch-chain user locks`).
pub async fn login_locks(db: &Db, operator: Operator<'_>) -> Result<Vec<LoginLock>, ServiceError> {
    let now = now_utc();
    administer_throttle(db, operator, "search", move |c| {
        let rows = repo::throttle_rows(c, now - FAILURE_RUN_ENDS_AFTER, now, 500)?;
        let locks: Vec<LoginLock> = rows.into_iter().map(|r| login_lock(r, now)).collect();
        let detail = format!("login waits listed ({})", locks.len());
        Ok((locks, throttle_target(None), detail))
    })
    .await
}

/// Clear the failed-login runs and waits of a username (its account and every pair with it)
/// and/or of a client address (the address and every pair from it); returns what was cleared.
/// Audited as `login_unlock` with what was cleared.
pub async fn clear_login_locks(
    db: &Db,
    operator: Operator<'_>,
    username: Option<&str>,
    address: Option<&str>,
) -> Result<Vec<LoginLock>, ServiceError> {
    let username = username.map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty());
    let address = address.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
    if username.is_none() && address.is_none() {
        return Err(ServiceError::invalid(
            "username",
            "required",
            "请填写要解除的用户名或来源地址",
        ));
    }
    let now = now_utc();
    administer_throttle(db, operator, "login_unlock", move |c| {
        let rows = repo::clear_throttles(c, username.as_deref(), address.as_deref())?;
        let cleared: Vec<LoginLock> = rows.into_iter().map(|r| login_lock(r, now)).collect();
        let named: Vec<String> = [
            username.as_ref().map(|u| format!("username {u}")),
            address.as_ref().map(|a| format!("address {a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let list: Vec<String> = cleared
            .iter()
            .map(|l| {
                format!(
                    "{} {} ({} failures{})",
                    l.kind.as_str(),
                    match l.kind {
                        ThrottleKind::Pair => format!("{}@{}", l.username, l.address),
                        ThrottleKind::Address => l.address.clone(),
                        ThrottleKind::Account => l.username.clone(),
                    },
                    l.failures,
                    l.waiting_secs.map(|s| format!(", {s} s left")).unwrap_or_default()
                )
            })
            .collect();
        let detail = format!(
            "cleared the login waits of {}: {}",
            named.join(" and "),
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join("; ")
            }
        );
        Ok((cleared, throttle_target(Some(named.join(" "))), detail))
    })
    .await
}

/// The live session for a cookie token: its actor and CSRF token. Expired sessions are removed.
pub async fn session(
    db: &Db,
    token: &str,
    client_addr: Option<String>,
) -> Result<Option<(Actor, String)>, ServiceError> {
    let th = token_hash(token);
    let now = now_utc();
    let th2 = th.clone();
    let found = db
        .read(move |c| {
            let Some(s) = repo::session(c, &th2)? else {
                return Ok::<_, ServiceError>(None);
            };
            let actor = user_actor(c, &s.user_id)?;
            Ok(actor.map(|a| (a, s)))
        })
        .await?;
    let Some((actor, s)) = found else {
        return Ok(None);
    };
    if now - s.last_seen_at > IDLE_TIMEOUT || now - s.created_at > ABSOLUTE_LIFETIME {
        db.write(move |c| repo::delete_session(c, &th).map_err(ServiceError::from))
            .await?;
        return Ok(None);
    }
    // Refresh the idle clock at most once a minute, so reads do not each cost a write.
    if now - s.last_seen_at > Duration::minutes(1) {
        db.write(move |c| repo::touch_session(c, &th, now).map_err(ServiceError::from))
            .await?;
    }
    Ok(Some((actor.with_client_addr(client_addr), s.csrf_token)))
}

/// The session's actor if it is still live, without refreshing its idle clock: a page that only
/// listens (the live referral board) must not keep an unattended session open forever.
pub async fn session_peek(db: &Db, token: &str) -> Result<Option<Actor>, ServiceError> {
    let th = token_hash(token);
    let now = now_utc();
    db.read(move |c| {
        let Some(s) = repo::session(c, &th)? else {
            return Ok(None);
        };
        if now - s.last_seen_at > IDLE_TIMEOUT || now - s.created_at > ABSOLUTE_LIFETIME {
            return Ok(None);
        }
        user_actor(c, &s.user_id)
    })
    .await
}

/// End a session server-side.
pub async fn logout(db: &Db, token: &str, actor: &Actor) -> Result<(), ServiceError> {
    let th = token_hash(token);
    db.write(move |c| repo::delete_session(c, &th).map_err(ServiceError::from))
        .await?;
    record_event(db, actor, "logout", Outcome::Success, String::new()).await
}

/// Issue a bearer token for a hospital system bound to a facility; only its hash is kept.
pub async fn issue_token(db: &Db, facility_code: &str, name: &str) -> Result<String, ServiceError> {
    issue_token_for(db, facility_code, name, Role::HospitalSystem).await
}

/// Issue a bearer token with a role: a hospital system, or an auditor's reporting tool (FHIR
/// AuditEvent). Staff roles sign in on the pages instead.
pub async fn issue_token_for(db: &Db, facility_code: &str, name: &str, role: Role) -> Result<String, ServiceError> {
    if !matches!(role, Role::HospitalSystem | Role::Auditor) {
        return Err(ServiceError::invalid(
            "role",
            "token_role",
            "接口令牌只能用于医院接口 (hospital_system) 或审计 (auditor)",
        ));
    }
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::invalid("name", "name", "请填写接口名称（最多 100 字）"));
    }
    let token = random_token();
    let th = token_hash(&token);
    let code = facility_code.to_string();
    db.write(move |c| {
        let f = facility_repo::by_code(c, &code)?.ok_or(ServiceError::NotFound("没有这个机构代码"))?;
        repo::insert_token(c, &new_id(), &th, &name, &f.id, role.as_str(), now_utc())?;
        Ok::<_, ServiceError>(())
    })
    .await?;
    Ok(token)
}

/// The actor behind a bearer token.
pub async fn token_actor(db: &Db, token: &str, client_addr: Option<String>) -> Result<Option<Actor>, ServiceError> {
    let th = token_hash(token);
    db.read(move |c| {
        let Some((id, name, facility_id, role)) = repo::token(c, &th)? else {
            return Ok(None);
        };
        let Some(role) = Role::parse(&role) else {
            return Ok(None);
        };
        let Some(f) = facility_repo::by_id(c, &facility_id)? else {
            return Ok(None);
        };
        Ok(Some(
            Actor::new(ActorKind::ApiToken, Some(id), &name, &name, role, f).with_client_addr(client_addr),
        ))
    })
    .await
}

/// The system itself acting at a facility (CLI commands, demo seeding).
pub fn system_actor(facility: Facility, role: Role) -> Actor {
    Actor::new(ActorKind::System, None, "system", "系统", role, facility)
}
