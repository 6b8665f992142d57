//! Secrets by reference: an environment variable or a file, never inline text
//! in a config file.
//!
//! Loaded values live in [`SecretString`], whose `Debug` prints
//! `[REDACTED]`, so a secret cannot reach a log line by accident.

use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where a secret comes from. Exactly one of the two must be set.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of an environment variable holding the secret.
    pub secret_env: Option<String>,
    /// Path of a file holding the secret (surrounding whitespace trimmed);
    /// relative paths are resolved against the config file's folder.
    pub secret_file: Option<PathBuf>,
}

/// Why a secret could not be loaded. Names the reference, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither or both of `secret_env` / `secret_file` given.
    #[error("{what}: give exactly one of `secret_env` or `secret_file`")]
    Ambiguous {
        /// What the secret is for.
        what: String,
    },
    /// The environment variable is unset or empty.
    #[error("{what}: environment variable `{var}` is not set")]
    MissingEnv {
        /// What the secret is for.
        what: String,
        /// The variable.
        var: String,
    },
    /// The file could not be read or is empty.
    #[error("{what}: cannot read secret file `{}`: {reason}", path.display())]
    File {
        /// What the secret is for.
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O error or "empty".
        reason: String,
    },
}

impl SecretRef {
    /// Loads the secret; `what` names it in errors (e.g. `partner aliyun`).
    pub fn load(&self, base_dir: &Path, what: &str) -> Result<SecretString, SecretError> {
        match (&self.secret_env, &self.secret_file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
                _ => Err(SecretError::MissingEnv {
                    what: what.to_owned(),
                    var: var.clone(),
                }),
            },
            (None, Some(file)) => {
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    base_dir.join(file)
                };
                let text = std::fs::read_to_string(&path).map_err(|e| SecretError::File {
                    what: what.to_owned(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(SecretError::File {
                        what: what.to_owned(),
                        path,
                        reason: "empty".into(),
                    });
                }
                Ok(SecretString::from(text.to_owned()))
            }
            _ => Err(SecretError::Ambiguous {
                what: what.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_is_trimmed_and_redacted_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k"), "  s3cr3t-value\n").expect("write");
        let r = SecretRef {
            secret_env: None,
            secret_file: Some("k".into()),
        };
        let s = r.load(dir.path(), "test").expect("loads");
        assert_eq!(s.expose_secret(), "s3cr3t-value");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn both_or_neither_is_refused() {
        let r = SecretRef::default();
        assert!(matches!(
            r.load(Path::new("."), "x"),
            Err(SecretError::Ambiguous { .. })
        ));
        let r = SecretRef {
            secret_env: Some("A".into()),
            secret_file: Some("b".into()),
        };
        assert!(matches!(
            r.load(Path::new("."), "x"),
            Err(SecretError::Ambiguous { .. })
        ));
    }

    #[test]
    fn missing_file_error_names_the_path_not_a_value() {
        let r = SecretRef {
            secret_env: None,
            secret_file: Some("/nonexistent/secret".into()),
        };
        let e = r.load(Path::new("."), "partner").expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/secret"));
    }
}
