//! The HL7 message log (`/hl7/messages`): search, one message's tree beside its raw text, replay;
//! the outbound queue (`/hl7/outbox`): counts per destination, messages, replay of dead letters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::context::{PageCtx, PageError};
use super::pages::{CsrfForm, check_id, see_other};
use crate::hl7::service::{self as hl7, LogQuery};

type PageResult = Result<HttpResponse, PageError>;

pub async fn messages(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<LogQuery>) -> PageResult {
    let q = q.into_inner();
    let log = hl7::message_log(&st.db, &ctx.actor, q.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/hl7_messages",
        Some(&ctx),
        "接口消息",
        json!({"log": log, "q": {
            "sender": q.sender.unwrap_or_default(), "message_type": q.message_type.unwrap_or_default(),
            "control_id": q.control_id.unwrap_or_default(), "patient": q.patient.unwrap_or_default(),
            "status": q.status.unwrap_or_default()}}),
    )
}

#[derive(Deserialize)]
pub struct MessageQuery {
    replayed: Option<String>,
}

pub async fn message(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<MessageQuery>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let view = hl7::message_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let title = format!("消息 {}", view.message.control_id);
    st.page(
        StatusCode::OK,
        "pages/hl7_message",
        Some(&ctx),
        &title,
        json!({"view": view, "notice": q.replayed.as_ref().map(|_| "已重放，结果见下")}),
    )
}

pub async fn replay(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    hl7::replay(&st.db, &ctx.actor, id.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    Ok(see_other(&format!("/hl7/messages/{id}?replayed=1")))
}

// ------------------------------------------------------------------ the outbound queue

pub async fn outbox(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    q: web::Query<crate::hl7::outbox::QueueQuery>,
) -> PageResult {
    let q = q.into_inner();
    let queue = crate::hl7::outbox::queue(&st.db, &ctx.actor, q.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/hl7_outbox",
        Some(&ctx),
        "接口发出队列",
        json!({"queue": queue, "q": {
            "destination": q.destination.unwrap_or_default(), "status": q.status.unwrap_or_default()}}),
    )
}

pub async fn outbox_message(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<MessageQuery>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let view = crate::hl7::outbox::queue_message(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let title = format!("发出消息 {}", view.message.row.control_id);
    st.page(
        StatusCode::OK,
        "pages/hl7_outbox_message",
        Some(&ctx),
        &title,
        json!({"view": view, "notice": q.replayed.as_ref().map(|_| "已重新排队，将按顺序发送")}),
    )
}

pub async fn outbox_replay(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    crate::hl7::outbox::replay(&st.db, &ctx.actor, id.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    Ok(see_other(&format!("/hl7/outbox/{id}?replayed=1")))
}
