//! The request path for Huawei Cloud BSS calls (paths `/v1.0/`, `/v2/`,
//! `/v3/`, `/v4/`), phase by phase with the same [`RequestCtx`]:
//!
//! ```text
//! read -> parse (huawei::call) -> authenticate (issued AK/SK, X-Sdk-Date window,
//!   X-Domain-Id) -> authorize (catalog permission codes) -> own-account path check
//!   -> budget (pay, auto-paid renewal: hold; unsubscribe: gate) -> re-sign with the
//!   credential the partner holds for the customer -> forward -> settle
//!   -> price (rating answers re-priced by the Wasm module) -> respond
//! ```
//! Every refusal leaves through [`Gateway::refuse_huawei`], in Huawei's
//! envelope (`huawei::envelope`).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;

use super::{Gateway, Phase, RequestCtx, read_body, with_request_id};
use crate::Body;
use crate::auth::Authenticated;
use crate::catalog::{HuaweiClass, Kind};
use crate::error::Error;
use crate::huawei::call::{APIG_NO_API, HuaweiCall, format_sdk_date};
use crate::huawei::keys::{HuaweiSide, HuaweiWho};
use crate::huawei::outbound::{OutboundCall, signed_request};
use crate::huawei::pricing::{self as hwpricing, PricedAnswer};
use crate::metrics::{RefusalLabels, RequestLabels, UpstreamLabels};
use crate::pricing::{CustomerInfo, LoadedModule};
use crate::upstream::Answer;

mod budget;

/// Product label of the Huawei upstream (metrics, logs).
const PRODUCT: &str = "huawei-bss";

/// Request headers a customer may send that are forwarded (and signed):
/// BSS reads the answer language from `X-Language`. Everything else about
/// the caller (its `Authorization`, `X-Sdk-Date`, `X-Security-Token`,
/// `X-Domain-Id`, `X-Project-Id`) stays here.
const FORWARDED_HEADERS: &[&str] = &["x-language"];

fn no_api() -> Error {
    Error::customer(
        StatusCode::NOT_FOUND,
        APIG_NO_API,
        "The API does not exist or has not been published in the environment",
        "no_route",
    )
}

/// What is known about the call's API from the catalog.
#[derive(Debug, Clone, Copy)]
struct Api {
    name: &'static str,
    kind: Option<Kind>,
}

impl Gateway {
    /// Answers one Huawei call end to end; never fails.
    pub(super) async fn handle_huawei(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let mut ctx = RequestCtx::new(peer);
        let resp = match self.huawei_proxy(&mut ctx, req).await {
            Ok(resp) => resp,
            Err(err) => self.refuse_huawei(&ctx, &err),
        };
        self.metrics
            .request_seconds
            .observe(ctx.started.elapsed().as_secs_f64());
        with_request_id(resp, &ctx.request_id)
    }

