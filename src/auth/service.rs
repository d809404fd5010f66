//! Staff accounts, logins, sessions and API tokens.
//!
//! Sessions live in the database (server-side logout, idle timeout, absolute lifetime):
//! the cookie holds 32 random bytes, the table only their SHA-256. Idle timeout 30 minutes,
//! re-authentication after 12 hours (RELIABILITY.md 23). Ten failed logins for one username lock
//! it for 15 minutes whether or not the user exists; an unknown user costs the same Argon2
//! verification as a known one (RELIABILITY.md 24).

use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::model::{self, Actor, ActorKind, Role};
use super::password;
use super::repo::{self, UserRow};
use crate::audit::model::{AuditEvent, Outcome};
use crate::audit::service::record_event;
use crate::error::{FieldError, ServiceError};
use crate::facility::model::Facility;
use crate::facility::repo as facility_repo;
use crate::ids::{new_id, now_utc};
use crate::storage::{AnyConnection, Db};

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_LIFETIME: Duration = Duration::hours(12);
pub const MAX_FAILURES: i32 = 10;
/// Failed logins from one client address, whatever the usernames, before it is locked.
pub const MAX_FAILURES_PER_ADDRESS: i32 = 30;
pub const LOCKOUT: Duration = Duration::minutes(15);

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

fn login_failure_event(username: &str, client_addr: Option<&str>, detail: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        at: now_utc(),
        actor_kind: "user".into(),
        actor_id: None,
        actor_name: username.chars().take(64).collect(),
        actor_role: "unknown".into(),
        facility_id: None,
        client_addr: client_addr.map(str::to_string),
        action: "login".into(),
        outcome: Outcome::Failure.as_str().into(),
        entity_type: "session".into(),
        entity_id: None,
        person_id: None,
        purpose: "operations".into(),
        detail: detail.into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Check a username and password; on success open a new session (a new id every login).
pub async fn login(
    db: &Db,
    username: &str,
    password: &str,
    client_addr: Option<String>,
) -> Result<Login, ServiceError> {
    let username = username.trim().to_string();
    let key = username.to_lowercase();
    let now = now_utc();
    let ip_key = format!("ip:{}", client_addr.as_deref().unwrap_or("unknown"));
    // Count the attempt against the username before verifying (so parallel guesses all count),
    // and refuse at once while the username or the client address is locked.
    let (user, locked) = {
        let (u, k, ik) = (username.clone(), key.clone(), ip_key.clone());
        db.write(move |c| {
            let user = repo::user_by_username(c, &u)?;
            let user_locked = repo::count_attempt(c, &k, now, MAX_FAILURES, LOCKOUT)?;
            let ip_locked = repo::is_locked(c, &ik, now)?;
            Ok::<_, ServiceError>((user, user_locked || ip_locked))
        })
        .await?
    };
    let phc = user
        .as_ref()
        .filter(|u| u.active)
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_string());
    let pw = password.to_string();
    let good = blocking(move || password::verify(&pw, &phc)).await? && user.as_ref().is_some_and(|u| u.active);
    if locked {
        let e = login_failure_event(&username, client_addr.as_deref(), "account temporarily locked");
        db.write(move |c| crate::audit::repo::append(c, e).map(|_| ()).map_err(ServiceError::from))
            .await?;
        return Err(ServiceError::TooManyAttempts(
            "登录失败次数过多，请 15 分钟后再试".into(),
        ));
    }
    match (good, user) {
        (true, Some(user)) => {
            let token = random_token();
            let th = token_hash(&token);
            let csrf = random_token();
            let addr = client_addr.clone();
            let actor = db
                .write(move |c| {
                    repo::clear_throttle(c, &key)?;
                    // A successful login from an address ends that address's failure run, so a
                    // clinic behind one NAT is not locked out by failures spread over months.
                    repo::clear_throttle(c, &ip_key)?;
                    repo::insert_session(c, &th, &user.id, &csrf, now, addr.as_deref())?;
                    repo::purge_sessions(c, now - IDLE_TIMEOUT, now - ABSOLUTE_LIFETIME)?;
                    let actor = user_actor(c, &user.id)?
                        .ok_or(ServiceError::Unauthenticated)?
                        .with_client_addr(addr);
                    let e = crate::audit::service::event(
                        &actor,
                        "login",
                        Outcome::Success,
                        &crate::error::AuditTarget {
                            entity_type: "session",
                            ..Default::default()
                        },
                        "",
                    );
                    crate::audit::repo::append(c, e)?;
                    Ok::<_, ServiceError>(actor)
                })
                .await?;
            Ok(Login { token, actor })
        }
        _ => {
            let e = login_failure_event(&username, client_addr.as_deref(), "wrong username or password");
            db.write(move |c| {
                // Failures from one address across usernames (password spraying) lock the address.
                repo::count_attempt(c, &ip_key, now, MAX_FAILURES_PER_ADDRESS, LOCKOUT)?;
                crate::audit::repo::append(c, e)?;
                Ok::<_, ServiceError>(())
            })
            .await?;
            Err(ServiceError::invalid("password", "login", "用户名或密码错误"))
        }
    }
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
