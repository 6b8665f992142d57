//! The issued keys, resolved: AccessKey id → secret and what it may act as.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{CustomersFile, KeyKind};
use crate::secret::SecretString;

/// A customer of the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The partner's id for the customer.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Alibaba Cloud UID (`OwnerId`).
    pub aliyun_uid: String,
    /// Customer group.
    pub group: Option<String>,
    /// Free-form tags (for pricing modules).
    pub tags: Vec<String>,
}

impl Customer {
    /// The customer as configured in `customers.toml`.
    pub fn from_config(c: &crate::config::CustomerConfig) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            aliyun_uid: c.aliyun_uid.clone(),
            group: c.group.clone(),
            tags: c.tags.clone(),
        }
    }
}

/// What a key may act as.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Exactly this customer.
    Customer(Arc<Customer>),
    /// Any of these customers, named by `OwnerId`.
    Frontend {
        /// The customers the frontend may act for.
        acts_for: Vec<Arc<Customer>>,
    },
}

/// One resolved key.
#[derive(Debug)]
pub struct KeyEntry {
    /// The AccessKey id.
    pub access_key_id: String,
    /// The secret (redacted in `Debug`).
    pub secret: SecretString,
    /// What it may act as.
    pub principal: Principal,
    /// Disabled keys are refused.
    pub enabled: bool,
}

/// All issued keys, by AccessKey id.
#[derive(Debug, Default)]
pub struct KeyTable {
    keys: HashMap<String, KeyEntry>,
    customers: HashMap<String, Arc<Customer>>,
}

impl KeyTable {
    /// Resolves a customers file, loading every key's secret.
    pub fn from_file(file: &CustomersFile, base_dir: &Path) -> anyhow::Result<Self> {
        file.validate()?;
        let customers: HashMap<String, Arc<Customer>> = file
            .customers
            .iter()
            .map(|c| (c.id.clone(), Arc::new(Customer::from_config(c))))
            .collect();
        let mut keys = HashMap::new();
        for k in &file.keys {
            let secret = k
                .secret
                .load(base_dir, &format!("key {}", k.access_key_id))
                .context("loading a customer key")?;
            let principal = match k.kind {
                KeyKind::Customer => {
                    let id = k.customer.as_deref().unwrap_or_default();
                    Principal::Customer(customers.get(id).cloned().context("validated above")?)
                }
                KeyKind::Frontend => Principal::Frontend {
                    acts_for: k
                        .acts_for
                        .iter()
                        .filter_map(|id| customers.get(id).cloned())
                        .collect(),
                },
            };
            keys.insert(
                k.access_key_id.clone(),
                KeyEntry {
                    access_key_id: k.access_key_id.clone(),
                    secret,
                    principal,
                    enabled: k.enabled,
                },
            );
        }
        Ok(Self { keys, customers })
    }

    /// Builds a table directly (tests, benches).
    pub fn insert(&mut self, access_key_id: &str, secret: &str, principal: Principal) {
        if let Principal::Customer(c) = &principal {
            self.customers.insert(c.id.clone(), c.clone());
        }
        self.keys.insert(
            access_key_id.to_owned(),
            KeyEntry {
                access_key_id: access_key_id.to_owned(),
                secret: SecretString::from(secret.to_owned()),
                principal,
                enabled: true,
            },
        );
    }

    /// The key with this id.
    pub fn get(&self, access_key_id: &str) -> Option<&KeyEntry> {
        self.keys.get(access_key_id)
    }

    /// A customer by id.
    pub fn customer(&self, id: &str) -> Option<&Arc<Customer>> {
        self.customers.get(id)
    }

    /// How many keys are issued.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is issued.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
