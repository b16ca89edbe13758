//! The token the dashboard sends, kept in the tab's `sessionStorage` (gone when the tab
//! closes): as `Authorization: Bearer` on every HTTP call and in the WebSocket's first
//! frame. A 401 from any call is reported to the one handler the connection hook sets,
//! which makes the dashboard show its login form.

use super::ApiError;
use gloo_net::http::Request;
use std::cell::RefCell;
use yew::Callback;

/// The `sessionStorage` key holding the token.
pub const STORAGE_KEY: &str = "cortex-token";

thread_local! {
    static ON_UNAUTHORIZED: RefCell<Option<Callback<String>>> = const { RefCell::new(None) };
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The stored token, if any.
pub fn token() -> Option<String> {
    storage()?
        .get_item(STORAGE_KEY)
        .ok()
        .flatten()
        .filter(|t| !t.trim().is_empty())
}

/// Keeps `token` for this tab; whether it could be stored.
pub fn store(token: &str) -> bool {
    storage().is_some_and(|s| s.set_item(STORAGE_KEY, token.trim()).is_ok())
}

/// Forgets the stored token.
pub fn forget() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(STORAGE_KEY);
    }
}

/// `Bearer <token>` for the `Authorization` header, if a token is stored.
pub fn bearer() -> Option<String> {
    token().map(|t| format!("Bearer {t}"))
}

/// Sets who hears about a 401 (one handler; the latest wins).
pub fn on_unauthorized(handler: Callback<String>) {
    ON_UNAUTHORIZED.with(|h| *h.borrow_mut() = Some(handler));
}

/// Tells the handler that the relay answered 401 (`why`).
pub(super) fn unauthorized(why: String) {
    let handler = ON_UNAUTHORIZED.with(|h| h.borrow().clone());
    if let Some(handler) = handler {
        handler.emit(why);
    }
}

/// Whether the relay takes `token`: `GET /api/v1/agents` with it (any role may read).
/// `Err` with code `unauthorized` when refused; a relay that answers otherwise (even
/// 503, Redis down) took the token.
pub async fn check(token: &str) -> Result<(), ApiError> {
    let response = Request::get("/api/v1/agents")
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send()
        .await
        .map_err(ApiError::network)?;
    if response.status() == 401 {
        return Err(ApiError {
            code: "unauthorized".into(),
            message: "the relay refused this token".into(),
        });
    }
    Ok(())
}
