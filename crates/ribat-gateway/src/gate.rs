//! The gateway's own checks, made before any custodian is asked: the token bound to the
//! caller's certificate, a purpose the role may declare, fields and classes the role may
//! read, the masks it gets, and quotas of distinct subjects per window for the identity
//! and for its whole role. Custodians check the same policy again themselves (I3); the
//! gateway checks first so that a refused request costs no custodian work and gets the
//! most precise message.

use ribat_custodian::clock::Clock;
use ribat_custodian::policy::{Mask, Policy, RolePolicy};
use ribat_custodian::window::{QuotaBook, Scope};
use ribat_identity::{TokenClaims, TokenVerifier};
use ribat_net::listener::Caller;
use ribat_net::problem::Problem;
use ribat_policy::{Class, Purpose};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A request the gate let through: who, why, and how to mask what comes back.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The verified claims.
    pub claims: TokenClaims,
    /// The purpose.
    pub purpose: Purpose,
    /// Masks for the released fields.
    pub masks: BTreeMap<String, Mask>,
}

impl Admitted {
    /// Applies the masks to released fields.
    pub fn mask(&self, fields: &mut BTreeMap<String, String>) {
        for (name, value) in fields.iter_mut() {
            if let Some(m) = self.masks.get(name) {
                *value = m.apply(value);
            }
        }
    }
}

/// The gate's state.
pub struct Gate {
    /// Replaced whole when the mesh puts a new version in force; a request decides by the
    /// one it read first.
    policy: std::sync::RwLock<Arc<Policy>>,
    tokens: TokenVerifier,
    /// Distinct subjects per window, per identity and per role.
    quotas: Mutex<QuotaBook>,
    /// Identities a custodian reported quarantined, until when (Unix seconds).
    quarantined: Mutex<HashMap<String, u64>>,
    /// Tokens whose signature and audience verified, by SHA-256 of the token string:
    /// a signature is checked once per token, expiry and binding at every request.
    verified: Mutex<HashMap<[u8; 32], TokenClaims>>,
    /// The node's clock (simulated in `ribat simulate`).
    clock: Arc<dyn Clock>,
}

