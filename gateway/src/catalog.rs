//! What each Alibaba action is: its kind (read, price query, purchase,
//! modify, bill). The request path uses it to keep metric labels bounded and
//! to name the kind in logs; the permission and budget steps will key on it.

/// What a call does to money and resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads state; no money moves.
    Read,
    /// Asks for a price.
    Price,
    /// Creates an order that costs money.
    Purchase,
    /// Changes an existing resource or order.
    Modify,
    /// Bills and bill export.
    Bill,
    /// Reseller budget (quota) administration.
    Budget,
}

impl Kind {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Price => "price",
            Self::Purchase => "purchase",
            Self::Modify => "modify",
            Self::Bill => "bill",
            Self::Budget => "budget",
        }
    }
}

/// The Alibaba actions Tollgate knows, with their kind.
pub const ALIYUN_ACTIONS: &[(&str, Kind)] = &[
    ("GetSubscriptionPrice", Kind::Price),
    ("GetPayAsYouGoPrice", Kind::Price),
    ("QueryProductList", Kind::Read),
    ("DescribePricingModule", Kind::Read),
    ("CreateInstance", Kind::Purchase),
    ("QueryAvailableInstances", Kind::Read),
    ("ModifyInstance", Kind::Modify),
    ("RenewInstance", Kind::Purchase),
    ("QueryOrders", Kind::Read),
    ("GetOrderDetail", Kind::Read),
    ("CancelOrder", Kind::Modify),
    ("SubscribeBillToOSS", Kind::Bill),
    ("UnsubscribeBillToOSS", Kind::Bill),
    ("CreateResellerUserQuota", Kind::Budget),
    ("SetResellerUserQuota", Kind::Budget),
    ("QueryResellerAvailableQuota", Kind::Budget),
    ("ChangeResellerConsumeAmount", Kind::Budget),
    ("SetResellerUserStatus", Kind::Budget),
    ("SetResellerUserAlarmThreshold", Kind::Budget),
    ("DescribePrice", Kind::Price),
    ("RunInstances", Kind::Purchase),
    ("DescribeInstances", Kind::Read),
];

/// The catalogued name and kind of `action`, if known.
pub fn aliyun_action(action: &str) -> Option<(&'static str, Kind)> {
    ALIYUN_ACTIONS.iter().find(|(a, _)| *a == action).copied()
}
