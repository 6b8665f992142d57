//! Step 1, authenticate: who is calling, and as which customer.
//!
//! Checks, in the provider's order: timestamp format and window (at most
//! [`MAX_AHEAD`] in the future), key lookup, signature, the owner rules;
//! the nonce is consumed last ([`Authenticator::remember_nonce`]), after
//! authorization on the request path, so neither a forger nor a caller
//! refused permission can burn nonces or fill the replay memory.
//!
//! Owner rules (the "no customer acts as another" guarantee):
//! * a customer key acts as its own customer; a caller-supplied `OwnerId`
//!   other than that customer's UID is refused with `InvalidOwner`;
//! * a frontend key must name the customer in `OwnerId`, and only a customer
//!   in its `acts_for` list;
//! * `OwnerAccount`, `ResourceOwnerAccount` and a differing
//!   `ResourceOwnerId` are refused: Tollgate alone sets the owner.

mod keys;
mod nonce;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

pub use keys::{Customer, KeyTable, Principal};
pub use nonce::{NonceCache, NonceError, NonceHasher};

use crate::aliyun::{self, AliyunCall};
use crate::error::{Error, Result};
use crate::secret::ExposeSecret as _;

/// How far ahead of the server's clock a signing time may be: 5 minutes.
/// Older calls get the whole window (a slow client, a long queue), but a
/// time far in the future only stretches how long a captured call stays
/// valid; honest clocks are seconds apart, not minutes.
pub const MAX_AHEAD: Duration = Duration::from_secs(300);

/// Who the call acts for, once authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The AccessKey id that signed it.
    pub access_key_id: String,
    /// The customer the call acts for.
    pub customer: Arc<Customer>,
    /// `Some(key id)` when a frontend key acted for the customer.
    pub frontend: Option<String>,
}

/// The authentication policy: window and replay memory.
#[derive(Debug)]
pub struct Authenticator {
    window: Duration,
    nonces: NonceCache,
}

impl Authenticator {
    /// `window`: allowed clock skew either way; `nonce_capacity`: see
    /// `ServerConfig::nonce_capacity`.
    pub fn new(window: Duration, nonce_capacity: usize) -> Self {
        Self {
            window,
            nonces: NonceCache::new(nonce_capacity),
        }
    }

    /// Authenticates `call` against `keys` at time `now` and consumes its
    /// nonce: [`Self::verify`] then [`Self::remember_nonce`]. The request
    /// path runs the two apart, with authorization between them.
    pub fn authenticate(
        &self,
        call: &AliyunCall,
        keys: &KeyTable,
        now: time::OffsetDateTime,
    ) -> Result<Authenticated> {
        let who = self.verify(call, keys, now)?;
        self.remember_nonce(call, now)?;
        Ok(who)
    }

    /// Checks the timestamp window, the key, the signature and the owner
    /// rules, without consuming the nonce: a call that authorization then
    /// refuses leaves nothing in the replay memory, so a key without
    /// permission for anything cannot fill it.
    pub fn verify(
        &self,
        call: &AliyunCall,
        keys: &KeyTable,
        now: time::OffsetDateTime,
    ) -> Result<Authenticated> {
        self.timestamp(call, now)?;
        let entry = keys.get(call.access_key_id()).ok_or_else(|| {
            Error::customer(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
                "unknown_key",
            )
        })?;
        if !entry.enabled {
            return Err(Error::customer(
                StatusCode::BAD_REQUEST,
                "InvalidAccessKeyId.Inactive",
                "Specified access key is disabled.",
                "inactive_key",
            ));
        }
        call.verify(entry.secret.expose_secret())?;
        let (customer, frontend) = resolve_owner(call, &entry.principal, &entry.access_key_id)?;
        Ok(Authenticated {
            access_key_id: entry.access_key_id.clone(),
            customer,
            frontend,
        })
    }

    /// The call's signing time, refused when it is malformed, older than
    /// the window, or further ahead of the server's clock than
    /// [`MAX_AHEAD`].
    fn timestamp(
        &self,
        call: &AliyunCall,
        now: time::OffsetDateTime,
    ) -> Result<time::OffsetDateTime> {
        let ts = aliyun::parse_timestamp(call.timestamp()).ok_or_else(|| {
            Error::customer(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
                "timestamp",
            )
        })?;
        let ahead = self.window.min(MAX_AHEAD);
        let expired = if ts > now {
            (ts - now).unsigned_abs() > ahead
        } else {
            (now - ts).unsigned_abs() > self.window
        };
        if expired {
            return Err(Error::customer(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Expired",
                format!(
                    "Specified time stamp or date value is expired (more than {} s before or {} s after the server time, UTC expected).",
                    self.window.as_secs(),
                    ahead.as_secs()
                ),
                "timestamp",
            ));
        }
        Ok(ts)
    }

    /// Records the nonce of an authenticated, authorized call: refused if
    /// seen before inside the window (`SignatureNonceUsed`), or when the
    /// key's share of the replay memory is full (`Throttling`).
    pub fn remember_nonce(&self, call: &AliyunCall, now: time::OffsetDateTime) -> Result<()> {
        let ts = self.timestamp(call, now)?;
        let expires = ts
            .unix_timestamp()
            .saturating_add(i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX));
        self.nonces
            .insert(
                call.access_key_id(),
                call.nonce(),
                expires,
                now.unix_timestamp(),
            )
            .map_err(|e| match e {
                NonceError::Replayed => Error::customer(
                    StatusCode::BAD_REQUEST,
                    "SignatureNonceUsed",
                    "Specified signature nonce was used already.",
                    "nonce_replay",
                ),
                NonceError::TooLong => Error::invalid("SignatureNonce", "longer than 256 bytes"),
                NonceError::Full | NonceError::KeyFull => Error::customer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Throttling",
                    "Request was denied due to flow control.",
                    "nonce_capacity",
                ),
            })
    }
}

fn invalid_owner(message: &str) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "InvalidOwner",
        message.to_owned(),
        "owner",
    )
}

/// Applies the owner rules (see the module docs).
fn resolve_owner(
    call: &AliyunCall,
    principal: &Principal,
    key_id: &str,
) -> Result<(Arc<Customer>, Option<String>)> {
    for name in ["OwnerAccount", "ResourceOwnerAccount"] {
        if call.param(name).is_some() {
            return Err(invalid_owner(&format!(
                "{name} is not accepted through this gateway; the owner is set from your AccessKey."
            )));
        }
    }
    let owner_id = call.param("OwnerId");
    let (customer, frontend) = match principal {
        Principal::Customer(customer) => {
            if owner_id.is_some_and(|o| o != customer.aliyun_uid) {
                return Err(invalid_owner(
                    "The specified OwnerId doesn't belong to caller.",
                ));
            }
            (customer.clone(), None)
        }
        Principal::Frontend { acts_for } => {
            let uid = owner_id.ok_or_else(|| Error::missing("OwnerId"))?;
            let customer = acts_for
                .iter()
                .find(|c| c.aliyun_uid == uid)
                .ok_or_else(|| invalid_owner("The specified OwnerId doesn't belong to caller."))?;
            (customer.clone(), Some(key_id.to_owned()))
        }
    };
    if call
        .param("ResourceOwnerId")
        .is_some_and(|r| r != customer.aliyun_uid)
    {
        return Err(invalid_owner(
            "The specified ResourceOwnerId doesn't belong to caller.",
        ));
    }
    Ok((customer, frontend))
}

#[cfg(test)]
mod tests;
