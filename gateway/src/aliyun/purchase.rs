//! The one reading of a money-moving Alibaba call.
//!
//! A purchase, upgrade or renewal is priced, admitted and held from the
//! call's parameters, and the same parameters are what the provider
//! receives (`resign` forwards them). That is only safe if the call can be
//! read exactly one way. [`super::strict`] already refuses repeated and
//! re-cased names; this module refuses everything else a provider could
//! read differently from the gateway, for the actions that cost money:
//!
//! * a name the action does not have (unknown means refused: a provider
//!   may accept a parameter the gateway never priced);
//! * a flattened list (`Parameter.N.Code`, `DataDisk.N.Size`, `Tag.N.Key`)
//!   whose indexes are not exactly `1..=n`, longer than the provider's
//!   limit, or with an entry missing a field the entry needs;
//! * the same BSS property code twice (`Parameter.1.Code=Region` and
//!   `Parameter.3.Code=Region`: which one would be bought?);
//! * a value outside its enumeration, spelled in any case but the
//!   provider's (`SubscriptionType=subscription` is not `Subscription`),
//!   or a number that is not a plain decimal integer in range.
//!
//! After [`check`] passes, every parameter of the call has one name, one
//! value and one meaning, so what the pricing phase reads is what the
//! provider reads: the priced order and the forwarded order are the same
//! list by construction. Parameter names are the official SDKs'
//! (`aliyun-python-sdk-bssopenapi` 2.0.3, `aliyun-python-sdk-ecs` 4.24.83
//! request classes; `docs/purchase-parameters.md`).

use http::StatusCode;

use super::AliyunCall;
use crate::error::{Error, Result};

/// BSS OpenAPI's `Version`.
const BSS: &str = "2017-12-14";
/// ECS's `Version`.
const ECS: &str = "2014-05-26";

/// What a value must look like.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// Any text.
    Text,
    /// One of these, exactly.
    OneOf(&'static [&'static str]),
    /// A decimal integer in `min..=max`, no sign, no leading zeros.
    Int(u32, u32),
}

const BOOL: Value = Value::OneOf(&["true", "false"]);

/// A flattened list `Prefix.N.Field` (or `Prefix.N` when `fields` is
/// empty), N in `1..=max`, each entry carrying its `required` fields.
#[derive(Debug, Clone, Copy)]
struct List {
    prefix: &'static str,
    max: u32,
    fields: &'static [(&'static str, Value)],
    required: &'static [&'static str],
    /// Values of this field must differ between entries (case ignored).
    unique: Option<&'static str>,
    /// Nested lists inside an entry: `Prefix.N.Sub.M`.
    nested: &'static [(&'static str, u32)],
}

/// The parameters of one money-moving action.
#[derive(Debug)]
struct Schema {
    scalars: &'static [(&'static str, Value)],
    required: &'static [&'static str],
    lists: &'static [List],
}

const SUBSCRIPTION_TYPE: Value = Value::OneOf(&["Subscription", "PayAsYouGo"]);

/// BSS `Parameter.N.Code` / `.Value`: 1..100 module properties, each code
/// once.
const BSS_PARAMETERS: List = List {
    prefix: "Parameter",
    max: 100,
    fields: &[("Code", Value::Text), ("Value", Value::Text)],
    required: &["Code", "Value"],
    unique: Some("Code"),
    nested: &[],
};

const CREATE_INSTANCE: Schema = Schema {
    scalars: &[
        ("ProductCode", Value::Text),
        ("ProductType", Value::Text),
        ("SubscriptionType", SUBSCRIPTION_TYPE),
        ("Period", Value::Int(1, 120)),
        ("PricingCycle", Value::Int(1, 3)),
        (
            "RenewalStatus",
            Value::OneOf(&["AutoRenewal", "ManualRenewal"]),
        ),
        ("RenewPeriod", Value::Int(1, 120)),
        ("ClientToken", Value::Text),
        ("Logistics", Value::Text),
    ],
    required: &["ProductCode", "SubscriptionType"],
    lists: &[BSS_PARAMETERS],
};

