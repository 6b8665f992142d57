//! The snapshot's pricing modules: the default module (`[pricing]`) and
//! one per customer group (`[[pricing.assign]]`), each loaded, self-checked
//! (`describe`) and run against its golden tests before a snapshot that
//! contains it can become active.
//!
//! ```toml
//! [pricing]
//! module = "pricing/reference.wasm"     # every customer without an assignment
//! config = "pricing/reference.toml"
//! tests  = "pricing/tests"              # golden files; any failure refuses the snapshot
//!
//! [[pricing.assign]]                    # customers whose `group` is "startup"
//! group  = "startup"
//! module = "pricing/promotion.wasm"
//! config = "pricing/promotion.toml"
//! tests  = "pricing/promotion-tests"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::pricing::{LoadedModule, PricingConfig, PricingEngine};

/// The `[pricing]` section of `tollgate.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PricingSection {
    /// The default module (`.wasm` component), relative to the config file.
    pub module: PathBuf,
    /// Its configuration (`.toml` or `.json`). Absent: `{}`.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Its golden tests: a folder of `*.json` files (see
    /// `tollgate pricing check`). Absent: only the self-check runs.
    #[serde(default)]
    pub tests: Option<PathBuf>,
    /// Modules for customer groups; a customer whose group has none gets
    /// the default.
    #[serde(default)]
    pub assign: Vec<Assignment>,
    /// Whether each module remembers its answers to orders it has priced
    /// (`pricing::quote_cache`: exact, bounded at
    /// `pricing::limits::QUOTE_CACHE_BYTES` per module). Default on; off
    /// runs the module for every priced request (to measure it, say).
    #[serde(default = "default_quote_cache")]
    pub quote_cache: bool,
}

fn default_quote_cache() -> bool {
    true
}

/// One `[[pricing.assign]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The customer group (`group` in the customers file).
    pub group: String,
    /// The module for that group.
    pub module: PathBuf,
    /// Its configuration.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Its golden tests.
    #[serde(default)]
    pub tests: Option<PathBuf>,
}

impl PricingSection {
    /// Every (label, module, config, tests) the section names: the default
    /// first, then the assignments in file order.
    pub fn entries(&self) -> Vec<(String, &Path, Option<&Path>, Option<&Path>)> {
        let mut out = vec![(
            "[pricing]".to_owned(),
            self.module.as_path(),
            self.config.as_deref(),
            self.tests.as_deref(),
        )];
        for a in &self.assign {
            out.push((
                format!("[[pricing.assign]] group {:?}", a.group),
                a.module.as_path(),
                a.config.as_deref(),
                a.tests.as_deref(),
            ));
        }
        out
    }
}

/// The loaded modules of one snapshot.
#[derive(Debug, Default)]
pub struct PricingModules {
    default: Option<Arc<LoadedModule>>,
    by_group: HashMap<String, Arc<LoadedModule>>,
}

impl PricingModules {
    /// Entry `i` of `section.entries()`.
    fn insert(&mut self, i: usize, section: &PricingSection, m: Arc<LoadedModule>) {
        if i == 0 {
            self.default = Some(m);
        } else {
            self.by_group.insert(section.assign[i - 1].group.clone(), m);
        }
    }

    /// The module that prices for a customer of `group`; `None`: no pricing.
    pub fn for_group(&self, group: Option<&str>) -> Option<&Arc<LoadedModule>> {
        group
            .and_then(|g| self.by_group.get(g))
            .or(self.default.as_ref())
    }

    /// How many modules are loaded (the default included).
    pub fn len(&self) -> usize {
        usize::from(self.default.is_some()) + self.by_group.len()
    }

    /// Whether no module is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(group or "*", module label, sha256 prefix)` of every module.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = self
            .default
            .iter()
            .map(|m| ("*".to_owned(), m))
            .chain(self.by_group.iter().map(|(g, m)| (g.clone(), m)))
            .map(|(g, m)| (g, m.label().to_owned(), m.hash()[..12].to_owned()))
            .collect();
        out.sort();
        out
    }
}

/// Most verified modules remembered across reloads: 32 (an operator's
/// modules times their configurations; older entries are dropped first).
pub const VERIFIED_CACHE: usize = 32;

