//! Tollgate's own read-only questions to the provider (price and order
//! lookups for purchases), signed with the partner key as a named customer.
//!
//! One place for both users: the pricing phase (partner quotes) and the
//! ledger (official-price holds). Each maps [`AskError`] to its own error,
//! because a failed lookup means different things to them.

use http::{Method, StatusCode};
use serde_json::Value;

use super::outbound::{Freshness, OutboundCall, SigningKey};
use crate::error::Error;
use crate::upstream::{Forwarder, Upstream};

/// BSS OpenAPI version, for the order lookups.
const BSS: &str = "2017-12-14";

/// Where and as whom to ask.
#[derive(Debug, Clone, Copy)]
pub struct Provider<'a> {
    /// The pooled client.
    pub forwarder: &'a Forwarder,
    /// The partner's key.
    pub key: SigningKey<'a>,
    /// The upstream to ask (the purchase's own).
    pub upstream: &'a Upstream,
    /// The customer's provider UID (`OwnerId`).
    pub owner_uid: &'a str,
}

/// Why a question got no usable answer.
#[derive(Debug)]
pub enum AskError {
    /// The call failed on the way (connect, timeout, reset).
    Transport(Error),
    /// The answer was not JSON.
    NotJson,
    /// The provider answered with an error (HTTP error, or `Success:false`).
    Refused {
        /// HTTP status (400 when the provider answered 200 with `Success:false`).
        status: StatusCode,
        /// The provider's `Code` (`InternalError` when absent).
        code: String,
        /// The provider's `Message`.
        message: String,
    },
}

/// The creating order's modules of an existing instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceModules {
    /// The instance was found with the order that created it.
    Found {
        /// `(ModuleCode, [(property code, value)])` per module.
        modules: Vec<(String, Vec<(String, String)>)>,
        /// The instance's region (`QueryAvailableInstances` `Region`):
        /// renewals name none themselves, and quota rules need it.
        region: Option<String>,
    },
    /// The provider does not know the instance (for this customer).
    NoInstance,
    /// The instance exists, but no order around its creation names it.
    NoOrder,
}

