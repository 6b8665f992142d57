//! Policy reload endpoints (see `crate::reload`):
//!
//! * `POST /v1/policy/reload`: builds and checks the files; 200 with the
//!   attempt (`applied` with the new version, or `unchanged`), 422 with
//!   every problem (`refused`; the running version stays);
//! * `POST /v1/policy/rollback`: back to the previous good version (200),
//!   409 when there is none;
//! * `GET /v1/policy/status`: the active version, when it was loaded, the
//!   previous one, the pricing modules and the history of attempts.

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use super::{AdminError, AdminResult};
use crate::reload::{Outcome, Reloader, Trigger};

/// `POST /v1/policy/reload`.
pub async fn reload(reloader: &Arc<Reloader>) -> (StatusCode, Value) {
    let attempt = reloader.reload(Trigger::Admin).await;
    let status = if attempt.outcome == Outcome::Refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, serde_json::to_value(attempt).unwrap_or(Value::Null))
}

/// `POST /v1/policy/rollback`.
pub async fn rollback(reloader: &Arc<Reloader>) -> AdminResult {
    match reloader.rollback().await {
        Some(attempt) => Ok((
            StatusCode::OK,
            serde_json::to_value(attempt).unwrap_or(Value::Null),
        )),
        None => Err(AdminError::conflict(
            "no previous policy version to roll back to",
        )),
    }
}
