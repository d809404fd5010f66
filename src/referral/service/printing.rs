//! The printable 转诊单 / 回执 with a signed, expiring QR code that opens the live referral.

use chrono::{Duration, NaiveDateTime};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::audit::service::{guarded, record};
use crate::auth::model::Actor;
use crate::error::ServiceError;
use crate::ids::now_utc;
use crate::referral::repo;
use crate::storage::{AnyConnection, Db};

use super::access::{load_visible, referral_target};
use super::steps::view;
use super::views::{ReferralView, build_view};

/// A printed QR code opens the live referral for this long.
pub const QR_VALID_DAYS: i64 = 7;

pub(super) type HmacSha256 = Hmac<Sha256>;

pub(super) fn signing_key(c: &mut AnyConnection) -> Result<String, ServiceError> {
    use rand::RngCore;
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    Ok(repo::secret(c, "referral_qr", &hex::encode(fresh), now_utc())?)
}

pub(super) fn sign(key: &str, payload: &str) -> Result<String, ServiceError> {
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).map_err(|_| ServiceError::Conflict("签名密钥无效".into()))?;
    mac.update(payload.as_bytes());
    Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
}

/// A token for the printed form's QR code: the referral id, an expiry, an HMAC over both.
pub fn qr_token(c: &mut AnyConnection, referral_id: &str, now: NaiveDateTime) -> Result<String, ServiceError> {
    let expires = (now + Duration::days(QR_VALID_DAYS)).and_utc().timestamp();
    let payload = format!("{referral_id}.{expires}");
    let sig = sign(&signing_key(c)?, &payload)?;
    Ok(format!("{payload}.{sig}"))
}

/// Check a scanned token; the referral it names (the actor must still be allowed to see it).
pub async fn scan(db: &Db, actor: &Actor, token: String) -> Result<String, ServiceError> {
    let bad = || ServiceError::NotFound("二维码无效或已过期");
    let parts: Vec<&str> = token.split('.').collect();
    let [id, expires, sig] = parts.as_slice() else {
        return Err(bad());
    };
    if !crate::ids::is_id(id) || sig.len() != 32 {
        return Err(bad());
    }
    let expires: i64 = expires.parse().map_err(|_| bad())?;
    if expires < now_utc().and_utc().timestamp() {
        return Err(bad());
    }
    let (id, payload, sig) = (id.to_string(), format!("{id}.{expires}"), sig.to_string());
    let key = db.write(signing_key).await?;
    let expected = sign(&key, &payload)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sig.as_bytes())) {
        return Err(bad());
    }
    // Opening the referral checks access and audits the read.
    view(db, actor, id.clone()).await?;
    Ok(id)
}

/// The printable 转诊单 / 回执: the referral and a QR code (SVG) that opens it.
#[derive(Debug, Clone, Serialize)]
pub struct Printout {
    pub referral: ReferralView,
    pub qr_svg: String,
    pub scan_path: String,
    pub printed_at: NaiveDateTime,
}

pub async fn printout(db: &Db, actor: &Actor, id: String, base_url: String) -> Result<Printout, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        let r = load_visible(c, actor, &id)?;
        let now = now_utc();
        let token = qr_token(c, &r.lifecycle.id, now)?;
        let scan_path = format!("/referrals/scan/{token}");
        let qr = qrcode::QrCode::with_error_correction_level(
            format!("{base_url}{scan_path}").as_bytes(),
            qrcode::EcLevel::M,
        )
        .map_err(|_| ServiceError::Conflict("二维码生成失败".into()))?;
        let qr_svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build();
        record(c, actor, "print", referral_target(&r), "referral printout")?;
        Ok(Printout {
            referral: build_view(c, actor, r, now)?,
            qr_svg,
            scan_path,
            printed_at: now,
        })
    })
    .await
}
