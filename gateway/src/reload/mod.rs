//! Hot reload of the policy set (issue 6): one immutable, versioned
//! snapshot, built fully and checked off the request path, then swapped in
//! atomically.
//!
//! | part | file |
//! |---|---|
//! | sources, version (content hash), build + checks | [`snapshot`] |
//! | pricing modules per customer group, golden tests | [`modules`] |
//! | triggers: file watcher (debounced), SIGHUP | [`watch`] |
//! | the swap, rollback, status and history | this file ([`Reloader`]) |
//!
//! Invariants:
//! * a request loads the current version once ([`Reloader::current`]) and
//!   keeps it to its end: it is served by exactly one version, named in
//!   its `x-tollgate-policy-version` header;
//! * a snapshot with any problem never becomes active; the running one
//!   stays, the problems (file, line, column, reason) are in the answer,
//!   the history and the log, and counted (`tollgate_policy_reloads_total`);
//! * reloads are serialised; files that hash to the running version are a
//!   no-op (`unchanged`);
//! * what outlives a reload ([`Runtime`]: replay cache, upstream pool,
//!   ledger, metrics, wasmtime engine) is never rebuilt by one.

pub mod modules;
pub mod snapshot;
pub mod watch;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::ServeConfig;
use crate::diagnostic::Diagnostic;
use crate::metrics::{OutcomeLabels, PolicyVersionLabels};
use crate::proxy::{Gateway, Runtime};
use snapshot::{Built, WatchSet};

/// Reload attempts kept in the status history (newest first): enough to
/// see a session of edits, bounded so a loop of bad writes cannot grow it.
pub const HISTORY_LEN: usize = 64;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The process started.
    Start,
    /// A watched file changed.
    FileChange,
    /// `kill -HUP`.
    Signal,
    /// `POST /v1/policy/reload`.
    Admin,
    /// `POST /v1/policy/rollback`.
    Rollback,
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new version is active.
    Applied,
    /// The files hash to the running version: nothing changed.
    Unchanged,
    /// The new files have problems; the running version stays.
    Refused,
    /// The previous good version is active again.
    RolledBack,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::RolledBack => "rolled_back",
        }
    }
}

/// One reload attempt, as the status history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// What the outcome was.
    pub outcome: Outcome,
    /// The version the files hashed to (refused: when readable) or the one
    /// rolled back to.
    pub version: Option<String>,
    /// The version active before.
    pub previous: String,
    /// What triggered it.
    pub trigger: Trigger,
    /// When it finished (RFC 3339, UTC).
    pub at: String,
    /// Build and checks, in milliseconds.
    pub duration_ms: f64,
    /// Every problem (refused only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Diagnostic>,
    /// Sections changed in the files that take effect only after a restart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restart_required: Vec<&'static str>,
}

/// A version that was active, kept for rollback.
#[derive(Debug, Clone)]
struct Good {
    gateway: Arc<Gateway>,
    loaded_at: String,
    customers: Vec<(String, String)>,
    ledger: crate::ledger::LedgerConfig,
}

#[derive(Debug)]
struct State {
    current: Good,
    previous: Option<Good>,
    history: VecDeque<Attempt>,
    /// Attempts by outcome since start (the history is bounded; these are not).
    counts: std::collections::BTreeMap<&'static str, u64>,
}

/// Holds the active version and replaces it.
#[derive(Debug)]
pub struct Reloader {
    config_path: PathBuf,
    runtime: Arc<Runtime>,
    live: ArcSwap<Gateway>,
    /// The start-up config: sections that cannot change live are compared
    /// with it.
    started_with: ServeConfig,
    /// Serialises reloads and rollbacks.
    serial: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// The running snapshot's files, for the watcher.
    watch: tokio::sync::watch::Sender<WatchSet>,
}