const MODIFY_INSTANCE: Schema = Schema {
    scalars: &[
        ("ProductCode", Value::Text),
        ("ProductType", Value::Text),
        ("SubscriptionType", SUBSCRIPTION_TYPE),
        ("ModifyType", Value::OneOf(&["Upgrade", "Downgrade"])),
        ("InstanceId", Value::Text),
        ("ClientToken", Value::Text),
    ],
    required: &[
        "ProductCode",
        "SubscriptionType",
        "ModifyType",
        "InstanceId",
    ],
    lists: &[BSS_PARAMETERS],
};

const RENEW_INSTANCE: Schema = Schema {
    scalars: &[
        ("ProductCode", Value::Text),
        ("ProductType", Value::Text),
        ("InstanceId", Value::Text),
        ("RenewPeriod", Value::Int(1, 36)),
        ("ClientToken", Value::Text),
    ],
    required: &["ProductCode", "InstanceId", "RenewPeriod"],
    lists: &[],
};

const DISK_CATEGORY: Value = Value::Text;

const RUN_INSTANCES: Schema = Schema {
    scalars: &[
        ("Affinity", Value::Text),
        ("Amount", Value::Int(1, 100)),
        ("AutoPay", BOOL),
        ("AutoReleaseTime", Value::Text),
        ("AutoRenew", BOOL),
        ("AutoRenewPeriod", Value::Int(1, 60)),
        ("ClientToken", Value::Text),
        ("ClockOptions.PtpStatus", Value::Text),
        ("CpuOptions.Core", Value::Int(1, 1024)),
        ("CpuOptions.EnableVISST", BOOL),
        ("CpuOptions.EnableVRDT", BOOL),
        ("CpuOptions.NestedVirtualization", Value::Text),
        ("CpuOptions.Numa", Value::Text),
        ("CpuOptions.ThreadsPerCore", Value::Int(1, 2)),
        ("CpuOptions.TopologyType", Value::Text),
        ("CpuOptions.TurboMode", Value::Text),
        (
            "CreditSpecification",
            Value::OneOf(&["Standard", "Unlimited"]),
        ),
        ("DedicatedHostId", Value::Text),
        ("DeletionProtection", BOOL),
        ("DeploymentSetGroupNo", Value::Int(1, 7)),
        ("DeploymentSetId", Value::Text),
        ("Description", Value::Text),
        ("DryRun", BOOL),
        ("HibernationOptions.Configured", BOOL),
        ("HostName", Value::Text),
        ("HpcClusterId", Value::Text),
        ("HttpEndpoint", Value::Text),
        ("HttpPutResponseHopLimit", Value::Int(1, 64)),
        ("HttpTokens", Value::Text),
        ("ImageFamily", Value::Text),
        ("ImageId", Value::Text),
        ("ImageOptions.LoginAsNonRoot", BOOL),
        ("InstanceChargeType", Value::OneOf(&["PrePaid", "PostPaid"])),
        ("InstanceName", Value::Text),
        ("InstanceType", Value::Text),
        (
            "InternetChargeType",
            Value::OneOf(&["PayByBandwidth", "PayByTraffic"]),
        ),
        ("InternetMaxBandwidthIn", Value::Int(1, 10_000)),
        ("InternetMaxBandwidthOut", Value::Int(0, 1_000)),
        ("IoOptimized", Value::OneOf(&["none", "optimized"])),
        ("Ipv6AddressCount", Value::Int(0, 64)),
        ("Isp", Value::Text),
        ("KeyPairName", Value::Text),
        ("LaunchTemplateId", Value::Text),
        ("LaunchTemplateName", Value::Text),
        ("LaunchTemplateVersion", Value::Int(1, 100_000)),
        ("MinAmount", Value::Int(1, 100)),
        ("NetworkInterfaceQueueNumber", Value::Int(1, 256)),
        ("NetworkOptions.BandwidthWeighting", Value::Text),
        ("NetworkOptions.EnableJumboFrame", BOOL),
        ("NetworkOptions.EnableNetworkEncryption", BOOL),
        ("Password", Value::Text),
        ("PasswordInherit", BOOL),
        ("Period", Value::Int(1, 60)),
        ("PeriodUnit", Value::OneOf(&["Week", "Month"])),
        ("PrivateDnsNameOptions.EnableInstanceIdDnsAAAARecord", BOOL),
        ("PrivateDnsNameOptions.EnableInstanceIdDnsARecord", BOOL),
        ("PrivateDnsNameOptions.EnableIpDnsARecord", BOOL),
        ("PrivateDnsNameOptions.EnableIpDnsPtrRecord", BOOL),
        ("PrivateDnsNameOptions.HostnameType", Value::Text),
        ("PrivateIpAddress", Value::Text),
        ("PrivatePoolOptions.Id", Value::Text),
        ("PrivatePoolOptions.MatchCriteria", Value::Text),
        ("RamRoleName", Value::Text),
        ("ResourceGroupId", Value::Text),
        ("SchedulerOptions.DedicatedHostClusterId", Value::Text),
        ("SecurityEnhancementStrategy", Value::Text),
        ("SecurityGroupId", Value::Text),
        ("SecurityOptions.ConfidentialComputingMode", Value::Text),
        ("SecurityOptions.TrustedSystemMode", Value::Text),
        ("SpotDuration", Value::Int(0, 6)),
        ("SpotInterruptionBehavior", Value::Text),
        ("SpotPriceLimit", Value::Text),
        (
            "SpotStrategy",
            Value::OneOf(&["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"]),
        ),
        ("StorageSetId", Value::Text),
        ("StorageSetPartitionNumber", Value::Int(1, 1_000)),
        ("SystemDisk.AutoSnapshotPolicyId", Value::Text),
        ("SystemDisk.BurstingEnabled", BOOL),
        ("SystemDisk.Category", DISK_CATEGORY),
        ("SystemDisk.Description", Value::Text),
        ("SystemDisk.DiskName", Value::Text),
        ("SystemDisk.EncryptAlgorithm", Value::Text),
        ("SystemDisk.Encrypted", BOOL),
        ("SystemDisk.KMSKeyId", Value::Text),
        (
            "SystemDisk.PerformanceLevel",
            Value::OneOf(&["PL0", "PL1", "PL2", "PL3"]),
        ),
        ("SystemDisk.ProvisionedIops", Value::Int(0, 1_000_000)),
        ("SystemDisk.Size", Value::Int(1, 2_048)),
        ("SystemDisk.StorageClusterId", Value::Text),
        ("Tenancy", Value::Text),
        ("UniqueSuffix", BOOL),
        ("UserData", Value::Text),
        ("VSwitchId", Value::Text),
        ("ZoneId", Value::Text),
    ],
    required: &[],
    lists: &[
        List {
            prefix: "DataDisk",
            max: 16,
            fields: &[
                ("AutoSnapshotPolicyId", Value::Text),
                ("BurstingEnabled", BOOL),
                ("Category", DISK_CATEGORY),
                ("DeleteWithInstance", BOOL),
                ("Description", Value::Text),
                ("Device", Value::Text),
                ("DiskName", Value::Text),
                ("EncryptAlgorithm", Value::Text),
                ("Encrypted", BOOL),
                ("KMSKeyId", Value::Text),
                (
                    "PerformanceLevel",
                    Value::OneOf(&["PL0", "PL1", "PL2", "PL3"]),
                ),
                ("ProvisionedIops", Value::Int(0, 1_000_000)),
                ("Size", Value::Int(1, 65_536)),
                ("SnapshotId", Value::Text),
                ("StorageClusterId", Value::Text),
            ],
            required: &[],
            unique: None,
            nested: &[],
        },
        List {
            prefix: "Tag",
            max: 20,
            fields: &[("Key", Value::Text), ("Value", Value::Text)],
            required: &["Key"],
            unique: Some("Key"),
            nested: &[],
        },
        List {
            prefix: "Arn",
            max: 16,
            fields: &[
                ("AssumeRoleFor", Value::Text),
                ("RoleType", Value::Text),
                ("Rolearn", Value::Text),
            ],
            required: &[],
            unique: None,
            nested: &[],
        },
        List {
            prefix: "NetworkInterface",
            max: 8,
            fields: &[
                ("DeleteOnRelease", BOOL),
                ("Description", Value::Text),
                ("InstanceType", Value::Text),
                ("Ipv6AddressCount", Value::Int(0, 64)),
                ("NetworkCardIndex", Value::Int(0, 64)),
                ("NetworkInterfaceId", Value::Text),
                ("NetworkInterfaceName", Value::Text),
                ("NetworkInterfaceTrafficMode", Value::Text),
                ("PrimaryIpAddress", Value::Text),
                ("QueueNumber", Value::Int(1, 256)),
                ("QueuePairNumber", Value::Int(1, 256)),
                ("RxQueueSize", Value::Int(1, 65_536)),
                ("SecondaryPrivateIpAddressCount", Value::Int(0, 64)),
                ("SecurityGroupId", Value::Text),
                ("SourceDestCheck", BOOL),
                ("TxQueueSize", Value::Int(1, 65_536)),
                ("VSwitchId", Value::Text),
            ],
            required: &[],
            unique: None,
            nested: &[("SecurityGroupIds", 16), ("Ipv6Address", 64)],
        },
        List {
            prefix: "SecurityGroupIds",
            max: 16,
            fields: &[],
            required: &[],
            unique: None,
            nested: &[],
        },
        List {
            prefix: "HostNames",
            max: 100,
            fields: &[],
            required: &[],
            unique: None,
            nested: &[],
        },
        List {
            prefix: "Ipv6Address",
            max: 64,
            fields: &[],
            required: &[],
            unique: None,
            nested: &[],
        },
    ],
};

