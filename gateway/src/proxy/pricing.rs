//! The price phase of the request path (see `crate::pricing`).
//!
//! * Price queries are forwarded as usual; the provider's answer is then
//!   priced by the partner's module and rewritten (`pricing::rewrite`).
//! * Purchases are priced **before** anything is forwarded: the gateway
//!   asks the provider's own price API for the official price (signed with
//!   the partner's key, as the customer's `OwnerId`), the module prices it
//!   (`price` + `bundle`) and admits or refuses it (`admit`). A refusal or a
//!   module failure answers the customer and nothing is bought; otherwise
//!   the quote goes into `RequestCtx::quote` for the budget phase.
//! * A module failure never falls back to official prices: a price query
//!   fails too (official prices must never be shown as partner prices).

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use super::{Gateway, RequestCtx};
use crate::aliyun::AliyunCall;
use crate::aliyun::provider::{AskError, InstanceModules, Provider};
use crate::auth::Authenticated;
use crate::error::Error;
use crate::pricing::order::{self, BSS_VERSION, BssRequest, EcsRequest, Flow, PriceApi, Purchase};
use crate::pricing::{
    Admission, CustomerInfo, Intent, LoadedModule, Order, OrderKind, Quote, rewrite, splice,
};
use crate::upstream::{Answer, Upstream};

/// The module and what it does with this call, when pricing applies.
pub(super) type Pricing = (Arc<LoadedModule>, Flow);

fn customer(who: &Authenticated) -> CustomerInfo {
    CustomerInfo {
        id: who.customer.id.clone(),
        uid: who.customer.aliyun_uid.clone(),
        group: who.customer.group.clone().unwrap_or_default(),
        tags: who.customer.tags.clone(),
    }
}

/// A provider answer that could not be understood: the partner price
/// cannot be computed, so nothing is shown or bought.
fn bad_official(what: &str) -> Error {
    Error::pricing(
        StatusCode::BAD_GATEWAY,
        "ServiceUnavailable",
        format!(
            "The official price could not be read ({what}); no partner price can be given and nothing was ordered."
        ),
        "pricing_official_unreadable",
        true,
    )
}

fn business_params(call: &AliyunCall) -> Vec<(&str, &str)> {
    call.params()
        .filter(|(k, _)| !crate::aliyun::is_call_or_owner_param(k))
        .collect()
}

impl Gateway {
    /// Whether pricing applies to `call`, and how. Refuses XML for priced
    /// calls: answers are rewritten as JSON only.
    /// The module is the one assigned to the customer's group, else the
    /// default (`[pricing]`, `[[pricing.assign]]`).
    pub(super) fn pricing_for(
        &self,
        call: &AliyunCall,
        who: &Authenticated,
    ) -> Result<Option<Pricing>, Error> {
        let Some(module) = self.pricing.for_group(who.customer.group.as_deref()) else {
            return Ok(None);
        };
        let Some(flow) = order::flow(&call.action, &call.version, |k| call.param(k)) else {
            return Ok(None);
        };
        if call.wants_xml() {
            return Err(Error::invalid(
                "Format",
                "partner prices are answered in JSON only (use Format=JSON, the SDKs' default)",
            ));
        }
        Ok(Some((Arc::clone(module), flow)))
    }

