//! Building one policy snapshot from the files: every file it reads, its
//! version (a content hash over them), and the fully checked [`Gateway`].
//!
//! The version is SHA-256 over every source file in path order (path
//! relative to the config's folder, length, bytes), shown as its first 16
//! hex digits: the same files give the same version wherever they live,
//! and any byte changed in any of them gives another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::config::{CustomersFile, ServeConfig};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::proxy::{Gateway, Runtime};

/// Hex digits of the SHA-256 shown as the version (64 bits: collisions
/// between an operator's versions are not a practical concern).
pub const VERSION_HEX_DIGITS: usize = 16;

/// How many times a build is retried when the files change while it reads
/// them (an editor still writing); the file watcher triggers again anyway.
const TORN_READ_RETRIES: usize = 3;

/// The files one snapshot is built from, with their bytes at hashing time.
#[derive(Debug, Clone)]
pub struct Sources {
    base: PathBuf,
    /// Path → bytes (`None`: unreadable or absent; the loader reports it).
    files: BTreeMap<PathBuf, Option<Vec<u8>>>,
    /// Folders whose every file is a source (catalog, permissions, golden
    /// tests): a file added there changes the snapshot.
    dirs: Vec<PathBuf>,
}

impl Sources {
    /// Reads every file `cfg` (the config file itself when `config_path` is
    /// given) and `customers` name: the customers file, secret files, the
    /// catalog and permission folders, pricing modules, their
    /// configurations and golden tests.
    pub fn collect(
        config_path: Option<&Path>,
        cfg: &ServeConfig,
        customers: &CustomersFile,
    ) -> Self {
        let base = &cfg.base_dir;
        let mut s = Self {
            base: base.clone(),
            files: BTreeMap::new(),
            dirs: Vec::new(),
        };
        if let Some(p) = config_path {
            s.file(p.to_path_buf());
        }
        let customers_path = cfg.customers_path();
        let customers_dir = customers_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        s.file(customers_path);
        if let Some(f) = &cfg.partner.aliyun.secret.secret_file {
            s.file(base.join(f));
        }
        for k in &customers.keys {
            if let Some(f) = &k.secret.secret_file {
                s.file(customers_dir.join(f));
            }
        }
        // Huawei: the keys issued to customers (next to customers.toml) and
        // the credentials the partner holds for them (next to the config).
        for k in &customers.huawei_keys {
            if let Some(f) = &k.secret.secret_file {
                s.file(customers_dir.join(f));
            }
        }
        if let Some(h) = &cfg.partner.huawei {
            for c in &h.customers {
                if let Some(f) = &c.secret.secret_file {
                    s.file(base.join(f));
                }
            }
        }
        if let Some(a) = &cfg.authz {
            s.dir(base.join(&a.catalog_dir));
            s.dir(base.join(&a.permissions_dir));
        }
        if let Some(p) = &cfg.pricing {
            for (_, module, config, tests) in p.entries() {
                s.file(base.join(module));
                if let Some(c) = config {
                    s.file(base.join(c));
                }
                if let Some(t) = tests {
                    s.dir(base.join(t));
                }
            }
        }
        s
    }

    fn file(&mut self, path: PathBuf) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.files.entry(path) {
            let bytes = std::fs::read(e.key()).ok();
            e.insert(bytes);
        }
    }

    fn dir(&mut self, dir: PathBuf) {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_content_file(p))
                .collect();
            paths.sort();
            for p in paths {
                self.file(p);
            }
        }
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// The bytes read for `path`, when it is a source and was readable.
    pub fn bytes(&self, path: &Path) -> Option<&[u8]> {
        self.files.get(path).and_then(|b| b.as_deref())
    }

    /// The content hash.
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.files {
            let name = path.strip_prefix(&self.base).unwrap_or(path);
            h.update(name.to_string_lossy().as_bytes());
            h.update([0]);
            match bytes {
                Some(b) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
                None => h.update(u64::MAX.to_le_bytes()),
            }
        }
        let mut hex = hex::encode(h.finalize());
        hex.truncate(VERSION_HEX_DIGITS);
        hex
    }

    /// What the file watcher watches for this snapshot.
    pub fn watch_set(&self) -> WatchSet {
        let mut folders: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .chain(self.dirs.iter().cloned())
            .collect();
        folders.sort();
        folders.dedup();
        WatchSet {
            files: self.files.keys().cloned().collect(),
            dirs: self.dirs.clone(),
            folders,
        }
    }
}

