//! Administrators' pages: the login waits (throttled and locked logins) and clearing them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::context::{PageCtx, PageError};
use super::pages::see_other;
use crate::auth::service::{self as auth_service, Operator};
use crate::error::ServiceError;

type PageResult = Result<HttpResponse, PageError>;

#[derive(Deserialize)]
pub struct LocksQuery {
    cleared: Option<usize>,
}

/// `/admin/login-locks`: every run of failed logins of the last hour and every running wait.
pub async fn login_locks(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<LocksQuery>) -> PageResult {
    let locks = auth_service::login_locks(&st.db, Operator::Admin(&ctx.actor))
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/login_locks",
        Some(&ctx),
        "登录限制（失败登录与等待）",
        json!({"locks": locks, "cleared": q.cleared, "error": null}),
    )
}

#[derive(Deserialize)]
pub struct ClearForm {
    csrf_token: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    address: String,
}

/// Clear the waits of a username and/or an address, then show the list again.
pub async fn clear_login_locks(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    form: web::Form<ClearForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let cleared = auth_service::clear_login_locks(
        &st.db,
        Operator::Admin(&ctx.actor),
        Some(form.username.as_str()),
        Some(form.address.as_str()),
    )
    .await;
    match cleared {
        Ok(cleared) => Ok(see_other(&format!("/admin/login-locks?cleared={}", cleared.len()))),
        Err(e @ ServiceError::Invalid(_)) => {
            let locks = auth_service::login_locks(&st.db, Operator::Admin(&ctx.actor))
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            st.page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "pages/login_locks",
                Some(&ctx),
                "登录限制（失败登录与等待）",
                json!({"locks": locks, "cleared": null, "error": e.to_string()}),
            )
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}
