//! Reading and checking the catalog files. Every problem is collected (not
//! just the first) with its file, line and column; a catalog with an error
//! is never built.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{
    AliyunProduct, Catalog, Code, CodeId, Entry, HttpRoute, Kind, PathPattern, Provider,
    parse_alternatives,
};
use crate::diagnostic::{Diagnostic, Diagnostics, line_column};

/// Largest catalog file read. 1 MiB: the shipped files are a few KiB and a
/// full product catalog a few hundred KiB; more is a wrong file.
pub const MAX_CATALOG_FILE_BYTES: u64 = 1 << 20;

/// The most distinct permission codes: ids are `u16`, and per-principal
/// indexes are sized by the code count.
pub const MAX_CODES: usize = u16::MAX as usize;

/// Methods a Huawei route may name.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliyunFile {
    #[serde(default, rename = "product")]
    products: Vec<RawProduct>,
    #[serde(default, rename = "action")]
    actions: Vec<RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    name: Spanned<String>,
    version: Spanned<String>,
    ram_code: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    product: Spanned<String>,
    action: Spanned<String>,
    kind: Kind,
    permission: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HuaweiFile {
    #[serde(default, rename = "api")]
    apis: Vec<RawApi>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    row: Spanned<u32>,
    operation: String,
    method: Spanned<String>,
    path: Spanned<String>,
    kind: Kind,
    permission: Spanned<String>,
    /// Other `METHOD /path` routes of the same API (older or newer SDK
    /// paths): each needs the row's permission.
    #[serde(default)]
    also: Vec<Spanned<String>>,
}

/// Reads `dir/aliyun.toml` and `dir/huawei.toml`.
pub(super) fn load_dir(dir: &Path) -> Result<Catalog, Diagnostics> {
    let aliyun = dir.join(super::ALIYUN_FILE);
    let huawei = dir.join(super::HUAWEI_FILE);
    let mut problems = Vec::new();
    let a = read(&aliyun, &mut problems);
    let h = read(&huawei, &mut problems);
    match (a, h) {
        (Some(a), Some(h)) => from_texts((&aliyun, &a), (&huawei, &h)),
        _ => Err(Diagnostics(problems)),
    }
}

fn read(path: &Path, problems: &mut Vec<Diagnostic>) -> Option<String> {
    let meta = std::fs::metadata(path);
    if let Ok(m) = &meta
        && m.len() > MAX_CATALOG_FILE_BYTES
    {
        problems.push(Diagnostic::error(
            path,
            "",
            format!("larger than {MAX_CATALOG_FILE_BYTES} bytes: not a catalog file"),
        ));
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(Diagnostic::error(path, "", format!("cannot read: {e}")));
            None
        }
    }
}

/// A TOML syntax or shape error, placed.
pub(crate) fn toml_error(file: &Path, text: &str, e: &toml::de::Error) -> Diagnostic {
    let d = Diagnostic::error(file, "", e.message().to_owned());
    match e.span() {
        Some(span) => d.at_offset(text, span.start),
        None => d,
    }
}

/// Builds the code table while entries are read.
struct Builder {
    catalog: Catalog,
    problems: Vec<Diagnostic>,
}

impl Builder {
    fn err<T>(&mut self, file: &Path, text: &str, at: &Spanned<T>, path: String, msg: String) {
        self.problems
            .push(Diagnostic::error(file, path, msg).at_offset(text, at.span().start));
    }

