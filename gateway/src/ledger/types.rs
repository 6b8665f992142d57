//! The ledger's vocabulary: budgets, holds, entries, statuses, thresholds
//! and the ways an operation can be refused. Backend-neutral.

use serde::{Deserialize, Serialize};

use super::money::Micros;

/// A customer's budget status (the reseller quota APIs' `SetResellerUserStatus`).
///
/// Alibaba's four `Status` values map onto three states: `Freeze` →
/// [`Status::Frozen`], `Thaw` → [`Status::Normal`], `Trusteeship` →
/// [`Status::Trusteeship`] (the partner hosts the account: resources are
/// kept, new purchases are not allowed), `TrusteeshipCancel` →
/// [`Status::Normal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Purchases allowed (within the budget).
    Normal,
    /// No purchases; reads still work.
    Frozen,
    /// Hosted by the partner: no purchases; reads still work.
    Trusteeship,
}

impl Status {
    /// Stable name (database and API).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Frozen => "frozen",
            Self::Trusteeship => "trusteeship",
        }
    }

    /// Parses our names and Alibaba's `Status` values (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "normal" | "thaw" | "trusteeshipcancel" => Some(Self::Normal),
            "frozen" | "freeze" => Some(Self::Frozen),
            "trusteeship" => Some(Self::Trusteeship),
            _ => None,
        }
    }

    /// Whether purchases may be held.
    pub fn can_buy(self) -> bool {
        self == Self::Normal
    }
}

/// Most alarm thresholds per customer. 16: Alibaba's examples use one or
/// two; the fired/armed state of each fits one bit of a 64-bit column.
pub const MAX_THRESHOLDS: usize = 16;

/// One alarm threshold (`SetResellerUserAlarmThreshold`): alert when the
/// available quota drops below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Threshold {
    /// `thresholdType` 0: an absolute amount.
    Amount {
        /// The level, in micro-units.
        micros: i64,
    },
    /// `thresholdType` 1: a share of the credit limit.
    Ratio {
        /// Numerator of the share.
        numerator: u32,
        /// Denominator of the share (> 0).
        denominator: u32,
    },
}

impl Threshold {
    /// The available amount under which this threshold fires, for `limit`.
    /// Ratios round down to the micro-unit (exact integer arithmetic).
    pub fn level(self, limit: Micros) -> Micros {
        match self {
            Self::Amount { micros } => Micros(micros),
            Self::Ratio {
                numerator,
                denominator,
            } => {
                let v =
                    i128::from(limit.0) * i128::from(numerator) / i128::from(denominator.max(1));
                Micros(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
    }

    /// Label for metrics and entries.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Amount { .. } => "amount",
            Self::Ratio { .. } => "ratio",
        }
    }
}

/// A customer's budget as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Customer id (from the customers file).
    pub customer: String,
    /// Currency of every amount of this budget.
    pub currency: String,
    /// Credit limit (the quota ledger).
    pub limit: Micros,
    /// Committed spend (the consumption ledger).
    pub consumed: Micros,
    /// Sum of open holds.
    pub held: Micros,
    /// Status.
    pub status: Status,
    /// Alarm thresholds.
    pub thresholds: Vec<Threshold>,
    /// Bit `i` set: threshold `i` has fired and waits to be re-armed.
    pub alarm_fired: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl Budget {
    /// What can still be held: limit − consumed − held (may be negative
    /// after an operator lowers a limit).
    pub fn available(&self) -> Micros {
        Micros(self.limit.0 - self.consumed.0 - self.held.0)
    }
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldState {
    /// Reserved; the purchase is being forwarded.
    Held,
    /// Forwarded, outcome unknown (timeout, reset, crash): the reconciler
    /// asks the provider.
    Unknown,
    /// The provider made the order: the amount is consumed.
    Committed,
    /// The purchase clearly failed: the amount is free again.
    Released,
    /// Not settled before its expiry: the amount is free again.
    Expired,
}

impl HoldState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Unknown => "unknown",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => Self::Held,
            "unknown" => Self::Unknown,
            "committed" => Self::Committed,
            "released" => Self::Released,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// Still counted in `held`.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Held | Self::Unknown)
    }
}

/// The cloud a hold's purchase went to: who the reconciler asks about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Provider {
    /// Alibaba Cloud BSS (asked with `QueryOrders`).
    #[default]
    Alibaba,
    /// Huawei Cloud BSS (asked with the hold's
    /// [`provider_ref`](Hold::provider_ref)).
    Huawei,
}

