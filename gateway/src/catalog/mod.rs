//! The catalog: what each provider API is, as data (`policies/catalog/`).
//!
//! * `aliyun.toml`: every Alibaba action Tollgate serves, by product (RPC
//!   `Version`) and action name → kind and RAM action(s).
//! * `huawei.toml`: every row of the Huawei BSS permission table (seed 003,
//!   all 27 rows) → method + path pattern → kind and permission code(s).
//!
//! A permission may be `A|B`: alternatives, either of which grants the API.
//! The request path uses [`Catalog::aliyun`] / [`Catalog::huawei`] to
//! classify a call (listed, unlisted, malformed) and [`Catalog::aliyun_label`]
//! to keep metric labels bounded. Lookups never allocate.
//!
//! The catalog files are compiled into the binary too ([`Catalog::builtin`]),
//! so the gateway has its catalog even when `[authz]` is not configured.

pub(crate) mod code;
mod load;
mod path;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use code::{Code, CodeError, CodeId, MAX_SEGMENTS, parse_alternatives};
pub(crate) use load::toml_error;
pub use load::{MAX_CATALOG_FILE_BYTES, MAX_CODES};
pub use path::{PathError, PathPattern, normalise};

use crate::diagnostic::Diagnostics;

/// The file names inside the catalog folder.
pub const ALIYUN_FILE: &str = "aliyun.toml";
/// See [`ALIYUN_FILE`].
pub const HUAWEI_FILE: &str = "huawei.toml";

/// What a call does to money and resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// Which cloud an API belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Alibaba Cloud (RPC actions).
    Aliyun,
    /// Huawei Cloud (REST method + path).
    Huawei,
}

impl Provider {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aliyun => "aliyun",
            Self::Huawei => "huawei",
        }
    }
}

/// A Huawei API's HTTP route.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// The row of the seed's permission table.
    pub row: u32,
    /// The HTTP method.
    pub method: http::Method,
    /// The path pattern.
    pub path: PathPattern,
}

/// One catalogued API.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Whose API.
    pub provider: Provider,
    /// Product (`bssopenapi`, `ecs`; `bss` for Huawei).
    pub product: String,
    /// Action (`QueryOrders`) or SDK operation (`ListCustomerOrders`).
    pub name: String,
    /// What it does.
    pub kind: Kind,
    /// The permission codes, any one of which grants the API (never empty).
    pub permissions: Box<[CodeId]>,
    /// Huawei only: method, path pattern, seed row.
    pub route: Option<HttpRoute>,
    /// Where the entry is written (file and line), for `policy explain`.
    pub source: String,
}

/// An Alibaba RPC product.
#[derive(Debug, Clone)]
pub struct AliyunProduct {
    /// Product name (`bssopenapi`).
    pub name: String,
    /// Its RPC `Version` (`2017-12-14`).
    pub version: String,
    /// Its RAM service code (`bssapi`), naming unlisted actions.
    pub ram_code: String,
    /// `(lower-case action, entry index)`, sorted: binary-searched.
    actions: Vec<(Box<str>, usize)>,
}

/// How an Alibaba call is classified.
#[derive(Debug, Clone, Copy)]
pub enum AliyunClass<'a> {
    /// The action is catalogued.
    Listed(&'a Entry),
    /// The product is known, the action is not: the seed's rule for
    /// unlisted APIs applies.
    Unlisted(&'a AliyunProduct),
    /// No catalogued product speaks this `Version`.
    UnknownProduct,
}

/// How a Huawei call is classified.
#[derive(Debug, Clone, Copy)]
pub enum HuaweiClass<'a> {
    /// A row of the permission table.
    Listed(&'a Entry),
    /// Not in the table: the seed's rule for unlisted APIs applies.
    Unlisted,
    /// A path with `.`/`..` segments: refused, never classified as unlisted.
    Malformed,
}

/// The loaded catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    codes: Vec<Code>,
    entries: Vec<Entry>,
    products: Vec<AliyunProduct>,
    /// Indices of Huawei entries, in row order.
    huawei: Vec<usize>,
    /// Indices of every Huawei route's entry: the rows' own paths and
    /// their other SDK paths (`also`), each carrying the row's codes.
    huawei_routes: Vec<usize>,
    files: Vec<PathBuf>,
}

impl Catalog {
    /// Loads `aliyun.toml` and `huawei.toml` from `dir`; every problem is
    /// reported with file and position.
    pub fn load(dir: &Path) -> Result<Self, Diagnostics> {
        load::load_dir(dir)
    }