    /// Interns `A|B` as code ids; `segments` is the form this provider uses.
    fn permissions(
        &mut self,
        file: &Path,
        text: &str,
        raw: &Spanned<String>,
        path: &str,
        segments: usize,
    ) -> Option<Box<[CodeId]>> {
        let codes = match parse_alternatives(raw.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                self.err(
                    file,
                    text,
                    raw,
                    format!("{path}.permission"),
                    format!("`{}`: {e}", raw.get_ref()),
                );
                return None;
            }
        };
        let mut ids: Vec<CodeId> = Vec::with_capacity(codes.len());
        for code in codes {
            if code.segments().len() != segments {
                let form = if segments == 3 {
                    "Huawei codes are `service:resource-type:operation`"
                } else {
                    "Alibaba RAM actions are `service:ActionName`"
                };
                self.err(
                    file,
                    text,
                    raw,
                    format!("{path}.permission"),
                    format!("`{code}`: {form}"),
                );
                return None;
            }
            let Some(id) = self.intern(code) else {
                self.err(
                    file,
                    text,
                    raw,
                    format!("{path}.permission"),
                    format!("more than {MAX_CODES} distinct permission codes"),
                );
                return None;
            };
            if ids.contains(&id) {
                self.err(
                    file,
                    text,
                    raw,
                    format!("{path}.permission"),
                    "the same code is listed twice".into(),
                );
                return None;
            }
            ids.push(id);
        }
        Some(ids.into())
    }

    fn intern(&mut self, code: Code) -> Option<CodeId> {
        if let Some(i) = self.catalog.codes.iter().position(|c| c.same_as(&code)) {
            return u16::try_from(i).ok().map(CodeId);
        }
        if self.catalog.codes.len() >= MAX_CODES {
            return None;
        }
        let id = CodeId(u16::try_from(self.catalog.codes.len()).ok()?);
        self.catalog.codes.push(code);
        Some(id)
    }

    fn aliyun(&mut self, file: &Path, text: &str) {
        let parsed: AliyunFile = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => return self.problems.push(toml_error(file, text, &e)),
        };
        for (i, p) in parsed.products.iter().enumerate() {
            let path = format!("product[{i}]");
            if self
                .catalog
                .products
                .iter()
                .any(|q| q.name == *p.name.get_ref())
            {
                self.err(
                    file,
                    text,
                    &p.name,
                    path.clone(),
                    "product listed twice".into(),
                );
            }
            if self
                .catalog
                .products
                .iter()
                .any(|q| q.version == *p.version.get_ref())
            {
                self.err(
                    file,
                    text,
                    &p.version,
                    path.clone(),
                    "two products with the same Version".into(),
                );
            }
            if Code::parse(&format!("{}:X", p.ram_code.get_ref())).is_err() {
                self.err(
                    file,
                    text,
                    &p.ram_code,
                    path,
                    "a RAM code is a lower-case service name (`bssapi`)".into(),
                );
            }
            self.catalog.products.push(AliyunProduct {
                name: p.name.get_ref().clone(),
                version: p.version.get_ref().clone(),
                ram_code: p.ram_code.get_ref().clone(),
                actions: Vec::new(),
            });
        }
        for (i, a) in parsed.actions.iter().enumerate() {
            let path = format!("action[{i}]");
            let name = a.action.get_ref();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                self.err(
                    file,
                    text,
                    &a.action,
                    path.clone(),
                    format!("`{name}` is not an RPC action name (letters and digits)"),
                );
                continue;
            }
            let Some(pi) = self
                .catalog
                .products
                .iter()
                .position(|p| p.name == *a.product.get_ref())
            else {
                self.err(
                    file,
                    text,
                    &a.product,
                    path,
                    format!(
                        "unknown product `{}` (add a [[product]])",
                        a.product.get_ref()
                    ),
                );
                continue;
            };
            let lower = name.to_ascii_lowercase().into_boxed_str();
            if self.catalog.products[pi]
                .actions
                .iter()
                .any(|(n, _)| *n == lower)
            {
                self.err(
                    file,
                    text,
                    &a.action,
                    path,
                    format!("`{name}` is listed twice for this product"),
                );
                continue;
            }
            let Some(permissions) = self.permissions(file, text, &a.permission, &path, 2) else {
                continue;
            };
            let (line, _) = line_column(text, a.action.span().start);
            let index = self.catalog.entries.len();
            self.catalog.entries.push(Entry {
                provider: Provider::Aliyun,
                product: a.product.get_ref().clone(),
                name: name.clone(),
                kind: a.kind,
                permissions,
                route: None,
                source: format!("{}:{line}", file.display()),
            });
            self.catalog.products[pi].actions.push((lower, index));
        }
        for p in &mut self.catalog.products {
            p.actions.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    fn huawei(&mut self, file: &Path, text: &str) {
        let parsed: HuaweiFile = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => return self.problems.push(toml_error(file, text, &e)),
        };
        let mut routed: Vec<(usize, HttpRoute)> = Vec::new();
        for (i, api) in parsed.apis.iter().enumerate() {
            let path = format!("api[{i}]");
            let row = *api.row.get_ref();
            if row == 0 {
                self.err(
                    file,
                    text,
                    &api.row,
                    path.clone(),
                    "rows count from 1".into(),
                );
            }
            if let Some((_, r)) = routed.iter().find(|(_, r)| r.row == row) {
                let msg = format!("row {} is listed twice", r.row);
                self.err(file, text, &api.row, path.clone(), msg);
            }
            let Some(permissions) = self.permissions(file, text, &api.permission, &path, 3) else {
                continue;
            };
            let (line, _) = line_column(text, api.row.span().start);
            let mut routes = vec![(api.method.clone(), api.path.clone(), path.clone())];
            for (j, also) in api.also.iter().enumerate() {
                let Some((m, p)) = also.get_ref().split_once(' ') else {
                    self.err(
                        file,
                        text,
                        also,
                        format!("{path}.also[{j}]"),
                        format!("`{}` is not `METHOD /path`", also.get_ref()),
                    );
                    continue;
                };
                let span = also.span();
                routes.push((
                    Spanned::new(span.clone(), m.trim().to_owned()),
                    Spanned::new(span, p.trim().to_owned()),
                    format!("{path}.also[{j}]"),
                ));
            }
            for (method_text, path_text, at) in routes {
                let method = method_text.get_ref();
                let Some(method) = METHODS
                    .contains(&method.as_str())
                    .then(|| http::Method::from_bytes(method.as_bytes()).ok())
                    .flatten()
                else {
                    self.err(
                        file,
                        text,
                        &method_text,
                        format!("{at}.method"),
                        format!("`{method}` is not one of {}", METHODS.join(", ")),
                    );
                    continue;
                };
                let pattern = match PathPattern::parse(path_text.get_ref()) {
                    Ok(p) => p,
                    Err(e) => {
                        self.err(
                            file,
                            text,
                            &path_text,
                            format!("{at}.path"),
                            format!("`{}`: {e}", path_text.get_ref()),
                        );
                        continue;
                    }
                };
                let route = HttpRoute {
                    row,
                    method,
                    path: pattern,
                };
                if let Some((_, other)) = routed.iter().find(|(_, r)| overlaps(r, &route)) {
                    let msg = format!(
                        "{} {} overlaps row {} ({}): a request could match both",
                        route.method, route.path, other.row, other.path
                    );
                    self.err(file, text, &path_text, format!("{at}.path"), msg);
                    continue;
                }
                let index = self.catalog.entries.len();
                self.catalog.entries.push(Entry {
                    provider: Provider::Huawei,
                    product: "bss".into(),
                    name: api.operation.clone(),
                    kind: api.kind,
                    permissions: permissions.clone(),
                    route: Some(route.clone()),
                    source: format!("{}:{line}", file.display()),
                });
                routed.push((index, route));
            }
        }
        routed.sort_by_key(|(_, r)| r.row);
        self.catalog.huawei_routes = routed.iter().map(|(i, _)| *i).collect();
        // One entry per row (its first route) for listings and checks.
        let mut rows = std::collections::HashSet::new();
        self.catalog.huawei = routed
            .into_iter()
            .filter(|(_, r)| rows.insert(r.row))
            .map(|(i, _)| i)
            .collect();
    }
}

