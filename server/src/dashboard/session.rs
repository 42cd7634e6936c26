//! Browser sessions. Signing in exchanges an enrollment code (a
//! supervisor's or an admin's, minted as for a laptop) for a credential: the
//! browser becomes an enrolled device, listed with the others and revoked
//! like them, whose credential lives in an HttpOnly, SameSite=Strict cookie
//! (Secure under TLS) and whose session ends at an expiry the store keeps.
//! Signing out revokes it. Every form that changes something carries a CSRF
//! token derived from the credential, checked on every POST.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use chrono::Utc;
use returnee_shared::DeviceId;
use returnee_shared::access::{Action, Principal, authorize};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{DashError, blocking, layout};
use crate::state::AppState;
use returnee_store::server::{Device, EnrollRefusal};

/// The cookie that holds a session's credential.
pub const SESSION_COOKIE: &str = "returnee_session";
/// The cookie that pairs with the sign-in form's token (before a session exists).
const SIGN_IN_COOKIE: &str = "returnee_sign_in";
/// The name a browser session is listed under among the devices.
pub const SESSION_DEVICE_NAME: &str = "browser session";

/// A signed-in person: the session's device and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Signed {
    pub device: Device,
    pub csrf: String,
    pub expires_at: chrono::DateTime<Utc>,
}

impl Signed {
    /// Refuses (403, with the policy's words) unless the session may do `action`.
    pub fn authorize(&self, action: Action) -> Result<&Device, DashError> {
        authorize(&self.device.principal(), &action).map_err(|d| DashError::Refused(d.message))?;
        Ok(&self.device)
    }

    /// Whether the session may do `action` (for what the pages offer).
    pub fn may(&self, action: Action) -> bool {
        authorize(&self.device.principal(), &action).is_ok()
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), DashError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(DashError::Refused(
                "the form did not carry this session's security token (CSRF); reload the page and submit it again".into(),
            ))
        }
    }
}

/// The CSRF token of the session whose credential is `token`: only a page
/// served to the holder of the cookie can know it.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("returnee-csrf\0{token}").as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn signed_in(req: &HttpRequest) -> Result<Signed, DashError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| DashError::Internal("state missing".into()))?;
    let token = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DashError::SignIn("Sign in to see the dashboard.".into()))?;
    let ended = || DashError::SignIn("This session has ended; sign in again.".into());
    let device = state.store.device_by_token(&token)?.ok_or_else(ended)?;
    if device.revoked_at.is_some() {
        return Err(ended());
    }
    // A laptop's credential is not a browser session.
    let session = state.store.session(device.id)?.ok_or_else(ended)?;
    if session.expires_at <= Utc::now() {
        return Err(DashError::SignIn(
            "This session has expired; sign in again.".into(),
        ));
    }
    super::devices::seen(&state.store, device.id);
    Ok(Signed {
        csrf: csrf_of(&token),
        expires_at: session.expires_at,
        device,
    })
}

impl FromRequest for Signed {
    type Error = DashError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed_in(req))
    }
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String, age: CookieAge) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/dashboard")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.tls.is_some())
        .max_age(age)
        .finish()
}

/// `GET /dashboard/sign-in`: the form, with a fresh token paired with a cookie.
pub async fn sign_in_page(state: web::Data<AppState>) -> HttpResponse {
    sign_in_form(&state, None, actix_web::http::StatusCode::OK)
}

/// The sign-in page (with a message when something went wrong).
pub fn sign_in_form(
    state: &AppState,
    message: Option<&str>,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    let token = uuid::Uuid::new_v4().simple().to_string();
    HttpResponse::build(status)
        .cookie(cookie(
            state,
            SIGN_IN_COOKIE,
            token.clone(),
            CookieAge::hours(1),
        ))
        .content_type("text/html; charset=utf-8")
        .body(layout::sign_in(&token, message).into_string())
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    code: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /dashboard/sign-in`: a supervisor's or admin's code becomes a session.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, DashError> {
    let paired = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_string());
    if paired.as_deref().is_none_or(|p| {
        !constant_time_eq(p.as_bytes(), form.csrf.as_bytes()) || form.csrf.is_empty()
    }) {
        return Err(DashError::Refused(
            "the sign-in form did not carry its security token (CSRF); reload the page and sign in again".into(),
        ));
    }
    let code = form.into_inner().code;
    let store = state.store.clone();
    let ttl = state.config.session_ttl;
    let outcome = blocking(move || {
        let Some(entry) = store.peek_code(&code)? else {
            return Ok(Err(
                "This code is not valid: it is mistyped, already used up, or was never issued. Ask an admin for a new code.".to_string(),
            ));
        };
        // The dashboard shows reports: whoever may not read them may not
        // sign in (field roles), by the one policy.
        let principal = Principal {
            device: DeviceId(uuid::Uuid::nil()),
            role: entry.role,
            sites: &entry.sites,
        };
        if let Err(denial) = authorize(&principal, &Action::ReadReports) {
            return Ok(Err(format!(
                "This code is for a {} device, which cannot sign in to the dashboard ({}). Use a supervisor's or admin's code.",
                entry.role, denial.message
            )));
        }
        let now = Utc::now();
        let id = DeviceId(uuid::Uuid::now_v7());
        match store.enroll(&code, id, SESSION_DEVICE_NAME, now)? {
            Ok((device, token)) => {
                store.start_session(device.id, now + ttl)?;
                Ok(Ok((device, token)))
            }
            Err(EnrollRefusal::UnknownCode) | Err(EnrollRefusal::AlreadyEnrolled) => Ok(Err(
                "This code is no longer valid; ask an admin for a new code.".to_string(),
            )),
        }
    })
    .await?;
    match outcome {
        Ok((device, token)) => {
            tracing::info!(device = %device.id, role = %device.role, "browser session started");
            Ok(HttpResponse::SeeOther()
                .cookie(cookie(
                    &state,
                    SESSION_COOKIE,
                    token,
                    CookieAge::seconds(ttl.num_seconds().max(1)),
                ))
                .cookie(cookie(
                    &state,
                    SIGN_IN_COOKIE,
                    String::new(),
                    CookieAge::ZERO,
                ))
                .insert_header(("Location", "/dashboard/"))
                .finish())
        }
        Err(message) => Ok(sign_in_form(
            &state,
            Some(&message),
            actix_web::http::StatusCode::UNAUTHORIZED,
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /dashboard/sign-out`: ends the session (its device is revoked).
pub async fn sign_out(
    state: web::Data<AppState>,
    who: Signed,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, DashError> {
    who.check_csrf(&form.csrf)?;
    let store = state.store.clone();
    let id = who.device.id;
    blocking(move || Ok(store.revoke(id, id, Utc::now())?)).await?;
    tracing::info!(device = %id, "browser session ended");
    Ok(HttpResponse::SeeOther()
        .cookie(cookie(
            &state,
            SESSION_COOKIE,
            String::new(),
            CookieAge::ZERO,
        ))
        .insert_header(("Location", "/dashboard/sign-in"))
        .finish())
}