    /// The partner's view of the provider, as customer `owner_uid`.
    fn provider<'a>(&'a self, upstream: &'a Upstream, owner_uid: &'a str) -> Provider<'a> {
        Provider {
            forwarder: &self.forwarder,
            key: self.partner.signing(),
            upstream,
            owner_uid,
        }
    }

    /// One signed call to the provider as the customer; the JSON answer, or
    /// the provider's own refusal (it would refuse the purchase the same way).
    async fn ask_provider(
        &self,
        upstream: &Upstream,
        owner_uid: &str,
        action: &str,
        version: &str,
        params: Vec<(String, String)>,
    ) -> Result<Value, Error> {
        self.provider(upstream, owner_uid)
            .ask(action, version, params)
            .await
            .map_err(|e| match e {
                AskError::Transport(e) => e,
                AskError::NotJson => bad_official(&format!("{action} did not answer JSON")),
                AskError::Refused {
                    status,
                    code,
                    message,
                } => Error::upstream(
                    status,
                    code,
                    message,
                    "pricing_official_refused",
                    status.is_server_error(),
                ),
            })
    }

    /// Runs the module on `order` and turns every failure into the
    /// customer's answer; a denial is a provider-format 403.
    fn run_module(&self, module: &LoadedModule, order: &Order) -> Result<Arc<Quote>, Error> {
        let priced = module
            .quote_metered(order, &self.metrics)
            .map_err(|e| e.to_error(module.label()))?;
        match priced.admission {
            Admission::Allow => Ok(priced.quote),
            Admission::Deny { rule, message } => Err(Error::customer(
                StatusCode::FORBIDDEN,
                "Forbidden.PartnerQuota",
                format!("{message} (partner rule: {rule})"),
                "pricing_denied",
            )),
        }
    }

    /// Price query: rewrites a successful provider answer to partner prices.
    /// Provider errors pass through untouched (they carry no price).
    pub(super) fn reprice_answer(
        &self,
        ctx: &mut RequestCtx,
        module: &LoadedModule,
        api: PriceApi,
        call: &AliyunCall,
        who: &Authenticated,
        answer: Answer,
    ) -> Result<Answer, Error> {
        if !answer.status.is_success() {
            return Ok(answer);
        }
        let params = business_params(call);
        let payg = api == PriceApi::PayAsYouGo;
        let bss_request = || BssRequest {
            params: &params,
            payg,
            customer: customer(who),
            intent: Intent::Quote,
            action: &call.action,
        };
        if let PriceApi::Subscription | PriceApi::PayAsYouGo = api
            && let Some(read) = splice::BssAnswer::read(&answer.body)
        {
            // The common case, in place (`pricing::splice`); anything
            // unusual takes the general path below.
            if read.failed() {
                return Ok(answer);
            }
            let order = read.order(&bss_request()).map_err(|e| bad_official(&e))?;
            let quote = self.run_module(module, &order)?;
            let body = read.rewrite(&order, &quote, payg);
            ctx.quote = Some(quote);
            return Ok(answer.with_body(body));
        }
        let mut body: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| bad_official("the price answer is not JSON"))?;
        if body.get("Success") == Some(&Value::Bool(false)) {
            return Ok(answer);
        }
        let quote = match api {
            PriceApi::Subscription | PriceApi::PayAsYouGo => {
                let req = bss_request();
                let data = body
                    .get_mut("Data")
                    .ok_or_else(|| bad_official("no Data in the price answer"))?;
                let order = order::order_from_bss(&req, data).map_err(|e| bad_official(&e))?;
                let quote = self.run_module(module, &order)?;
                rewrite::rewrite_bss(data, &order, &quote, payg);
                quote
            }
            PriceApi::EcsDescribePrice => {
                let req = EcsRequest {
                    params: &params,
                    customer: customer(who),
                    intent: Intent::Quote,
                    action: &call.action,
                };
                let info = body
                    .get_mut("PriceInfo")
                    .ok_or_else(|| bad_official("no PriceInfo in the price answer"))?;
                let price = info
                    .get("Price")
                    .ok_or_else(|| bad_official("no PriceInfo.Price in the price answer"))?;
                let order = order::order_from_ecs(&req, price).map_err(|e| bad_official(&e))?;
                let quote = self.run_module(module, &order)?;
                rewrite::rewrite_ecs(info, &quote);
                quote
            }
        };
        ctx.quote = Some(quote);
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::internal(e.to_string()))?;
        Ok(answer.with_body(bytes))
    }

    /// Purchase: the official price, then `price` + `bundle` + `admit`.
    /// Also what the provider should charge for it (`verify::Priced`), for
    /// purchases whose charge can be compared afterwards.
    pub(super) async fn price_purchase(
        &self,
        module: &LoadedModule,
        purchase: Purchase,
        call: &AliyunCall,
        who: &Authenticated,
        upstream: &Upstream,
    ) -> Result<(Arc<Quote>, Option<super::verify::Priced>), Error> {
        let params = business_params(call);
        let uid = who.customer.aliyun_uid.as_str();
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_empty())
        };
        let cust = customer(who);
        if purchase == Purchase::RunInstances {
            return self
                .price_run_instances(module, call, &params, cust, upstream, uid)
                .await;
        }
        let subscription_type_given = get("SubscriptionType");
        let product = get("ProductCode").ok_or_else(|| Error::missing("ProductCode"))?;
        let subscription = match purchase {
            Purchase::Renew => true,
            _ => get("SubscriptionType") != Some("PayAsYouGo"),
        };
        let subscription_type = if subscription {
            "Subscription"
        } else {
            "PayAsYouGo"
        };
        // Renewals name no region; the instance's own (from the lookup) stands in.
        let mut instance_region: Option<String> = None;
        let (modules, order_type, months, instance) = match purchase {
            Purchase::Create | Purchase::Modify => {
                let defs = self
                    .ask_provider(
                        upstream,
                        uid,
                        "DescribePricingModule",
                        BSS_VERSION,
                        vec![
                            ("ProductCode".into(), product.to_owned()),
                            ("SubscriptionType".into(), subscription_type.to_owned()),
                        ],
                    )
                    .await?;
                let defs = order::module_defs(defs.get("Data").unwrap_or(&Value::Null))
                    .map_err(|e| bad_official(&e))?;
                let props = order::parameters(&params);
                let modules = order::configured_modules(&defs, &props);
                if modules.is_empty() {
                    return Err(Error::invalid(
                        "Parameter",
                        format_args!(
                            "no pricing module of product \"{product}\" is fully configured by the Parameter list"
                        ),
                    ));
                }
                if purchase == Purchase::Create {
                    let months = match get("Period") {
                        Some(p) => p
                            .parse()
                            .map_err(|_| Error::invalid("Period", "not a number"))?,
                        None => 1,
                    };
                    (modules, "NewOrder", months, None)
                } else {
                    // An upgrade names only what changes; where the
                    // instance runs (for quota rules) is the instance's.
                    let id = get("InstanceId").ok_or_else(|| Error::missing("InstanceId"))?;
                    let (_, region) = self.instance_modules(upstream, uid, product, id).await?;
                    instance_region = region;
                    (modules, "Upgrade", 1, Some(id))
                }
            }
            Purchase::Renew => {
                let id = get("InstanceId").ok_or_else(|| Error::missing("InstanceId"))?;
                let months: u32 = get("RenewPeriod")
                    .ok_or_else(|| Error::missing("RenewPeriod"))?
                    .parse()
                    .map_err(|_| Error::invalid("RenewPeriod", "not a number"))?;
                let (modules, region) = self.instance_modules(upstream, uid, product, id).await?;
                instance_region = region;
                (modules, "Renewal", months, Some(id))
            }
            // Priced above, by ECS DescribePrice.
            Purchase::RunInstances => {
                return Err(Error::internal("RunInstances is priced by DescribePrice"));
            }
        };
        let region = order::parameters(&params)
            .iter()
            .rev()
            .find(|(k, _)| *k == "Region")
            .map(|(_, v)| *v)
            .or_else(|| get("Region"))
            .or(instance_region.as_deref());
        let ask = order::bss_price_params(
            product,
            subscription,
            order_type,
            months,
            region,
            instance,
            &modules,
        );
        let action = if subscription {
            "GetSubscriptionPrice"
        } else {
            "GetPayAsYouGoPrice"
        };
        let answer = self
            .ask_provider(upstream, uid, action, BSS_VERSION, ask.clone())
            .await?;
        let ask_refs: Vec<(&str, &str)> =
            ask.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut order = order::order_from_bss(
            &BssRequest {
                params: &ask_refs,
                payg: !subscription,
                customer: cust,
                intent: Intent::Purchase,
                action: &call.action,
            },
            answer.get("Data").unwrap_or(&Value::Null),
        )
        .map_err(|e| bad_official(&e))?;
        // New orders and renewals are charged what their quote says;
        // upgrades are pro-rated by the provider (not comparable).
        let priced = match purchase {
            Purchase::Create if subscription_type_given == Some("Subscription") => {
                Some(order_priced(&order))
            }
            Purchase::Renew => Some(order_priced(&order)),
            _ => None,
        };
        if purchase == Purchase::Modify && get("ModifyType") == Some("Downgrade") {
            // A downgrade is refunded, not charged: the module sees the new
            // configuration at no official cost (quota rules still apply).
            order.kind = OrderKind::Downgrade;
            for l in &mut order.lines {
                l.official = rust_decimal::Decimal::ZERO;
                l.official_trade = rust_decimal::Decimal::ZERO;
            }
        }
        Ok((self.run_module(module, &order)?, priced))
    }

    /// `RunInstances` (PrePaid): ECS `DescribePrice` with the same
    /// configuration gives the official price.
    async fn price_run_instances(
        &self,
        module: &LoadedModule,
        call: &AliyunCall,
        params: &[(&str, &str)],
        cust: CustomerInfo,
        upstream: &Upstream,
        uid: &str,
    ) -> Result<(Arc<Quote>, Option<super::verify::Priced>), Error> {
        let ask = order::describe_price_params(params).map_err(|e| Error::invalid("Period", e))?;
        let answer = self
            .ask_provider(upstream, uid, "DescribePrice", &call.version, ask.clone())
            .await?;
        let ask_refs: Vec<(&str, &str)> =
            ask.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let price = answer
            .pointer("/PriceInfo/Price")
            .ok_or_else(|| bad_official("no PriceInfo.Price"))?;
        let order = order::order_from_ecs(
            &EcsRequest {
                params: &ask_refs,
                customer: cust,
                intent: Intent::Purchase,
                action: &call.action,
            },
            price,
        )
        .map_err(|e| bad_official(&e))?;
        // PrePaid answers carry the order's TradePrice; PostPaid ones
        // a rate, not a charge.
        let priced = params
            .iter()
            .any(|(k, v)| *k == "InstanceChargeType" && *v == "PrePaid")
            .then(|| order_priced(&order));
        Ok((self.run_module(module, &order)?, priced))
    }

    /// The module configuration of an existing instance, from the order
    /// that created it (see `Provider::instance_modules`), as
    /// `(ModuleCode, Config, PriceType)`, with the instance's region.
    async fn instance_modules(
        &self,
        upstream: &Upstream,
        uid: &str,
        product: &str,
        id: &str,
    ) -> Result<(Vec<(String, String, String)>, Option<String>), Error> {
        let found = self
            .provider(upstream, uid)
            .instance_modules(product, id)
            .await
            .map_err(|e| match e {
                AskError::Transport(e) => e,
                AskError::NotJson => bad_official("an order lookup did not answer JSON"),
                AskError::Refused {
                    status,
                    code,
                    message,
                } => Error::upstream(
                    status,
                    code,
                    message,
                    "pricing_official_refused",
                    status.is_server_error(),
                ),
            })?;
        match found {
            InstanceModules::Found { modules, region } => Ok((
                modules
                    .into_iter()
                    .map(|(code, props)| {
                        let config: Vec<String> =
                            props.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        (code, config.join(","), "Month".to_owned())
                    })
                    .collect(),
                region,
            )),
            InstanceModules::NoInstance | InstanceModules::NoOrder => Err(Error::invalid(
                "InstanceId",
                format_args!("instance \"{id}\" of product \"{product}\" is not found"),
            )),
        }
    }
}

/// What the provider should charge for `order`: its official trade total.
fn order_priced(order: &Order) -> super::verify::Priced {
    super::verify::Priced {
        trade: order.lines.iter().map(|l| l.official_trade).sum(),
        currency: order.currency.clone(),
    }
}

/// The purchase answer with the partner total in place of any official
/// amount it reports (ECS `RunInstances` `TradePrice`).
pub(super) fn reprice_purchase_answer(answer: Answer, quote: &Quote) -> Answer {
    if !answer.status.is_success() {
        return answer;
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&answer.body) else {
        return answer;
    };
    if !map.contains_key("TradePrice") {
        return answer;
    }
    rewrite::rewrite_purchase(&mut map, quote);
    match serde_json::to_vec(&Value::Object(map)) {
        Ok(bytes) => answer.with_body(bytes),
        Err(_) => answer,
    }
}