/// Whether some request path matches both routes.
fn overlaps(a: &HttpRoute, b: &HttpRoute) -> bool {
    if a.method != b.method {
        return false;
    }
    // Compare the patterns segment by segment: a placeholder overlaps
    // anything, literals overlap when equal (case-insensitively).
    let sa: Vec<&str> = a.path.as_str().split('/').collect();
    let sb: Vec<&str> = b.path.as_str().split('/').collect();
    sa.len() == sb.len()
        && sa
            .iter()
            .zip(&sb)
            .all(|(x, y)| x.starts_with('{') || y.starts_with('{') || x.eq_ignore_ascii_case(y))
}

/// Builds a catalog from the two files' texts.
pub(super) fn from_texts(
    (aliyun_file, aliyun): (&Path, &str),
    (huawei_file, huawei): (&Path, &str),
) -> Result<Catalog, Diagnostics> {
    let mut b = Builder {
        catalog: Catalog {
            codes: Vec::new(),
            entries: Vec::new(),
            products: Vec::new(),
            huawei: Vec::new(),
            huawei_routes: Vec::new(),
            files: vec![PathBuf::from(aliyun_file), PathBuf::from(huawei_file)],
        },
        problems: Vec::new(),
    };
    b.aliyun(aliyun_file, aliyun);
    b.huawei(huawei_file, huawei);
    if b.problems.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(b.problems));
    }
    Ok(b.catalog)
}
