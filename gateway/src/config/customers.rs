//! The customers file: who the partner's customers are and which keys the
//! partner issued (secrets by reference only).

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::secret::SecretRef;

/// `customers.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CustomersFile {
    /// The customers.
    #[serde(rename = "customer", default)]
    pub customers: Vec<CustomerConfig>,
    /// The keys.
    #[serde(rename = "key", default)]
    pub keys: Vec<KeyConfig>,
    /// The AK/SKs the partner issued customers for Huawei calls
    /// (`SDK-HMAC-SHA256`), secrets by reference.
    #[serde(rename = "huawei_key", default)]
    pub huawei_keys: Vec<HuaweiKeyConfig>,
}

/// One AK/SK the partner issued a customer for Huawei Cloud calls through
/// Tollgate (never a key Huawei knows: the outbound call is signed with the
/// credentials the partner holds for that customer, `[partner.huawei]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiKeyConfig {
    /// The AK the customer's SDK sends.
    pub access_key_id: String,
    /// The customer it acts as (who must have a `huawei_domain_id`).
    pub customer: String,
    /// A disabled key is refused like an unknown one (`APIG.0301`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its SK: `secret_env` or `secret_file`.
    #[serde(flatten)]
    pub secret: SecretRef,
}

/// Most tags a customer may carry: a pricing module gets them on every
/// call, so they stay small (the host also bounds every text a module sees).
pub const MAX_TAGS: usize = 32;

/// Longest tag, in bytes (well under the pricing host's text limit).
pub const MAX_TAG_BYTES: usize = 128;

/// One customer of the partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerConfig {
    /// The partner's id for the customer (`acme`).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The customer's Alibaba Cloud UID: what Tollgate puts in `OwnerId`.
    pub aliyun_uid: String,
    /// Customer group (pricing and permission scopes).
    #[serde(default)]
    pub group: Option<String>,
    /// Free-form tags, passed to pricing modules with every order (the
    /// WIT `customer.tags`), e.g. `["tier:gold", "region:east"]`. At most
    /// [`MAX_TAGS`] of at most [`MAX_TAG_BYTES`] bytes each.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The customer's Huawei Cloud account (domain) id: what Tollgate puts
    /// in `X-Domain-Id`. Absent: the customer has no Huawei account.
    #[serde(default)]
    pub huawei_domain_id: Option<String>,
}

/// Whose key it is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A customer's own key: acts only as that customer.
    Customer,
    /// A partner frontend's key: names the customer in `OwnerId`, limited
    /// to `acts_for`.
    Frontend,
}

/// One issued AccessKey.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The AccessKey id the caller sends.
    pub access_key_id: String,
    /// Customer or frontend key.
    pub kind: KeyKind,
    /// For a customer key: the customer id.
    #[serde(default)]
    pub customer: Option<String>,
    /// For a frontend key: the customer ids it may act for.
    #[serde(default)]
    pub acts_for: Vec<String>,
    /// A disabled key is refused with `InvalidAccessKeyId.Inactive`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its secret: `secret_env` or `secret_file`.
    #[serde(flatten)]
    pub secret: SecretRef,
}

fn yes() -> bool {
    true
}

impl CustomersFile {
    /// Reads and cross-checks the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: Self = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        file.validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(file)
    }

    /// Cross-references: unique ids, keys pointing at known customers.
    pub fn validate(&self) -> anyhow::Result<()> {
        for c in &self.customers {
            anyhow::ensure!(
                c.tags.len() <= MAX_TAGS,
                "customer `{}`: at most {MAX_TAGS} tags",
                c.id
            );
            for t in &c.tags {
                anyhow::ensure!(
                    !t.is_empty() && t.len() <= MAX_TAG_BYTES && !t.chars().any(char::is_control),
                    "customer `{}`: tag {t:?} must be 1 to {MAX_TAG_BYTES} bytes without control characters",
                    c.id
                );
            }
        }
        let mut ids = std::collections::HashSet::new();
        let mut uids = std::collections::HashSet::new();
        for c in &self.customers {
            anyhow::ensure!(
                ids.insert(c.id.as_str()),
                "customer id `{}` appears twice",
                c.id
            );
            anyhow::ensure!(
                uids.insert(c.aliyun_uid.as_str()),
                "aliyun_uid {} is given to two customers",
                c.aliyun_uid
            );
            anyhow::ensure!(
                !c.aliyun_uid.is_empty() && c.aliyun_uid.bytes().all(|b| b.is_ascii_digit()),
                "customer `{}`: aliyun_uid must be a numeric UID",
                c.id
            );
        }
        let mut domains = std::collections::HashSet::new();
        for c in &self.customers {
            if let Some(d) = &c.huawei_domain_id {
                anyhow::ensure!(
                    !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "customer `{}`: huawei_domain_id must be alphanumeric",
                    c.id
                );
                anyhow::ensure!(
                    domains.insert(d.as_str()),
                    "huawei_domain_id {d} is given to two customers"
                );
            }
        }
        let mut aks = std::collections::HashSet::new();
        for k in &self.huawei_keys {
            anyhow::ensure!(
                aks.insert(k.access_key_id.as_str()),
                "huawei key `{}` appears twice",
                k.access_key_id
            );
            let c = self
                .customers
                .iter()
                .find(|c| c.id == k.customer)
                .with_context(|| {
                    format!(
                        "huawei key `{}`: unknown customer `{}`",
                        k.access_key_id, k.customer
                    )
                })?;
            anyhow::ensure!(
                c.huawei_domain_id.is_some(),
                "huawei key `{}`: customer `{}` has no huawei_domain_id",
                k.access_key_id,
                k.customer
            );
        }
        let mut aks = std::collections::HashSet::new();
        for k in &self.keys {
            anyhow::ensure!(
                aks.insert(k.access_key_id.as_str()),
                "key `{}` appears twice",
                k.access_key_id
            );
            match k.kind {
                KeyKind::Customer => {
                    let c = k.customer.as_deref().with_context(|| {
                        format!("customer key `{}` names no `customer`", k.access_key_id)
                    })?;
                    anyhow::ensure!(
                        ids.contains(c),
                        "key `{}`: unknown customer `{c}`",
                        k.access_key_id
                    );
                    anyhow::ensure!(
                        k.acts_for.is_empty(),
                        "key `{}`: only frontend keys take `acts_for`",
                        k.access_key_id
                    );
                }
                KeyKind::Frontend => {
                    anyhow::ensure!(
                        k.customer.is_none(),
                        "frontend key `{}`: use `acts_for`, not `customer`",
                        k.access_key_id
                    );
                    for c in &k.acts_for {
                        anyhow::ensure!(
                            ids.contains(c.as_str()),
                            "key `{}`: unknown customer `{c}`",
                            k.access_key_id
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