    async fn huawei_proxy(
        &self,
        ctx: &mut RequestCtx,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let side = self.huawei.as_ref().ok_or_else(no_api)?;
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, self.max_body)
            .await
            .map_err(|e| {
                if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::customer(e.status, "APIG.0201", e.message, "body_too_large")
                } else {
                    e
                }
            })?;

        ctx.phase = Phase::Parse;
        let call = HuaweiCall::parse(&parts, body)?;
        call.refuse_duplicate_headers(&parts.headers)?;
        ctx.key_id = Some(call.access_key_id().to_owned());
        let api = self.huawei_api(&call)?;
        ctx.action = Some(api.name.to_owned());

        ctx.phase = Phase::Authenticate;
        let who = side.authenticate(&call, time::OffsetDateTime::now_utc())?;
        ctx.who = Some(Authenticated {
            access_key_id: who.access_key_id.clone(),
            customer: who.customer.clone(),
            frontend: None,
        });

        ctx.phase = Phase::Authorize;
        let actx = crate::authz::context(&who.customer, false, ctx.peer, None);
        self.authz.check_huawei(
            &call.method,
            &call.path,
            actx,
            &self.metrics,
            &ctx.request_id,
        )?;
        own_account_only(&call, &who)?;
        if matches!(api.kind, Some(Kind::Purchase | Kind::Modify)) {
            side.once(&call, time::OffsetDateTime::now_utc())?;
        }

        ctx.phase = Phase::Reserve;
        let hold = self.huawei_reserve(ctx, side, &call, &who, api).await?;

        ctx.phase = Phase::Forward;
        let answer = self.huawei_forward(side, &call, &who).await;
        if let Some(ticket) = &hold {
            ctx.phase = Phase::Settle;
            self.huawei_settle(ctx, side, &who, ticket, &answer).await;
        }
        let mut answer = answer?;

        let rating = PricedAnswer::of(api.name);
        let module = match (
            rating,
            self.pricing.for_group(who.customer.group.as_deref()),
        ) {
            (Some(r), Some(m)) => {
                ctx.phase = Phase::Price;
                answer = self.huawei_reprice(ctx, m, r, &call, &who, answer)?;
                Some(m)
            }
            _ => None,
        };

        ctx.phase = Phase::Respond;
        let outcome = if answer.status.is_success() && !error_in_body(&answer) {
            "ok"
        } else {
            "provider_error"
        };
        self.count_huawei(ctx, outcome);
        tracing::info!(
            request_id = %ctx.request_id,
            action = api.name,
            customer = %who.customer.id,
            key = %who.access_key_id,
            product = PRODUCT,
            status = answer.status.as_u16(),
            elapsed_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "forwarded"
        );
        let mut resp = Response::new(Body::new(answer.body));
        *resp.status_mut() = answer.status;
        if let Some(ct) = answer.content_type {
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            resp.headers_mut()
                .insert(crate::huawei::envelope::REQUEST_ID_HEADER, v);
        }
        if let (Some(module), Some(_)) = (module, &ctx.quote) {
            resp.headers_mut()
                .insert(crate::pricing::MODULE_HEADER, module.header().clone());
        }
        Ok(resp)
    }

    /// The catalog's name and kind of the call; a path with dot segments
    /// is refused whatever the permission settings (it could resolve to a
    /// different, listed API further on).
    fn huawei_api(&self, call: &HuaweiCall) -> Result<Api, Error> {
        match self.authz.catalog().huawei(&call.method, &call.path) {
            HuaweiClass::Listed(e) => Ok(Api {
                name: catalog_label(&e.name),
                kind: Some(e.kind),
            }),
            // The seed's rule lets a customer read APIs outside the
            // permission table (BSS answers only about the customer's own
            // account, under the credential held for it); a state-changing
            // call the catalog does not know is never forwarded: it could
            // move money the budget never held.
            HuaweiClass::Unlisted if call.method != http::Method::GET => Err(no_api()),
            HuaweiClass::Unlisted => Ok(Api {
                name: "other",
                kind: None,
            }),
            HuaweiClass::Malformed => Err(no_api()),
        }
    }

    /// Re-signs with the credential the partner holds for the customer and
    /// forwards: the path, query and body byte for byte, `X-Domain-Id` the
    /// customer's own account, fresh `X-Sdk-Date`.
    async fn huawei_forward(
        &self,
        side: &HuaweiSide,
        call: &HuaweiCall,
        who: &HuaweiWho,
    ) -> Result<Answer, Error> {
        let key = side.held(&who.customer.id).ok_or_else(|| {
            Error::internal(format!(
                "no Huawei credential is held for customer {}",
                who.customer.id
            ))
        })?;
        let extra_headers = FORWARDED_HEADERS
            .iter()
            .filter_map(|h| call.header(h).map(|v| ((*h).to_owned(), v.to_owned())))
            .collect();
        let outbound = OutboundCall {
            method: call.method.clone(),
            raw_path: &call.raw_path,
            raw_query: &call.raw_query,
            domain_id: Some(&who.domain_id),
            extra_headers,
            content_type: call
                .header("content-type")
                .filter(|_| !call.body.is_empty()),
            body: call.body.clone(),
        };
        let req = signed_request(
            &outbound,
            &side.upstream.scheme,
            &side.upstream.authority,
            key,
            &format_sdk_date(time::OffsetDateTime::now_utc()),
        );
        let sent = Instant::now();
        let answer = self.forwarder.send(req, side.upstream.timeout).await;
        self.metrics
            .upstream_seconds
            .get_or_create(&UpstreamLabels {
                product: PRODUCT.to_owned(),
            })
            .observe(sent.elapsed().as_secs_f64());
        answer.map_err(huawei_upstream_error)
    }

    /// A rating or order answer at partner prices (see `huawei::pricing`).
    fn huawei_reprice(
        &self,
        ctx: &mut RequestCtx,
        module: &LoadedModule,
        rating: PricedAnswer,
        call: &HuaweiCall,
        who: &HuaweiWho,
        answer: Answer,
    ) -> Result<Answer, Error> {
        if !answer.status.is_success() || error_in_body(&answer) {
            return Ok(answer);
        }
        let mut body: Value = serde_json::from_slice(&answer.body).map_err(|_| {
            Error::pricing(
                StatusCode::BAD_GATEWAY,
                "CBC.0999",
                "The official price could not be read (the answer is not JSON); no partner price can be given.",
                "pricing_official_unreadable",
                true,
            )
        })?;
        let request: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        let order = hwpricing::order_from_rating(rating, &request, &body, customer_info(who))?;
        if order.lines.is_empty() {
            // Nothing priced (an empty order page): nothing to rewrite.
            return Ok(answer);
        }
        let priced = module
            .quote_metered(&order, &self.metrics)
            .map_err(|e| e.to_error(module.label()))?;
        hwpricing::rewrite(rating, &mut body, &priced.quote)?;
        ctx.quote = Some(priced.quote);
        Ok(Answer {
            status: answer.status,
            content_type: answer.content_type,
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        })
    }

    /// The one exit for Huawei errors: log, count, render in Huawei's envelope.
    fn refuse_huawei(&self, ctx: &RequestCtx, err: &Error) -> Response<Body> {
        self.metrics
            .refusals
            .get_or_create(&RefusalLabels { reason: err.reason })
            .inc();
        let outcome = match err.origin {
            crate::error::Origin::Customer => "refused",
            _ => "failed",
        };
        self.count_huawei(ctx, outcome);
        tracing::warn!(
            request_id = %ctx.request_id,
            provider = "huawei",
            phase = ctx.phase.as_str(),
            origin = err.origin.as_str(),
            code = %err.code,
            reason = err.reason,
            retryable = err.retryable,
            action = ctx.action.as_deref().unwrap_or(""),
            key = ctx.key_id.as_deref().unwrap_or(""),
            authenticated = ctx.who.is_some(),
            peer = %ctx.peer,
            "refused"
        );
        crate::huawei::envelope::error_response(err, &ctx.request_id)
    }

    fn count_huawei(&self, ctx: &RequestCtx, outcome: &'static str) {
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                provider: "huawei",
                action: ctx.action.clone().unwrap_or_else(|| "other".to_owned()),
                outcome,
            })
            .inc();
    }
}