/// Editors' backup and swap files are not content (`.x.swp`, `x~`).
fn is_content_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !(name.starts_with('.') || name.ends_with('~'))
}

/// Which paths matter to the running snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSet {
    /// Every source file.
    pub files: Vec<PathBuf>,
    /// Folders whose every (content) file matters.
    pub dirs: Vec<PathBuf>,
    /// The folders to watch (non-recursively): the files' folders and
    /// `dirs`. Watching folders, not files, sees editors' atomic renames.
    pub folders: Vec<PathBuf>,
}

impl WatchSet {
    /// Whether a change at `path` can change the snapshot.
    pub fn matters(&self, path: &Path) -> bool {
        self.files.iter().any(|f| f == path)
            || (is_content_file(path)
                && path
                    .parent()
                    .is_some_and(|parent| self.dirs.iter().any(|d| d == parent)))
    }
}

/// A snapshot built and checked, ready to be swapped in.
#[derive(Debug)]
pub struct Candidate {
    /// The new version.
    pub gateway: Gateway,
    /// Its files.
    pub watch: WatchSet,
    /// `[ledger]` of the new files (budget defaults) and the customers,
    /// for the ledger to learn before the swap.
    pub ledger: crate::ledger::LedgerConfig,
    /// (customer id, provider UID).
    pub customers: Vec<(String, String)>,
    /// The parsed config (to tell what needs a restart).
    pub config: ServeConfig,
}

/// What a build found.
#[derive(Debug)]
pub enum Built {
    /// The files hash to the running version: nothing to do.
    Unchanged(WatchSet),
    /// A new snapshot, fully checked.
    Ready(Box<Candidate>),
    /// Refused: the version the files hash to (when they could be read)
    /// and every problem found.
    Refused(Option<String>, Vec<Diagnostic>),
}

/// Builds the snapshot the files under `config_path` describe, unless they
/// hash to `running`. Blocking (file reads, module compilation): run it off
/// the request path.
pub fn build(config_path: &Path, runtime: &Runtime, running: Option<&str>) -> Built {
    let mut last = None;
    for _ in 0..TORN_READ_RETRIES {
        match build_once(config_path, runtime, running) {
            Attempt::Done(b) => return b,
            Attempt::Torn(version) => last = Some(version),
        }
    }
    Built::Refused(
        last,
        vec![Diagnostic::error(
            config_path,
            "",
            format!(
                "the policy files kept changing while they were being loaded ({TORN_READ_RETRIES} attempts); the running version stays"
            ),
        )],
    )
}

enum Attempt {
    Done(Built),
    Torn(String),
}