impl Provider {
    /// Stable name (database).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alibaba => "alibaba",
            Self::Huawei => "huawei",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "alibaba" => Some(Self::Alibaba),
            "huawei" => Some(Self::Huawei),
            _ => None,
        }
    }
}

/// A purchase's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Tollgate's id (UUID).
    pub id: String,
    /// Customer id.
    pub customer: String,
    /// Amount held (what the customer is charged).
    pub amount: Micros,
    /// Its currency (= the budget's).
    pub currency: String,
    /// The caller's `ClientToken`, if any: at most one open or committed hold
    /// per (customer, token).
    pub client_token: Option<String>,
    /// SHA-256 of the purchase's business parameters: a retry with the same
    /// token must be the same purchase.
    pub fingerprint: String,
    /// Tollgate request id of the call that made the hold.
    pub request_id: String,
    /// `CreateInstance`, `RunInstances`, ...
    pub action: String,
    /// Provider product code (`oss`, `ecs`): narrows reconciliation.
    pub product: String,
    /// The provider's own price of the order when known: reconciliation
    /// matches it against the order's `PretaxAmount`.
    pub official: Option<Micros>,
    /// Which cloud the purchase went to.
    pub provider: Provider,
    /// What the reconciler needs to ask the provider, when the hold's other
    /// fields do not say it (JSON, provider-specific; see
    /// `ledger::reconcile_huawei::HuaweiRef`).
    pub provider_ref: Option<String>,
    /// State.
    pub state: HoldState,
    /// The provider's order id, once committed (absent for purchases that
    /// make no order, e.g. pay-as-you-go ECS).
    pub order_id: Option<String>,
    /// The provider's success answer, kept to replay to a retried purchase.
    pub answer: Option<String>,
    /// Why it was released, expired or marked unknown.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which a `held` hold's request can no longer be running
    /// (forward timeout passed): the reconciler may take it over.
    pub forward_deadline: i64,
    /// Unix ms after which an unsettled hold expires.
    pub expires_at: i64,
    /// Unix ms when marked unknown.
    pub unknown_at: Option<i64>,
    /// Unix ms when committed, released or expired.
    pub settled_at: Option<i64>,
}

/// What [`reserve`](super::Store::reserve) needs.
#[derive(Debug, Clone)]
pub struct NewHold {
    /// New id.
    pub id: String,
    /// Customer id.
    pub customer: String,
    /// Amount.
    pub amount: Micros,
    /// Currency of the price.
    pub currency: String,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// Parameter fingerprint.
    pub fingerprint: String,
    /// Request id.
    pub request_id: String,
    /// Action.
    pub action: String,
    /// Product code.
    pub product: String,
    /// Provider price, if known.
    pub official: Option<Micros>,
    /// Which cloud the purchase goes to.
    pub provider: Provider,
    /// What reconciling it needs to ask (see [`Hold::provider_ref`]).
    pub provider_ref: Option<String>,
    /// The signed call's replay key (see [`replay_key`]): unique across the
    /// ledger, so the same signed purchase can never be held twice, after
    /// a restart or on another replica.
    pub replay_key: Option<String>,
    /// Unix ms.
    pub now: i64,
    /// Unix ms.
    pub forward_deadline: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// One line of the append-only entry log. Every change of a balance writes
/// exactly one entry with its deltas and the balances after it, so every
/// balance can be recomputed as the sum of the deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Increasing id.
    pub id: i64,
    /// Customer id.
    pub customer: String,
    /// Unix ms.
    pub at: i64,
    /// `quota_create`, `quota_set`, `consume_increase`, `consume_decrease`,
    /// `hold`, `commit`, `release`, `expire`, `unknown`, `status`,
    /// `thresholds`, `alarm`, `alarm_rearm`.
    pub kind: String,
    /// The amount the entry is about (0 when none).
    pub amount: Micros,
    /// Change of the limit.
    pub limit_delta: Micros,
    /// Change of consumed.
    pub consumed_delta: Micros,
    /// Change of held.
    pub held_delta: Micros,
    /// Limit after.
    pub limit_after: Micros,
    /// Consumed after.
    pub consumed_after: Micros,
    /// Held after.
    pub held_after: Micros,
    /// The hold concerned.
    pub hold_id: Option<String>,
    /// The provider order concerned.
    pub order_id: Option<String>,
    /// The operator's business id (idempotency of adjustments).
    pub out_biz_id: Option<String>,
    /// Free text (reason, status, threshold).
    pub detail: String,
}