/// Modules that passed their self-check and golden tests, by the content
/// of everything that decided it (module bytes, configuration, golden
/// files). A reload whose module, configuration and tests did not change
/// takes the verified module instead of loading and testing it again:
/// the outcome would be the same (a module is a pure function of its
/// inputs, with a fresh instance per call). Lives as long as the process.
#[derive(Debug, Default)]
pub struct VerifiedModules {
    /// (use clock, content key → (last use, module)).
    entries: Mutex<(u64, HashMap<ContentKey, Verified>)>,
}

/// SHA-256 over a module's bytes, configuration and golden files.
type ContentKey = [u8; 32];

/// A verified module and when it was last used (for eviction).
type Verified = (u64, Arc<LoadedModule>);

impl VerifiedModules {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<LoadedModule>> {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (clock, map) = &mut *guard;
        *clock += 1;
        let now = *clock;
        map.get_mut(key).map(|(used, m)| {
            *used = now;
            Arc::clone(m)
        })
    }

    fn put(&self, key: [u8; 32], module: Arc<LoadedModule>) {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (clock, map) = &mut *guard;
        *clock += 1;
        if map.len() >= VERIFIED_CACHE
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key, (*clock, module));
    }
}

/// The content key of one module entry; `None` when a file cannot be read
/// (the load reports it).
fn content_key(module: &Path, config: Option<&Path>, tests: Option<&Path>) -> Option<[u8; 32]> {
    let mut h = Sha256::new();
    let mut add = |name: &str, bytes: &[u8]| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    add("module", &std::fs::read(module).ok()?);
    if let Some(c) = config {
        add("config", &std::fs::read(c).ok()?);
    }
    if let Some(t) = tests {
        let mut files: Vec<PathBuf> = std::fs::read_dir(t)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for f in files {
            add(&f.to_string_lossy(), &std::fs::read(&f).ok()?);
        }
    }
    Some(h.finalize().into())
}

/// Loads every module of `section` (compiled once per content by
/// `engine`), runs each one's self-check and golden tests. Every problem is
/// reported, not just the first. `verified`: modules already verified with
/// the same inputs are taken from there (and new ones are added).
pub fn load(
    section: &PricingSection,
    base_dir: &Path,
    engine: &Arc<PricingEngine>,
    verified: Option<&VerifiedModules>,
) -> Result<PricingModules, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let mut modules = PricingModules::default();
    let mut seen = std::collections::HashSet::new();
    for a in &section.assign {
        if a.group.trim().is_empty() || !seen.insert(a.group.as_str()) {
            problems.push(Diagnostic::error(
                Path::new("[pricing]"),
                format!("assign.group {:?}", a.group),
                "each [[pricing.assign]] needs a distinct, non-empty group",
            ));
        }
    }
    for (i, (label, module, config, tests)) in section.entries().into_iter().enumerate() {
        let module_path = base_dir.join(module);
        let key = verified.and_then(|_| {
            content_key(
                &module_path,
                config.map(|c| base_dir.join(c)).as_deref(),
                tests.map(|t| base_dir.join(t)).as_deref(),
            )
        });
        if let (Some(cache), Some(key)) = (verified, &key)
            && let Some(m) = cache.get(key)
            && m.caches_quotes() == section.quote_cache
        {
            modules.insert(i, section, m);
            continue;
        }
        let loaded = match engine.load_config(
            &PricingConfig {
                module: module.to_path_buf(),
                config: config.map(Path::to_path_buf),
            },
            base_dir,
        ) {
            Ok(m) if section.quote_cache => m,
            Ok(m) => m.without_quote_cache(),
            Err(e) => {
                problems.push(Diagnostic::error(&module_path, label, format!("{e:#}")));
                continue;
            }
        };
        if let Some(tests) = tests {
            let dir = base_dir.join(tests);
            match crate::cli::pricing::run_golden(&loaded, &dir) {
                Ok(results) => {
                    for (file, result) in results {
                        if let Err(e) = result {
                            problems.push(Diagnostic::error(
                                &file,
                                label.clone(),
                                format!("golden test failed for {}: {e:#}", loaded.label()),
                            ));
                        }
                    }
                }
                Err(e) => problems.push(Diagnostic::error(&dir, label.clone(), format!("{e:#}"))),
            }
        }
        let loaded = Arc::new(loaded);
        if let (Some(cache), Some(key), true) = (verified, key, problems.is_empty()) {
            cache.put(key, Arc::clone(&loaded));
        }
        modules.insert(i, section, loaded);
    }
    if problems.is_empty() {
        Ok(modules)
    } else {
        Err(problems)
    }
}