fn build_once(config_path: &Path, runtime: &Runtime, running: Option<&str>) -> Attempt {
    let refused =
        |version: Option<String>, d: Vec<Diagnostic>| Attempt::Done(Built::Refused(version, d));
    let (cfg, cfg_text) = match parse_config(config_path) {
        Ok(c) => c,
        Err(d) => return refused(None, vec![d]),
    };
    let (customers, customers_text) = match parse_customers(&cfg.customers_path()) {
        Ok(c) => c,
        Err(d) => return refused(None, vec![d]),
    };
    let sources = Sources::collect(Some(config_path), &cfg, &customers);
    let version = sources.version();
    // The texts parsed must be the bytes hashed.
    if sources.bytes(config_path) != Some(cfg_text.as_bytes())
        || sources.bytes(&cfg.customers_path()) != Some(customers_text.as_bytes())
    {
        return Attempt::Torn(version);
    }
    if running == Some(version.as_str()) {
        return Attempt::Done(Built::Unchanged(sources.watch_set()));
    }
    let mut problems = Vec::new();
    let pricing = match &cfg.pricing {
        Some(p) => match runtime.pricing_engine() {
            Ok(engine) => {
                super::modules::load(p, &cfg.base_dir, &engine, Some(runtime.verified_modules()))
                    .unwrap_or_else(|d| {
                        problems.extend(d);
                        Default::default()
                    })
            }
            Err(e) => {
                problems.push(Diagnostic::error(
                    config_path,
                    "[pricing]",
                    format!("{e:#}"),
                ));
                Default::default()
            }
        },
        None => Default::default(),
    };
    let gateway = match Gateway::build(&cfg, &customers, runtime, pricing, &version) {
        Ok(g) => Some(g),
        Err(e) => {
            problems.extend(diagnostics_of(&e, config_path));
            None
        }
    };
    if let Err(e) = crate::ledger::Settings::from_config(&cfg.ledger) {
        problems.push(Diagnostic::error(config_path, "[ledger]", format!("{e:#}")));
    }
    // The files read above must be the ones hashed: if anything changed
    // meanwhile, the build is thrown away and done again.
    if Sources::collect(Some(config_path), &cfg, &customers).version() != version {
        return Attempt::Torn(version);
    }
    match gateway {
        Some(gateway) if problems.is_empty() => Attempt::Done(Built::Ready(Box::new(Candidate {
            gateway,
            watch: sources.watch_set(),
            ledger: cfg.ledger.clone(),
            customers: customers
                .customers
                .iter()
                .map(|c| (c.id.clone(), c.aliyun_uid.clone()))
                .collect(),
            config: cfg,
        }))),
        _ => refused(Some(version), problems),
    }
}

/// The config file, with a parse error placed at its line and column.
fn parse_config(path: &Path) -> Result<(ServeConfig, String), Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(path, "", format!("cannot read: {e}")))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let cfg = ServeConfig::from_toml(&text, &base).map_err(|e| toml_diagnostic(path, &text, &e))?;
    Ok((cfg, text))
}

/// The customers file, likewise.
fn parse_customers(path: &Path) -> Result<(CustomersFile, String), Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(path, "", format!("cannot read: {e}")))?;
    let file: CustomersFile = toml::from_str(&text).map_err(|e| {
        let d = Diagnostic::error(path, "", e.message().to_owned());
        match e.span() {
            Some(span) => d.at_offset(&text, span.start),
            None => d,
        }
    })?;
    file.validate()
        .map_err(|e| Diagnostic::error(path, "", format!("{e:#}")))?;
    Ok((file, text))
}

fn toml_diagnostic(path: &Path, text: &str, e: &anyhow::Error) -> Diagnostic {
    match e.downcast_ref::<toml::de::Error>() {
        Some(t) => {
            let d = Diagnostic::error(path, "", t.message().to_owned());
            match t.span() {
                Some(span) => d.at_offset(text, span.start),
                None => d,
            }
        }
        None => Diagnostic::error(path, "", format!("{e:#}")),
    }
}

/// The positioned problems inside an error (permission and catalog files
/// carry them), else the error as one problem of the config file.
fn diagnostics_of(e: &anyhow::Error, config_path: &Path) -> Vec<Diagnostic> {
    for cause in e.chain() {
        if let Some(d) = cause.downcast_ref::<Diagnostics>() {
            return d.0.iter().filter(|d| d.is_error()).cloned().collect();
        }
    }
    vec![Diagnostic::error(config_path, "", format!("{e:#}"))]
}

/// Sections that a running process cannot change (listeners, the store,
/// the replay cache's size, the pooled client's timeouts): the names of
/// those that differ between `running` (start-up) and `new`.
pub fn restart_required(running: &ServeConfig, new: &ServeConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if format!("{:?}", running.server) != format!("{:?}", new.server) {
        out.push("server");
    }
    let admin = |c: &ServeConfig| c.admin.as_ref().map(|a| (a.listen, a.token.clone()));
    if admin(running) != admin(new) {
        out.push("admin");
    }
    let store = |c: &ServeConfig| {
        let mut l = c.ledger.clone();
        l.budgets.clear();
        l.default_budget = None;
        format!("{l:?}")
    };
    if store(running) != store(new) {
        out.push("ledger (store, timings, webhooks)");
    }
    let connect = |c: &ServeConfig| c.upstreams.iter().map(|u| u.connect_timeout_ms).max();
    if connect(running) != connect(new) {
        out.push("upstream.connect_timeout_ms");
    }
    out
}