/// `ChangeResellerConsumeAmount`'s `AdjustType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustType {
    /// The customer consumed more (e.g. pay-as-you-go bills).
    Increase,
    /// The customer topped up / was refunded: consumption goes down.
    Decrease,
}

impl AdjustType {
    /// Parses `increase` / `decrease`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "increase" => Some(Self::Increase),
            "decrease" => Some(Self::Decrease),
            _ => None,
        }
    }

    /// The entry kind.
    pub fn entry_kind(self) -> &'static str {
        match self {
            Self::Increase => "consume_increase",
            Self::Decrease => "consume_decrease",
        }
    }
}

/// An alarm waiting to be delivered to the webhooks (the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxAlarm {
    /// Outbox id.
    pub id: i64,
    /// Customer.
    pub customer: String,
    /// JSON payload to POST.
    pub payload: String,
    /// Delivery attempts so far.
    pub attempts: i32,
}

/// Why a ledger operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The customer has no budget.
    #[error("customer {0} has no budget")]
    NoBudget(String),
    /// A budget already exists (`-303 Record is exists already`).
    #[error("customer {0} already has a budget")]
    Exists(String),
    /// The budget's status forbids purchases.
    #[error("the budget of customer {customer} is {}", status.as_str())]
    NotBuying {
        /// Customer.
        customer: String,
        /// Its status.
        status: Status,
    },
    /// Not enough available budget.
    #[error("available {available} {currency}, needed {needed} {currency}")]
    Insufficient {
        /// What was available.
        available: Micros,
        /// What the purchase needed.
        needed: Micros,
        /// Currency.
        currency: String,
    },
    /// The amount is in another currency than the budget.
    #[error("the budget is in {budget}, the amount in {amount}")]
    Currency {
        /// The budget's currency.
        budget: String,
        /// The amount's currency.
        amount: String,
    },
    /// The same `OutBizId` was used for a different change.
    #[error("OutBizId {0} was already used for a different change")]
    OutBizConflict(String),
    /// The hold is not open (already settled).
    #[error("hold {id} is {}", state.as_str())]
    NotOpen {
        /// Hold id.
        id: String,
        /// Its state.
        state: HoldState,
    },
    /// No such hold.
    #[error("no hold {0}")]
    NoHold(String),
    /// A hold was already made by this very signed call (its replay key).
    #[error("this signed call was already accepted once")]
    Replayed,
    /// The provider order is already attached to another hold.
    #[error("order {0} is already attached to another hold")]
    OrderClaimed(String),
    /// Thawing would leave a negative available quota (`-116`).
    #[error("the available quota of customer {0} is below zero")]
    QuotaNegative(String),
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// The database failed (message without secrets).
    #[error("ledger database: {0}")]
    Db(String),
}

/// The replay key of a signed call: `provider:` + SHA-256 (hex) of the
/// AccessKey id and the call's nonce (Alibaba) or signature (Huawei).
/// Hashed so its length is fixed whatever the caller sent.
pub fn replay_key(provider: Provider, access_key_id: &str, once: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(access_key_id.len().to_le_bytes());
    h.update(access_key_id.as_bytes());
    h.update(once.as_bytes());
    format!("{}:{}", provider.as_str(), hex::encode(h.finalize()))
}

/// Result of [`reserve`](super::Store::reserve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// A new hold was made; the budget after it.
    New(Budget),
    /// The (customer, token) already has an open or committed hold.
    Existing(Box<Hold>),
}

/// Result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Committed now.
    Now,
    /// It already was, with the same order (an idempotent repeat).
    Already,
}

/// A stored entry compared with the budget it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recomputed {
    /// Sum of limit deltas.
    pub limit: Micros,
    /// Sum of consumed deltas.
    pub consumed: Micros,
    /// Sum of held deltas.
    pub held: Micros,
    /// Sum of the amounts of open holds.
    pub open_holds: Micros,
    /// Sum of the amounts of committed holds.
    pub committed_holds: Micros,
    /// Sum of consumption adjustments (increase − decrease).
    pub adjustments: Micros,
}
