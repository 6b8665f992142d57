//! The one error type of the request path.
//!
//! Like Pingora's `Error`, it carries *where* a failure came from ([`Origin`]),
//! whether a client may retry it, and enough to answer in the provider's own
//! format. Turning it into bytes happens in exactly one place per provider
//! (`aliyun::envelope`), never at the call site.

use std::borrow::Cow;

use http::StatusCode;

/// Who is responsible for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The caller sent something we refuse (bad signature, unknown key, ...).
    Customer,
    /// The cloud provider failed or could not be reached.
    Upstream,
    /// A partner pricing module failed.
    Pricing,
    /// A bug or resource problem inside Tollgate.
    Internal,
}

impl Origin {
    /// A stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Upstream => "upstream",
            Self::Pricing => "pricing",
            Self::Internal => "internal",
        }
    }
}

/// A refusal or failure, ready to be rendered in a provider's error envelope.
#[derive(Debug, Clone)]
pub struct Error {
    /// Who caused it.
    pub origin: Origin,
    /// Whether sending the same request again may succeed.
    pub retryable: bool,
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// Provider error code, e.g. `SignatureDoesNotMatch`.
    pub code: Cow<'static, str>,
    /// Human-readable message. Never holds a secret.
    pub message: String,
    /// A short, fixed label for metrics (`refusals_total{reason=...}`).
    pub reason: &'static str,
    /// Set on permission refusals: what was missing, for the provider's
    /// access-denied detail (Alibaba `AccessDeniedDetail`).
    pub denied: Option<Box<AccessDenied>>,
}

/// What a permission refusal names (reference: alibaba-bss.md §3.2-3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied {
    /// The permission the caller lacks, e.g. `bssapi:QueryOrders`.
    pub action: String,
    /// `true`: a Deny statement refused it; `false`: nothing allowed it.
    pub explicit: bool,
    /// The customer's cloud account id.
    pub principal_uid: String,
    /// The customer's id at the partner.
    pub principal_name: String,
}

impl Error {
    /// A refusal caused by the caller (not retryable).
    pub fn customer(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        reason: &'static str,
    ) -> Self {
        Self {
            origin: Origin::Customer,
            retryable: false,
            status,
            code: code.into(),
            message: message.into(),
            reason,
            denied: None,
        }
    }

    /// A failure of the provider or of the way to it.
    pub fn upstream(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        reason: &'static str,
        retryable: bool,
    ) -> Self {
        Self {
            origin: Origin::Upstream,
            retryable,
            status,
            code: code.into(),
            message: message.into(),
            reason,
            denied: None,
        }
    }

    /// A failure inside Tollgate.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            origin: Origin::Internal,
            retryable: true,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Cow::Borrowed("InternalError"),
            message: message.into(),
            reason: "internal",
            denied: None,
        }
    }

    /// A failure of the partner's pricing module (or of its output).
    pub fn pricing(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        reason: &'static str,
        retryable: bool,
    ) -> Self {
        Self {
            origin: Origin::Pricing,
            retryable,
            status,
            code: code.into(),
            message: message.into(),
            reason,
            denied: None,
        }
    }

    /// The same error, carrying the access-denied detail.
    #[must_use]
    pub fn with_denied(mut self, denied: AccessDenied) -> Self {
        self.denied = Some(Box::new(denied));
        self
    }

    /// `MissingParameter`-style refusal naming the parameter.
    pub fn missing(name: &str) -> Self {
        Self::customer(
            StatusCode::BAD_REQUEST,
            format!("Missing{name}"),
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
            "missing_parameter",
        )
    }

    /// `InvalidParameter`-style refusal naming the parameter.
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::customer(
            StatusCode::BAD_REQUEST,
            format!("Invalid{name}"),
            format!("The specified parameter \"{name}\" is not valid: {why}"),
            "invalid_parameter",
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.origin.as_str(),
            self.message
        )
    }
}

impl std::error::Error for Error {}

/// Result alias for the request path.
pub type Result<T, E = Error> = std::result::Result<T, E>;