impl Reloader {
    /// Builds the first version from `config_path`; any problem stops the
    /// start (the same checks as a reload, printed with their positions).
    pub fn start(
        config_path: &Path,
        cfg: &ServeConfig,
        runtime: Arc<Runtime>,
    ) -> anyhow::Result<Arc<Self>> {
        let started = Instant::now();
        let candidate = match snapshot::build(config_path, &runtime, None) {
            Built::Ready(c) => c,
            Built::Refused(_, problems) => {
                anyhow::bail!("{}", report(&problems));
            }
            Built::Unchanged(_) => unreachable!("no running version to compare with"),
        };
        let snapshot::Candidate {
            gateway,
            watch,
            ledger,
            customers,
            ..
        } = *candidate;
        let gateway = Arc::new(gateway);
        let now = now_rfc3339();
        let version = gateway.version().to_owned();
        set_version_metric(&runtime, None, &version);
        let reloader = Arc::new(Self {
            config_path: config_path.to_path_buf(),
            live: ArcSwap::new(Arc::clone(&gateway)),
            started_with: cfg.clone(),
            serial: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                current: Good {
                    gateway,
                    loaded_at: now.clone(),
                    customers,
                    ledger,
                },
                previous: None,
                counts: std::collections::BTreeMap::from([("applied", 1)]),
                history: VecDeque::from([Attempt {
                    outcome: Outcome::Applied,
                    version: Some(version.clone()),
                    previous: String::new(),
                    trigger: Trigger::Start,
                    at: now,
                    duration_ms: ms(started),
                    errors: Vec::new(),
                    restart_required: Vec::new(),
                }]),
            }),
            watch: tokio::sync::watch::Sender::new(watch),
            runtime,
        });
        tracing::info!(version, "policy snapshot loaded");
        Ok(reloader)
    }

    /// The active version. Call once per request and keep the `Arc`.
    pub fn current(&self) -> Arc<Gateway> {
        self.live.load_full()
    }

    /// The long-lived parts.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The config file reloads read.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The running snapshot's files (changes when a reload applies).
    pub fn watch_set(&self) -> tokio::sync::watch::Receiver<WatchSet> {
        self.watch.subscribe()
    }

    /// Builds the snapshot the files describe and, if every check passes,
    /// makes it active. Concurrent calls run one after the other.
    pub async fn reload(self: &Arc<Self>, trigger: Trigger) -> Attempt {
        let _serial = self.serial.lock().await;
        let started = Instant::now();
        let running = self.current();
        let this = Arc::clone(self);
        let running_version = running.version().to_owned();
        let built = tokio::task::spawn_blocking(move || {
            snapshot::build(&this.config_path, &this.runtime, Some(&running_version))
        })
        .await
        .unwrap_or_else(|e| {
            Built::Refused(
                None,
                vec![Diagnostic::error(
                    &self.config_path,
                    "",
                    format!("the build panicked: {e}"),
                )],
            )
        });
        let previous = running.version().to_owned();
        let attempt = match built {
            Built::Unchanged(watch) => {
                self.watch
                    .send_if_modified(|w| replace_if_changed(w, watch));
                self.attempt(
                    Outcome::Unchanged,
                    Some(previous.clone()),
                    previous,
                    trigger,
                    started,
                )
            }
            Built::Refused(version, errors) => {
                tracing::warn!(
                    version = version.as_deref().unwrap_or(""),
                    errors = errors.len(),
                    "policy reload refused; the running version stays:\n{}",
                    report(&errors)
                );
                Attempt {
                    errors,
                    ..self.attempt(Outcome::Refused, version, previous, trigger, started)
                }
            }
            Built::Ready(candidate) => {
                let snapshot::Candidate {
                    gateway,
                    watch,
                    ledger,
                    customers,
                    config,
                } = *candidate;
                // New customers and budget defaults are known to the ledger
                // before the first request can reach them on the new version.
                if let Err(e) = self
                    .runtime
                    .ledger()
                    .learn_policy(customers.clone(), &ledger)
                    .await
                {
                    let errors = vec![Diagnostic::error(
                        &self.config_path,
                        "[ledger]",
                        format!("the ledger could not take the new customers and budgets: {e}"),
                    )];
                    let version = Some(gateway.version().to_owned());
                    return self.record(Attempt {
                        errors,
                        ..self.attempt(Outcome::Refused, version, previous, trigger, started)
                    });
                }
                let gateway = Arc::new(gateway);
                let version = gateway.version().to_owned();
                self.swap(Good {
                    gateway,
                    loaded_at: now_rfc3339(),
                    customers,
                    ledger,
                });
                self.watch
                    .send_if_modified(|w| replace_if_changed(w, watch));
                let restart = snapshot::restart_required(&self.started_with, &config);
                tracing::info!(
                    version,
                    previous,
                    ?trigger,
                    ?restart,
                    "policy snapshot applied"
                );
                Attempt {
                    restart_required: restart,
                    ..self.attempt(Outcome::Applied, Some(version), previous, trigger, started)
                }
            }
        };
        self.record(attempt)
    }

    /// Makes the previous good version active again (its customers and
    /// budget defaults too). The files on disk are not touched: the next
    /// reload loads them again. `None` when there is no previous version.
    pub async fn rollback(self: &Arc<Self>) -> Option<Attempt> {
        let _serial = self.serial.lock().await;
        let started = Instant::now();
        let previous = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .previous
            .clone()?;
        let from = self.current().version().to_owned();
        if let Err(e) = self
            .runtime
            .ledger()
            .learn_policy(previous.customers.clone(), &previous.ledger)
            .await
        {
            tracing::error!(error = %e, "rollback: the ledger could not take the previous budgets");
        }
        let version = previous.gateway.version().to_owned();
        self.swap(Good {
            loaded_at: now_rfc3339(),
            ..previous
        });
        tracing::info!(version, from, "policy snapshot rolled back");
        Some(self.record(self.attempt(
            Outcome::RolledBack,
            Some(version),
            from,
            Trigger::Rollback,
            started,
        )))
    }

    fn swap(&self, good: Good) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let old = state.current.gateway.version().to_owned();
        set_version_metric(&self.runtime, Some(&old), good.gateway.version());
        self.live.store(Arc::clone(&good.gateway));
        let before = std::mem::replace(&mut state.current, good);
        state.previous = Some(before);
    }

    fn attempt(
        &self,
        outcome: Outcome,
        version: Option<String>,
        previous: String,
        trigger: Trigger,
        started: Instant,
    ) -> Attempt {
        Attempt {
            outcome,
            version,
            previous,
            trigger,
            at: now_rfc3339(),
            duration_ms: ms(started),
            errors: Vec::new(),
            restart_required: Vec::new(),
        }
    }

    fn record(&self, attempt: Attempt) -> Attempt {
        self.runtime
            .metrics()
            .policy_reloads
            .get_or_create(&OutcomeLabels {
                outcome: attempt.outcome.label(),
            })
            .inc();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state.counts.entry(attempt.outcome.label()).or_default() += 1;
        state.history.push_front(attempt.clone());
        state.history.truncate(HISTORY_LEN);
        attempt
    }

    /// The status document of `GET /v1/policy/status`.
    pub fn status(&self) -> serde_json::Value {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = &state.current.gateway;
        serde_json::json!({
            "version": current.version(),
            "loaded_at": state.current.loaded_at,
            "config": self.config_path.display().to_string(),
            "previous": state.previous.as_ref().map(|p| p.gateway.version().to_owned()),
            "pricing_modules": current.pricing_modules().describe().into_iter().map(|(group, module, sha)| {
                serde_json::json!({ "group": group, "module": module, "sha256": sha })
            }).collect::<Vec<_>>(),
            "reloads": state.counts,
            "history": state.history,
        })
    }
}

fn replace_if_changed(w: &mut WatchSet, new: WatchSet) -> bool {
    if *w == new {
        false
    } else {
        *w = new;
        true
    }
}

fn set_version_metric(runtime: &Runtime, old: Option<&str>, new: &str) {
    let family = &runtime.metrics().policy_version;
    if let Some(old) = old {
        family.remove(&PolicyVersionLabels {
            version: old.to_owned(),
        });
    }
    family
        .get_or_create(&PolicyVersionLabels {
            version: new.to_owned(),
        })
        .set(1);
}

/// The problems, one per line (`file:line:col: error: reason`).
pub fn report(problems: &[Diagnostic]) -> String {
    let mut out = format!(
        "{} problem{} in the policy files",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!("\n  {p}"));
    }
    out
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

// A duration for people to read, not money.
#[allow(clippy::float_arithmetic)]
fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