impl Provider<'_> {
    /// One signed call; the JSON answer, or why there is none.
    pub async fn ask(
        &self,
        action: &str,
        version: &str,
        mut params: Vec<(String, String)>,
    ) -> Result<Value, AskError> {
        params.push(("OwnerId".into(), self.owner_uid.to_owned()));
        params.push(("Format".into(), "JSON".into()));
        let req = OutboundCall {
            method: Method::POST,
            action: action.to_owned(),
            version: version.to_owned(),
            query: params,
            form: Vec::new(),
        }
        .sign(
            self.upstream.scheme,
            &self.upstream.authority,
            self.key,
            &Freshness::now(),
        );
        let answer = self
            .forwarder
            .send(req, self.upstream.timeout)
            .await
            .map_err(AskError::Transport)?;
        let body: Value = serde_json::from_slice(&answer.body).map_err(|_| AskError::NotJson)?;
        if answer.status.is_success() && body.get("Success") != Some(&Value::Bool(false)) {
            return Ok(body);
        }
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let code = Some(text("Code"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "InternalError".to_owned());
        Err(AskError::Refused {
            status: if answer.status.is_success() {
                StatusCode::BAD_REQUEST
            } else {
                answer.status
            },
            code,
            message: text("Message"),
        })
    }

    /// The module configuration an instance has now: the order that created
    /// it (`QueryAvailableInstances` for its creation time → `QueryOrders`,
    /// new orders around that time → `GetOrderDetail`), with every paid
    /// upgrade and downgrade since applied (`apply_changes`).
    pub async fn instance_modules(
        &self,
        product: &str,
        instance: &str,
    ) -> Result<InstanceModules, AskError> {
        let found = self
            .ask(
                "QueryAvailableInstances",
                BSS,
                vec![
                    ("ProductCode".into(), product.into()),
                    ("InstanceIDs".into(), instance.into()),
                ],
            )
            .await?;
        let region = found
            .pointer("/Data/InstanceList/0/Region")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(created) = found
            .pointer("/Data/InstanceList/0/CreateTime")
            .and_then(Value::as_str)
            .and_then(super::parse_timestamp)
        else {
            return Ok(InstanceModules::NoInstance);
        };
        let window = time::Duration::minutes(1);
        let orders = self
            .ask(
                "QueryOrders",
                BSS,
                vec![
                    ("ProductCode".into(), product.into()),
                    ("OrderType".into(), "New".into()),
                    (
                        "CreateTimeStart".into(),
                        super::format_timestamp(created - window),
                    ),
                    (
                        "CreateTimeEnd".into(),
                        super::format_timestamp(created + window),
                    ),
                    ("PageSize".into(), "100".into()),
                ],
            )
            .await?;
        let ids: Vec<String> = orders
            .pointer("/Data/OrderList/Order")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.get("OrderId").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Few orders are created within the same two minutes; ten detail
        // lookups bound the cost of a burst.
        for id in ids.iter().take(10) {
            let detail = self
                .ask("GetOrderDetail", BSS, vec![("OrderId".into(), id.clone())])
                .await?;
            let data = detail.get("Data").unwrap_or(&Value::Null);
            if !names_instance(data, instance) {
                continue;
            }
            let mut modules = order_detail_modules(data);
            if !modules.is_empty() {
                self.apply_changes(product, instance, created, &mut modules)
                    .await?;
                return Ok(InstanceModules::Found { modules, region });
            }
        }
        Ok(InstanceModules::NoOrder)
    }

    /// Brings `modules` (the configuration an instance was bought with) up
    /// to date: every paid upgrade or downgrade order of the instance since
    /// `created`, oldest first, replaces the modules it names. A renewal
    /// is then priced for what the instance is now, not what it was
    /// bought as (an upgraded package renews at the upgraded price).
    async fn apply_changes(
        &self,
        product: &str,
        instance: &str,
        created: time::OffsetDateTime,
        modules: &mut Vec<(String, Vec<(String, String)>)>,
    ) -> Result<(), AskError> {
        let mut changes: Vec<(String, String)> = Vec::new();
        for order_type in ["Upgrade", "Refund"] {
            let orders = self
                .ask(
                    "QueryOrders",
                    BSS,
                    vec![
                        ("ProductCode".into(), product.into()),
                        ("OrderType".into(), order_type.into()),
                        ("PaymentStatus".into(), "Paid".into()),
                        ("CreateTimeStart".into(), super::format_timestamp(created)),
                        (
                            "CreateTimeEnd".into(),
                            super::format_timestamp(
                                time::OffsetDateTime::now_utc() + time::Duration::minutes(1),
                            ),
                        ),
                        ("PageSize".into(), "100".into()),
                    ],
                )
                .await?;
            if let Some(list) = orders
                .pointer("/Data/OrderList/Order")
                .and_then(Value::as_array)
            {
                changes.extend(list.iter().filter_map(|o| {
                    Some((
                        o.get("CreateTime")?.as_str()?.to_owned(),
                        o.get("OrderId")?.as_str()?.to_owned(),
                    ))
                }));
            }
        }
        // Oldest first (the timestamps are all `yyyy-MM-ddTHH:mm:ssZ`, so
        // they sort as text); the ten newest bound the lookups.
        changes.sort();
        let skip = changes.len().saturating_sub(10);
        for (_, id) in changes.into_iter().skip(skip) {
            let detail = self
                .ask("GetOrderDetail", BSS, vec![("OrderId".into(), id)])
                .await?;
            let data = detail.get("Data").unwrap_or(&Value::Null);
            if !names_instance(data, instance) {
                continue;
            }
            for (code, props) in order_detail_modules(data) {
                match modules.iter_mut().find(|(c, _)| *c == code) {
                    Some(m) => m.1 = props,
                    None => modules.push((code, props)),
                }
            }
        }
        Ok(())
    }
}

/// Whether a `GetOrderDetail` `Data` names `instance` in its `InstanceIDs`
/// (a JSON array inside a string, or a bare id).
fn names_instance(data: &Value, instance: &str) -> bool {
    let Some(ids) = data
        .pointer("/OrderList/Order/0/InstanceIDs")
        .and_then(Value::as_str)
    else {
        return false;
    };
    match serde_json::from_str::<Vec<String>>(ids) {
        Ok(list) => list.iter().any(|i| i == instance),
        Err(_) => ids == instance,
    }
}

/// `(ModuleCode, [(property code, value)])` of a `GetOrderDetail` `Data`
/// (its lower-case wrappers: `originalModuleConfig`, `moduleProperties`).
pub fn order_detail_modules(data: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let Some(modules) = data
        .pointer("/OrderList/Order/0/OriginalModuleConfig/originalModuleConfig")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    modules
        .iter()
        .filter_map(|m| {
            let code = m.get("Code").and_then(Value::as_str)?;
            let props = m
                .pointer("/ModuleProperties/moduleProperties")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| {
                            Some((
                                p.get("Code")?.as_str()?.to_owned(),
                                p.get("Value")?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((code.to_owned(), props))
        })
        .collect()
}