/// The catalog's operation names are fixed at build time for Huawei rows;
/// a `&'static` label keeps metric cardinality bounded.
fn catalog_label(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "ListOnDemandResourceRatings",
        "ListRateOnPeriodDetail",
        "ListRenewRateOnPeriod",
        "ShowCustomerAccountBalances",
        "ListSubCustomerCoupons",
        "ListCustomerOrders",
        "ShowCustomerOrderDetails",
        "CancelCustomerOrder",
        "PayOrders (v2)",
        "ListOrderDiscounts",
        "PayOrders",
        "ShowRefundOrderDetails",
        "ListPayPerUseCustomerResources",
        "RenewalResources",
        "CancelResourcesSubscription",
        "AutoRenewalResources",
        "CancelAutoRenewalResources",
        "UpdatePeriodToOnDemand",
        "ListFreeResourceInfos",
        "ListFreeResourcesUsageRecords",
        "ListFreeResourceUsages",
        "ListCustomerselfResourceRecordDetails",
        "ShowCustomerMonthlySum (v1.0)",
        "ListCustomerselfResourceRecords",
        "ListCosts",
        "CreateEnterpriseProjectAuth",
        "ListIntlInvoices (v1.0)",
    ];
    NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .unwrap_or("other")
}

/// The legacy v1.0 APIs name the account in the path: it must be the
/// customer's own (a customer acts only as itself).
fn own_account_only(call: &HuaweiCall, who: &HuaweiWho) -> Result<(), Error> {
    let mut segs = call.path.split('/').filter(|s| !s.is_empty());
    if segs.next() == Some("v1.0")
        && let Some(domain) = segs.next()
        && domain != who.domain_id
    {
        return Err(Error::customer(
            crate::huawei::envelope::ACCESS_DENIED_STATUS,
            crate::huawei::envelope::ACCESS_DENIED,
            "Access denied: the account in the path is not the caller's own.",
            "owner",
        ));
    }
    Ok(())
}

/// BSS answers some business errors with HTTP 200 and `error_code`.
fn error_in_body(answer: &Answer) -> bool {
    answer.status == StatusCode::OK
        && serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .is_some_and(|v| v.get("error_code").is_some_and(|c| !c.is_null()))
}

/// Forwarding failures in Huawei's terms (the Alibaba codes the forwarder
/// uses mean nothing to a Huawei SDK): `CBC.0999` with the same status,
/// retryability and message (which says when the outcome is unknown).
fn huawei_upstream_error(mut e: Error) -> Error {
    e.code = "CBC.0999".into();
    e
}

fn customer_info(who: &HuaweiWho) -> CustomerInfo {
    CustomerInfo {
        id: who.customer.id.clone(),
        uid: who.domain_id.clone(),
        group: who.customer.group.clone().unwrap_or_default(),
        tags: who.customer.tags.clone(),
    }
}
