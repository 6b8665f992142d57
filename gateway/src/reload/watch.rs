//! What triggers a reload besides the admin API: a change to any file of
//! the running snapshot (watched with `notify`, debounced) and SIGHUP.
//!
//! The watcher watches the *folders* of the snapshot's files (editors save
//! by writing a new file and renaming it over the old one) and ignores
//! changes to other files in them (the SQLite ledger next to the config,
//! editors' swap files). After each reload it follows the new snapshot's
//! files (a config that names another folder is watched there).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{Reloader, Trigger};

/// Quiet time after the last change before the reload starts: 20 ms.
/// Saving a file is a burst of events (truncate, write, rename, metadata)
/// that all land within a few milliseconds; one reload per burst is
/// enough, and a build that reads a half-written file is retried anyway
/// (the content hash is taken before and after). It counts against the
/// 100 ms file-change-to-new-version target, so it is kept short.
pub const DEBOUNCE: Duration = Duration::from_millis(20);

/// Longest a burst can delay its reload: 200 ms. A tool that rewrites a
/// file continuously must not postpone the reload forever.
pub const DEBOUNCE_MAX: Duration = Duration::from_millis(200);

/// Starts the file watcher and the SIGHUP listener.
pub fn spawn_triggers(reloader: Arc<Reloader>) -> anyhow::Result<()> {
    spawn_file_watcher(Arc::clone(&reloader))?;
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the policy files");
                reloader.reload(Trigger::Signal).await;
            }
        });
    }
    Ok(())
}

fn spawn_file_watcher(reloader: Arc<Reloader>) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            // Access events (reads, closes without writing) change nothing.
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(event.paths);
            }
        }
    })?;
    let mut sets = reloader.watch_set();
    let mut watched: HashSet<PathBuf> = HashSet::new();
    follow(
        &mut watcher,
        &mut watched,
        &sets.borrow_and_update().folders,
    );
    tokio::spawn(async move {
        loop {
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { return };
                    if !matters(&reloader, &batch) {
                        continue;
                    }
                    // Debounce: wait until DEBOUNCE passes without events,
                    // at most DEBOUNCE_MAX.
                    let deadline = tokio::time::Instant::now() + DEBOUNCE_MAX;
                    loop {
                        let quiet = tokio::time::Instant::now() + DEBOUNCE;
                        match tokio::time::timeout_at(quiet.min(deadline), rx.recv()).await {
                            Ok(Some(_)) if tokio::time::Instant::now() < deadline => continue,
                            Ok(None) => return,
                            _ => break,
                        }
                    }
                    let attempt = reloader.reload(Trigger::FileChange).await;
                    tracing::debug!(outcome = ?attempt.outcome, "file change reload");
                }
                changed = sets.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let folders = sets.borrow_and_update().folders.clone();
                    follow(&mut watcher, &mut watched, &folders);
                }
            }
        }
    });
    Ok(())
}

/// Whether any path of a batch belongs to the running snapshot.
fn matters(reloader: &Reloader, batch: &[PathBuf]) -> bool {
    let set = reloader.watch_set();
    let set = set.borrow();
    batch.iter().any(|p| set.matters(p))
}

/// Watches exactly `folders` (non-recursively).
fn follow(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut HashSet<PathBuf>,
    folders: &[PathBuf],
) {
    let wanted: HashSet<PathBuf> = folders.iter().cloned().collect();
    for gone in watched.difference(&wanted).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        watched.remove(&gone);
    }
    for f in wanted {
        if !watched.contains(&f) {
            match watcher.watch(&f, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(f);
                }
                Err(e) => {
                    tracing::warn!(folder = %f.display(), error = %e, "cannot watch a policy folder; use SIGHUP or the admin API to reload");
                }
            }
        }
    }
}
