//! Alibaba's answer envelopes: the one place an [`Error`] becomes bytes in
//! Alibaba's format, plus the success shapes the simulated cloud writes.
//!
//! Error body (JSON, or XML when the call said `Format=XML`):
//! `{"RequestId","HostId","Code","Message","Recommend"}` with the error's HTTP
//! status (reference: alibaba-bss.md §3.2).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::Body;
use crate::error::Error;

/// The JSON error body for `err`. A permission refusal also carries
/// `AccessDeniedDetail`, as Alibaba's RAM denials do (SDKs read it as an
/// object): `AuthAction`, `NoPermissionType` (`ImplicitDeny` /
/// `ExplicitDeny`), `PolicyType`, `AuthPrincipalType`,
/// `AuthPrincipalOwnerId`, `AuthPrincipalDisplayName`.
pub fn error_body(err: &Error, request_id: &str, host_id: &str) -> Value {
    let mut body = json!({
        "RequestId": request_id,
        "HostId": host_id,
        "Code": err.code,
        "Message": err.message,
        "Recommend": format!(
            "https://api.aliyun.com/troubleshoot?q={}&product=BssOpenApi&requestId={request_id}",
            err.code
        ),
    });
    if let (Some(d), Value::Object(map)) = (&err.denied, &mut body) {
        map.insert(
            "AccessDeniedDetail".into(),
            json!({
                "AuthAction": d.action,
                "NoPermissionType": if d.explicit { "ExplicitDeny" } else { "ImplicitDeny" },
                "PolicyType": "AccountLevelIdentityBasedPolicy",
                "AuthPrincipalType": "SubUser",
                "AuthPrincipalOwnerId": d.principal_uid,
                "AuthPrincipalDisplayName": d.principal_name,
            }),
        );
    }
    body
}

/// The complete error answer for `err`.
pub fn error_response(err: &Error, request_id: &str, host_id: &str, xml: bool) -> Response<Body> {
    let body = error_body(err, request_id, host_id);
    if xml {
        xml_response(err.status, "Error", &body)
    } else {
        json_response(err.status, &body)
    }
}

/// A JSON answer.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

/// An XML answer with `root` as the document element.
pub fn xml_response(status: StatusCode, root: &str, value: &Value) -> Response<Body> {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>");
    write_xml(&mut out, root, value);
    let mut resp = Response::new(Body::new(Bytes::from(out)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=utf-8"),
    );
    resp
}

/// Alibaba's JSON→XML mapping: objects are elements, arrays repeat their
/// parent element name (the JSON keeps the XML wrapper, e.g. `OrderList.Order[]`).
fn write_xml(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                write_xml(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            for (k, v) in map {
                write_xml(out, k, v);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        Value::String(s) => element(out, name, s),
        other => element(out, name, &other.to_string()),
    }
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// The BSS success envelope: `{"RequestId","Code","Message","Success":true,"Data"}`.
///
/// `code` is `"Success"` for product/order/price APIs and `"200"` for the
/// reseller quota and account APIs (the real service is not uniform).
pub fn bss_success(request_id: &str, code: &str, data: Option<Value>) -> Value {
    let mut map = Map::new();
    map.insert("RequestId".into(), Value::String(request_id.to_owned()));
    map.insert("Code".into(), Value::String(code.to_owned()));
    map.insert("Message".into(), Value::String("Successful!".into()));
    map.insert("Success".into(), Value::Bool(true));
    if let Some(data) = data {
        map.insert("Data".into(), data);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn error_envelope_has_the_provider_fields() {
        let err = Error::missing("OwnerId");
        let resp = error_response(&err, "REQ-1", "business.aliyuncs.com", false);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["Code"], "MissingOwnerId");
        assert_eq!(v["RequestId"], "REQ-1");
        assert_eq!(v["HostId"], "business.aliyuncs.com");
        assert!(
            v["Recommend"]
                .as_str()
                .unwrap_or_default()
                .contains("MissingOwnerId")
        );
    }

    #[test]
    fn a_permission_refusal_carries_the_access_denied_detail() {
        let err = Error::customer(
            StatusCode::FORBIDDEN,
            "Forbidden.RAM",
            "You are not authorized to do this action.",
            "permission",
        )
        .with_denied(crate::error::AccessDenied {
            action: "bssapi:QueryOrders".into(),
            explicit: false,
            principal_uid: "2000000000000003".into(),
            principal_name: "initech".into(),
        });
        let v = error_body(&err, "REQ-2", "tollgate");
        assert_eq!(v["Code"], "Forbidden.RAM");
        let d = &v["AccessDeniedDetail"];
        assert_eq!(d["AuthAction"], "bssapi:QueryOrders");
        assert_eq!(d["NoPermissionType"], "ImplicitDeny");
        assert_eq!(d["AuthPrincipalOwnerId"], "2000000000000003");
        assert_eq!(d["AuthPrincipalDisplayName"], "initech");
        // Other errors do not carry it.
        assert!(
            error_body(&Error::missing("X"), "R", "h")
                .get("AccessDeniedDetail")
                .is_none()
        );
    }

    #[tokio::test]
    async fn xml_envelope_escapes_and_repeats_arrays() {
        let v = json!({"A": [{"B": "x<y"}, {"B": "z"}], "N": 1});
        let resp = xml_response(StatusCode::OK, "R", &v);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let s = String::from_utf8(body.to_vec()).expect("utf8");
        assert!(
            s.ends_with("<R><A><B>x&lt;y</B></A><A><B>z</B></A><N>1</N></R>"),
            "{s}"
        );
    }
}
