//! `GET /v1/policy/explain?customer=C&action=A`: the running gateway's
//! permission decision for one customer and one call, with the deciding
//! statement (file, line, index) and every attached statement — the same
//! answer as `tollgate policy explain --json`.
//!
//! Optional query parameters set the condition context: `version` (RPC
//! `Version`), `source_ip`, `region`, `frontend=true`, `at` (RFC 3339).

use http::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AdminError, AdminRequest, AdminResult};
use crate::authz::explain::Query;
use crate::proxy::Gateway;

/// The handler.
pub fn explain(gateway: &Gateway, req: &AdminRequest) -> AdminResult {
    let required = |name: &str| {
        req.query(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AdminError::bad_request(format!("query parameter `{name}` is required")))
    };
    let customer = required("customer")?;
    let action = required("action")?;
    let source_ip = req
        .query("source_ip")
        .map(|s| {
            s.parse().map_err(|_| {
                AdminError::bad_request(format!("`source_ip`: `{s}` is not an IP address"))
            })
        })
        .transpose()?;
    let at = req
        .query("at")
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| AdminError::bad_request(format!("`at`: `{s}` is not RFC 3339")))
        })
        .transpose()?;
    let frontend = match req.query("frontend") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "`frontend`: `{other}` is not true or false"
            )));
        }
    };
    let q = Query {
        customer,
        action,
        version: req.query("version"),
        source_ip,
        region: req.query("region"),
        frontend,
        at,
    };
    let x = gateway.authz().explain(&q).map_err(|m| {
        if m.starts_with("unknown customer") {
            AdminError::not_found(m)
        } else {
            AdminError::bad_request(m)
        }
    })?;
    let value = serde_json::to_value(&x).map_err(|e| AdminError::internal(e.to_string()))?;
    Ok((StatusCode::OK, value))
}