/// The schema of a money-moving action, if the gateway knows how to read
/// it. A purchase-kind action without one is refused before it is priced.
fn schema(version: &str, action: &str) -> Option<&'static Schema> {
    Some(match (version, action) {
        (BSS, "CreateInstance") => &CREATE_INSTANCE,
        (BSS, "ModifyInstance") => &MODIFY_INSTANCE,
        (BSS, "RenewInstance") => &RENEW_INSTANCE,
        (ECS, "RunInstances") => &RUN_INSTANCES,
        _ => return None,
    })
}

fn invalid(code: &'static str, message: String) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        code,
        message,
        "purchase_parameters",
    )
}

fn check_value(name: &str, value: &str, rule: Value) -> Result<()> {
    match rule {
        Value::Text => Ok(()),
        Value::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(invalid(
                    "InvalidParameter",
                    format!(
                        "The specified parameter \"{name}\" is not valid: \"{value}\" is not one of {}.",
                        allowed.join(", ")
                    ),
                ))
            }
        }
        Value::Int(min, max) => {
            let plain = !value.is_empty()
                && value.len() <= 10
                && value.bytes().all(|b| b.is_ascii_digit())
                && (value == "0" || !value.starts_with('0'));
            match value.parse::<u32>() {
                Ok(n) if plain && (min..=max).contains(&n) => Ok(()),
                _ => Err(invalid(
                    "InvalidParameter",
                    format!(
                        "The specified parameter \"{name}\" is not valid: \"{value}\" is not a whole number from {min} to {max}."
                    ),
                )),
            }
        }
    }
}