    /// Builds a catalog from file texts (the paths only name them in errors).
    pub fn from_texts(aliyun: (&Path, &str), huawei: (&Path, &str)) -> Result<Self, Diagnostics> {
        load::from_texts(aliyun, huawei)
    }

    /// The catalog shipped with this build (`policies/catalog/` at build time).
    pub fn builtin() -> Result<Self, Diagnostics> {
        Self::from_texts(
            (
                Path::new("<built-in>/catalog/aliyun.toml"),
                include_str!("../../../policies/catalog/aliyun.toml"),
            ),
            (
                Path::new("<built-in>/catalog/huawei.toml"),
                include_str!("../../../policies/catalog/huawei.toml"),
            ),
        )
    }

    /// Every permission code, indexed by [`CodeId`].
    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// One code.
    pub fn code(&self, id: CodeId) -> &Code {
        &self.codes[id.index()]
    }

    /// The id of `text`, compared by the case rules (see [`Code`]).
    pub fn find_code(&self, text: &str) -> Option<CodeId> {
        let wanted = Code::parse(text).ok()?;
        self.codes
            .iter()
            .position(|c| c.same_as(&wanted))
            .and_then(|i| u16::try_from(i).ok())
            .map(CodeId)
    }

    /// Every entry (Alibaba first, then Huawei in row order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The Alibaba products.
    pub fn products(&self) -> &[AliyunProduct] {
        &self.products
    }

    /// The Huawei entries, in row order.
    pub fn huawei_entries(&self) -> impl Iterator<Item = &Entry> {
        self.huawei.iter().map(|&i| &self.entries[i])
    }

    /// The files the catalog was read from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Classifies an Alibaba call by `Version` and `Action`. Action names
    /// compare ASCII case-insensitively, so a call cannot dodge its
    /// permission by changing case.
    pub fn aliyun(&self, version: &str, action: &str) -> AliyunClass<'_> {
        let Some(product) = self.products.iter().find(|p| p.version == version) else {
            return AliyunClass::UnknownProduct;
        };
        match product
            .actions
            .binary_search_by(|(name, _)| cmp_ignore_case(name, action))
        {
            Ok(i) => AliyunClass::Listed(&self.entries[product.actions[i].1]),
            Err(_) => AliyunClass::Unlisted(product),
        }
    }

    /// The catalogued spelling of `action` in any Alibaba product: the metric
    /// label (anything else is counted as `other`, keeping cardinality bounded).
    pub fn aliyun_label(&self, action: &str) -> Option<&str> {
        self.products.iter().find_map(|p| {
            p.actions
                .binary_search_by(|(name, _)| cmp_ignore_case(name, action))
                .ok()
                .map(|i| self.entries[p.actions[i].1].name.as_str())
        })
    }

    /// Classifies a Huawei call by method and path (no query string).
    pub fn huawei(&self, method: &http::Method, path: &str) -> HuaweiClass<'_> {
        let Some(segments) = normalise(path) else {
            return HuaweiClass::Malformed;
        };
        match self.huawei_match(method, &segments) {
            Some(e) => HuaweiClass::Listed(e),
            None => HuaweiClass::Unlisted,
        }
    }

    /// The permission-table row serving `method` + `path`, if any.
    pub fn huawei_route(&self, method: &http::Method, path: &str) -> Option<&Entry> {
        match self.huawei(method, path) {
            HuaweiClass::Listed(e) => Some(e),
            HuaweiClass::Unlisted | HuaweiClass::Malformed => None,
        }
    }

    fn huawei_match(&self, method: &http::Method, segments: &[Cow<'_, str>]) -> Option<&Entry> {
        self.huawei_routes
            .iter()
            .map(|&i| &self.entries[i])
            .find(|e| {
                e.route
                    .as_ref()
                    .is_some_and(|r| r.method == *method && r.path.matches(segments))
            })
    }

    /// The catalog's Alibaba entry named `action` (any product), for
    /// `policy explain`; `version` narrows it to one product.
    pub fn aliyun_by_name(&self, action: &str, version: Option<&str>) -> Option<&Entry> {
        self.products
            .iter()
            .filter(|p| version.is_none_or(|v| p.version == v))
            .find_map(|p| match self.aliyun(&p.version, action) {
                AliyunClass::Listed(e) => Some(e),
                AliyunClass::Unlisted(_) | AliyunClass::UnknownProduct => None,
            })
    }
}

/// ASCII case-insensitive ordering (the order `actions` is sorted in).
fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}