/// Most tokens remembered; the memory is emptied when it is full (tokens live minutes).
const VERIFIED_CAPACITY: usize = 50_000;

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// Reads the bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl Gate {
    /// A gate enforcing `policy`, trusting tokens `tokens` verifies, at the time `clock` says.
    pub fn new(policy: Policy, tokens: TokenVerifier, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy: std::sync::RwLock::new(Arc::new(policy)),
            tokens,
            quotas: Mutex::new(QuotaBook::default()),
            quarantined: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, as a date (token times).
    pub fn now_utc(&self) -> time::OffsetDateTime {
        let secs = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Decides by `policy` from the next request on (the mesh put it in force).
    pub fn set_policy(&self, policy: Policy) {
        let mut slot = match self.policy.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(policy);
    }

    /// Checks the token against the connection's certificate.
    pub fn authenticate(
        &self,
        caller: &Caller,
        header: Option<&str>,
    ) -> Result<TokenClaims, Problem> {
        let token = bearer(header).ok_or_else(|| {
            Problem::unauthenticated(
                "token-missing",
                ribat_identity::TokenError::Missing.to_string(),
            )
        })?;
        self.verify_cached(token, caller).map_err(|e| {
            let slug = match e {
                ribat_identity::TokenError::Expired { .. } => "token-expired",
                ribat_identity::TokenError::BadSignature => "token-forged",
                ribat_identity::TokenError::WrongAudience { .. } => "token-audience",
                ribat_identity::TokenError::WrongCertificate => "token-replayed",
                ribat_identity::TokenError::IdentityMismatch { .. } => "token-identity",
                _ => "token-invalid",
            };
            Problem::unauthenticated(slug, e.to_string())
        })
    }

    fn verify_cached(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<TokenClaims, ribat_identity::TokenError> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let known = self.verified.lock().ok().and_then(|m| m.get(&key).cloned());
        let claims = match known {
            Some(c) => c,
            None => {
                let c = self.tokens.verify_signature(token)?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= VERIFIED_CAPACITY {
                        m.clear();
                    }
                    m.insert(key, c.clone());
                }
                c
            }
        };
        ribat_identity::token::check_time(&claims, self.now_utc())?;
        ribat_identity::token::check_binding(&claims, &caller.peer)?;
        Ok(claims)
    }

    fn role<'p>(policy: &'p Policy, role: &str) -> Result<&'p RolePolicy, Problem> {
        policy.roles.get(role).ok_or_else(|| {
            Problem::forbidden(
                "role-unknown",
                format!("role `{role}` is not in the policy; nothing may be read under it"),
            )
        })
    }

    /// Everything but the quota: quarantine, the declared purpose (`None` when missing),
    /// and the classes and fields asked for (each field with its class).
    pub fn admit(
        &self,
        claims: TokenClaims,
        purpose: Option<&str>,
        fields: &[(&str, &Class)],
    ) -> Result<Admitted, Problem> {
        if let Some(until) = self.quarantined_until(&claims.sub) {
            return Err(Problem::forbidden(
                "quarantined",
                format!(
                    "identity `{}` is quarantined until {} UTC; contact the security team",
                    claims.sub,
                    ribat_custodian::error_utc(until)
                ),
            ));
        }
        let policy = self.policy();
        let role = Self::role(&policy, &claims.role)?;
        let purpose = match purpose.map(str::trim) {
            None | Some("") => {
                return Err(Problem::bad_request(
                    "purpose-required",
                    format!(
                        "every read declares a purpose (`purpose`); role `{}` may use: {}",
                        claims.role,
                        list(role.purposes.iter())
                    ),
                ));
            }
            Some(p) => p,
        };
        // The policy's purposes were checked when it was read, so the one that matches is
        // the typed purpose the rest of the read carries.
        let Some(purpose) = role.purposes.get(purpose).cloned() else {
            return Err(Problem::forbidden(
                "purpose-not-allowed",
                format!(
                    "purpose `{purpose}` is not allowed for role `{}`; allowed: {}",
                    claims.role,
                    list(role.purposes.iter())
                ),
            ));
        };
        let mut masks = BTreeMap::new();
        for (field, class) in fields {
            if !role.classes.contains(*class) {
                return Err(Problem::forbidden(
                    "class-not-allowed",
                    format!(
                        "role `{}` may not read class `{class}` (field `{field}`); it may read: {}",
                        claims.role,
                        list(role.classes.iter())
                    ),
                ));
            }
            if let Some(allowed) = &role.fields
                && !allowed.contains(*field)
            {
                return Err(Problem::forbidden(
                    "field-not-allowed",
                    format!(
                        "role `{}` may not read field `{field}`; it may read: {}",
                        claims.role,
                        list(allowed.iter())
                    ),
                ));
            }
            if let Some(m) = role.masks.get(*field) {
                masks.insert((*field).to_owned(), *m);
            }
        }
        Ok(Admitted {
            claims,
            purpose,
            masks,
        })
    }

    /// Counts `subject` against every window of the identity and of its role, or refuses
    /// with the window that would overflow. A refused subject is not counted.
    pub fn count_subject(&self, claims: &TokenClaims, subject: &str) -> Result<(), Problem> {
        let now = self.clock.now();
        let mut book = self
            .quotas
            .lock()
            .map_err(|_| Problem::internal("the gateway's quota state is poisoned; restart it"))?;
        let (id, role) = (claims.sub.as_str(), claims.role.as_str());
        let policy = self.policy();
        if let Err(o) = book.check(&policy, id, role, &[subject], now) {
            let who = match o.scope {
                Scope::Identity => format!("`{id}` may read"),
                Scope::Role => format!("role `{role}` together may read"),
            };
            return Err(Problem::quota(
                format!(
                    "{who} {} distinct subjects per {} s; this request would make {}. Wait or ask a supervisor",
                    o.quota.distinct_records, o.quota.window_secs, o.would_be
                ),
                o.quota.window_secs.min(3600),
            ));
        }
        book.add(&policy, id, role, &[subject], now);
        Ok(())
    }

    /// Remembers a quarantine a custodian reported, so the next request stops here.
    pub fn note_quarantine(&self, identity: &str, until: u64) {
        if let Ok(mut q) = self.quarantined.lock() {
            let e = q.entry(identity.to_owned()).or_insert(0);
            *e = (*e).max(until);
        }
    }

    /// Forgets a quarantine once it is released (by two administrators, checked by
    /// whoever released it).
    pub fn forget_quarantine(&self, identity: &str) {
        if let Ok(mut q) = self.quarantined.lock() {
            q.remove(identity);
        }
    }

    fn quarantined_until(&self, identity: &str) -> Option<u64> {
        let q = self.quarantined.lock().ok()?;
        q.get(identity).copied().filter(|&u| u > self.clock.now())
    }
}

fn list<'a, T: AsRef<str> + 'a>(items: impl Iterator<Item = &'a T>) -> String {
    let v: Vec<&str> = items.map(AsRef::as_ref).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}
