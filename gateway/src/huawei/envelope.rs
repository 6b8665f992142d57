//! Huawei's error envelope: the one place an [`Error`] becomes bytes in
//! Huawei's format (reference: huawei-bss.md §3).
//!
//! Body `{"error_code":"CBC.0151","error_msg":"..."}` with the error's HTTP
//! status; the request id travels in the `X-Request-Id` response header, not
//! in the body.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::Body;
use crate::error::Error;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `CBC.0151`, "access denied", HTTP 403: what BSS answers a caller whose
/// account or IAM user lacks the API's permission code (every BSS customer
/// API lists it).
pub const ACCESS_DENIED: &str = "CBC.0151";

/// The HTTP status of [`ACCESS_DENIED`].
pub const ACCESS_DENIED_STATUS: StatusCode = StatusCode::FORBIDDEN;

/// The JSON error body for `err`. API Gateway's own refusals (`APIG.*`:
/// signature, unknown AK, no such API) also carry `request_id` in the body,
/// as APIG writes them; BSS's (`CBC.*`) do not.
pub fn error_body(err: &Error, request_id: &str) -> Value {
    if err.code.starts_with("APIG.") {
        json!({
            "error_code": err.code,
            "error_msg": err.message,
            "request_id": request_id,
        })
    } else {
        json!({
            "error_code": err.code,
            "error_msg": err.message,
        })
    }
}

/// The complete error answer for `err`.
pub fn error_response(err: &Error, request_id: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(&error_body(err, request_id)).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::new(Bytes::from(bytes)));
    *resp.status_mut() = err.status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn access_denied_is_cbc_0151_with_403_and_the_request_id_header() {
        let err = Error::customer(
            ACCESS_DENIED_STATUS,
            ACCESS_DENIED,
            "Access denied. The permission bss:order:view is required.",
            "permission",
        );
        let resp = error_response(&err, "b1d0c2a4-0000-4000-8000-000000000001");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            resp.headers()[REQUEST_ID_HEADER],
            "b1d0c2a4-0000-4000-8000-000000000001"
        );
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap_or_default()
                .starts_with("application/json")
        );
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            v,
            json!({
                "error_code": "CBC.0151",
                "error_msg": "Access denied. The permission bss:order:view is required."
            })
        );
    }
}