/// `N` of a list index: a plain positive integer (no sign, no leading
/// zero, so `01` and `1` cannot name the same entry two ways).
fn index(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The entries seen of one list: index → the fields given.
type Entries<'a> = std::collections::BTreeMap<u32, Vec<(&'a str, &'a str)>>;

/// Refuses a money-moving call that can be read more than one way (see the
/// module docs). Calls of other actions pass untouched. Linear in the
/// number of parameters (times the small, fixed schema).
pub fn check(call: &AliyunCall) -> Result<()> {
    let Some(schema) = schema(&call.version, &call.action) else {
        return Ok(());
    };
    let mut lists: Vec<Entries<'_>> = vec![Entries::new(); schema.lists.len()];
    // Nested lists: (list, entry, nested list) → indexes seen.
    let mut nested: std::collections::BTreeMap<(usize, u32, usize), Vec<u32>> =
        std::collections::BTreeMap::new();
    for (name, value) in call.params() {
        // Signature, format, credentials and owner (the owner rules in
        // `auth` decide what the owner fields may say), and the region.
        if super::is_call_or_owner_param(name) || name == "RegionId" {
            continue;
        }
        if let Some((_, rule)) = schema.scalars.iter().find(|(n, _)| *n == name) {
            check_value(name, value, *rule)?;
            continue;
        }
        let unknown = || {
            invalid(
                "InvalidParameter.Unknown",
                format!(
                    "{} has no parameter \"{name}\"; a purchase is forwarded only as it was priced, so unknown parameters are refused.",
                    call.action
                ),
            )
        };
        let Some((li, list, rest)) = schema.lists.iter().enumerate().find_map(|(i, l)| {
            name.strip_prefix(l.prefix)
                .and_then(|r| r.strip_prefix('.'))
                .map(|r| (i, l, r))
        }) else {
            return Err(unknown());
        };
        let (n, field) = match rest.split_once('.') {
            Some((n, f)) => (n, Some(f)),
            None => (rest, None),
        };
        let n = index(n).filter(|n| *n <= list.max).ok_or_else(|| {
            invalid(
                "InvalidParameter",
                format!(
                    "The specified parameter \"{name}\" is not valid: {}.N takes N from 1 to {}.",
                    list.prefix, list.max
                ),
            )
        })?;
        match field {
            None if list.fields.is_empty() => {
                lists[li].entry(n).or_default().push(("", value));
            }
            Some(f) if !list.fields.is_empty() => {
                if let Some((_, rule)) = list.fields.iter().find(|(fname, _)| *fname == f) {
                    check_value(name, value, *rule)?;
                    lists[li].entry(n).or_default().push((f, value));
                } else if let Some((ni, (sub, max))) = f.split_once('.').and_then(|(sub, m)| {
                    list.nested
                        .iter()
                        .enumerate()
                        .find(|(_, (s, _))| *s == sub)
                        .filter(|_| index(m).is_some())
                }) {
                    let m = f
                        .rsplit_once('.')
                        .and_then(|(_, m)| index(m))
                        .filter(|m| m <= max)
                        .ok_or_else(|| {
                            invalid(
                                "InvalidParameter",
                                format!(
                                    "The specified parameter \"{name}\" is not valid: {sub}.M takes M from 1 to {max}."
                                ),
                            )
                        })?;
                    lists[li].entry(n).or_default();
                    nested.entry((li, n, ni)).or_default().push(m);
                } else {
                    return Err(unknown());
                }
            }
            _ => return Err(unknown()),
        }
    }
    for name in schema.required {
        if call.param(name).is_none_or(str::is_empty) {
            return Err(Error::missing(name));
        }
    }
    for (list, entries) in schema.lists.iter().zip(&lists) {
        check_entries(list, entries)?;
    }
    for ((li, n, ni), mut seen) in nested {
        let list = &schema.lists[li];
        let (sub, _) = list.nested[ni];
        seen.sort_unstable();
        contiguous(&format!("{}.{n}.{sub}", list.prefix), &seen)?;
    }
    Ok(())
}

/// Indexes `1..=n` with none missing.
fn contiguous(prefix: &str, sorted: &[u32]) -> Result<()> {
    for (i, n) in sorted.iter().enumerate() {
        let expected = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if *n != expected {
            return Err(invalid(
                "InvalidParameter",
                format!(
                    "The list {prefix}.N is not valid: its entries must be numbered 1, 2, 3, … with none missing ({prefix}.{expected} is missing)."
                ),
            ));
        }
    }
    Ok(())
}

fn check_entries(list: &List, entries: &Entries<'_>) -> Result<()> {
    let indexes: Vec<u32> = entries.keys().copied().collect();
    contiguous(list.prefix, &indexes)?;
    let mut unique: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (n, fields) in entries {
        for need in list.required {
            if !fields.iter().any(|(f, v)| f == need && !v.is_empty()) {
                return Err(Error::missing(&format!("{}.{n}.{need}", list.prefix)));
            }
        }
        if let Some(key) = list.unique
            && let Some((_, v)) = fields.iter().find(|(f, _)| *f == key)
            && !unique.insert(v.to_ascii_lowercase())
        {
            return Err(invalid(
                "InvalidParameter.Duplicate",
                format!(
                    "The list {}.N names {key} \"{v}\" more than once: each may be given once.",
                    list.prefix
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the gateway can read `action` of `version` as a purchase.
pub fn readable(version: &str, action: &str) -> bool {
    schema(version, action).is_some()
}

#[cfg(test)]
mod tests;
