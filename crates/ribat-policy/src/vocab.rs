//! The words every component speaks: roles, purposes, classes of fields and tables.
//!
//! Roles, purposes and classes are named by the deployment's policy file, so they are
//! validated names rather than a closed enum: a new purpose is a policy change, not a
//! release. Tables are fixed by the store's schema, so [`Table`] is an enum. All of them
//! serialize as the bare string they always were: policy files, tokens, wire requests and
//! audit entries written before these types existed read the same.

use serde::{Deserialize, Serialize};
use std::borrow::{Borrow, Cow};
use std::fmt;

/// Longest name a role, purpose or class may have.
pub const MAX_NAME_LEN: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing given.
    #[error("a {kind} name must not be empty")]
    Empty {
        /// Role, purpose or class.
        kind: &'static str,
    },
    /// Longer than [`MAX_NAME_LEN`].
    #[error("{kind} name `{shown}…` is longer than {MAX_NAME_LEN} characters")]
    TooLong {
        /// Role, purpose or class.
        kind: &'static str,
        /// The name's first characters.
        shown: String,
    },
    /// A character outside `a-z 0-9 . _ -`, or a first character that is not a letter
    /// or digit.
    #[error(
        "{kind} name `{name}` may hold only lower-case letters, digits, `.`, `_` and `-`, \
         and must start with a letter or digit"
    )]
    Invalid {
        /// Role, purpose or class.
        kind: &'static str,
        /// The name as given (short enough to show).
        name: String,
    },
    /// Not one of the store's tables.
    #[error("unknown table `{0}` (expected persons, employers, declarations, keys or exports)")]
    UnknownTable(String),
}

fn check(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            shown: name.chars().take(16).collect(),
        });
    }
    if valid(name) {
        Ok(())
    } else {
        Err(NameError::Invalid {
            kind,
            name: name.to_owned(),
        })
    }
}

/// The rule [`check`] explains, in a form `const` items can run at build time.
const fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let alnum = c.is_ascii_lowercase() || c.is_ascii_digit();
        if !(alnum || (i > 0 && matches!(c, b'.' | b'_' | b'-'))) {
            return false;
        }
        i += 1;
    }
    true
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Compares, hashes and borrows as its text, so a `BTreeMap` keyed by it is looked
        /// up with a `&str`.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(Cow<'static, str>);

        impl $ty {
            /// Checks a name.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check($kind, &name)?;
                Ok(Self(Cow::Owned(name)))
            }

            /// A name written in the source, for `const` items: there a malformed name
            /// stops the build. (Called at run time it would panic; names that come
            /// from outside go through [`Self::new`].)
            pub const fn constant(name: &'static str) -> Self {
                assert!(valid(name), "malformed name in the source");
                Self(Cow::Borrowed(name))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0.into_owned()
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), &*self.0)
            }
        }
    };
}

name_type!(
    /// A role of the policy (`clerk`, `partner`, `pension-batch`, …): what an identity's
    /// certificate and token say it is.
    Role,
    "role"
);
name_type!(
    /// Why a read is made (`counter-service`, `investigation`, …); every read declares one.
    Purpose,
    "purpose"
);
name_type!(
    /// A class of fields sealed under one threshold key (`identity`, `financial`): what a
    /// custodian decrypts, never a field.
    Class,
    "class"
);

impl Class {
    /// Names, birth date, CIN, address: what a counter needs.
    pub const IDENTITY: Self = Self::constant("identity");
    /// Salaries and contributions.
    pub const FINANCIAL: Self = Self::constant("financial");
}

impl Purpose {
    /// The purpose under which the blind-index key is opened, and nothing else.
    pub const OPEN_INDEX_KEY: Self = Self::constant("open-index-key");
    /// The purpose under which the leak-digest key is opened (an import writing digests, a
    /// leak scan checking them), and nothing else.
    pub const OPEN_LEAK_KEY: Self = Self::constant("open-leak-key");
    /// A bulk export to a partner, approved by two administrators beforehand.
    pub const PARTNER_EXPORT: Self = Self::constant("partner-export");
    /// Opening an export manifest when a leak carries its canaries.
    pub const LEAK_ATTRIBUTION: Self = Self::constant("leak-attribution");
    /// Writing the data-protection authority's list of affected persons.
    pub const BREACH_NOTIFICATION: Self = Self::constant("breach-notification");
    /// Re-sealing records under a new key epoch: custodians answer it only for records
    /// still under the epoch being rotated away from, so each record is opened once.
    pub const KEY_ROTATION: Self = Self::constant("key-rotation");
}

/// Roles held by third parties (partners, batch systems outside the fund's own staff, the
/// door of 2025): their access carries a review date and lapses unless a security
/// administrator re-certifies it.
pub const REVIEWED_ROLES: &[&str] = &["partner", "pension-batch"];

impl Role {
    /// The node's own service identity, which opens the service keys.
    pub const SERVICE: Self = Self::constant("service");
    /// The security team: leak attribution and breach notification.
    pub const SECURITY: Self = Self::constant("security");
    /// A partner export running under its recipient's name.
    pub const EXPORT: Self = Self::constant("export");
}

/// A table of the store. Fixed by the schema, so closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Table {
    /// Insured persons, keyed by an opaque id; the CNSS number is found by blind index.
    Persons,
    /// Employers (affiliates).
    Employers,
    /// Monthly salary declarations.
    Declarations,
    /// Sealed service keys (blind index, leak digests).
    Keys,
    /// Sealed manifests of partner exports (which canaries went to whom).
    Exports,
}

impl Table {
    /// Every table.
    pub const ALL: [Self; 5] = [
        Self::Persons,
        Self::Employers,
        Self::Declarations,
        Self::Keys,
        Self::Exports,
    ];

    /// The table's name in the store and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Persons => "persons",
            Self::Employers => "employers",
            Self::Declarations => "declarations",
            Self::Keys => "keys",
            Self::Exports => "exports",
        }
    }
}

impl std::str::FromStr for Table {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| NameError::UnknownTable(s.chars().take(MAX_NAME_LEN).collect()))
    }
}

impl TryFrom<String> for Table {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<Table> for &'static str {
    fn from(t: Table) -> &'static str {
        t.as_str()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_written_in_the_source_pass_their_own_check() {
        for c in [Class::IDENTITY, Class::FINANCIAL] {
            assert_eq!(Class::new(c.as_str()), Ok(c));
        }
        for p in [
            Purpose::OPEN_INDEX_KEY,
            Purpose::OPEN_LEAK_KEY,
            Purpose::PARTNER_EXPORT,
            Purpose::LEAK_ATTRIBUTION,
            Purpose::BREACH_NOTIFICATION,
        ] {
            assert_eq!(Purpose::new(p.as_str()), Ok(p));
        }
        for r in [Role::SERVICE, Role::SECURITY, Role::EXPORT] {
            assert_eq!(Role::new(r.as_str()), Ok(r));
        }
        for t in Table::ALL {
            assert_eq!(t.as_str().parse::<Table>(), Ok(t));
        }
    }

    #[test]
    fn a_bad_name_is_refused_saying_what_is_wrong() {
        let e = Role::new("").unwrap_err();
        assert_eq!(e.to_string(), "a role name must not be empty");
        let e = Purpose::new("Counter Service").unwrap_err();
        assert!(e.to_string().contains("`Counter Service`"), "{e}");
        assert!(e.to_string().starts_with("purpose name"), "{e}");
        assert!(Class::new("-identity").is_err());
        assert!(Class::new("identity\n").is_err());
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let e = Role::new(long).unwrap_err();
        assert!(e.to_string().contains("longer than 64"), "{e}");
        assert!(Role::new("a".repeat(MAX_NAME_LEN)).is_ok());
        let e = "salaries".parse::<Table>().unwrap_err();
        assert!(e.to_string().contains("unknown table `salaries`"), "{e}");
    }

    #[test]
    fn they_travel_as_the_bare_strings_they_always_were() {
        let json =
            serde_json::json!({"role": "clerk", "table": "persons", "classes": ["identity"]});
        #[derive(Deserialize, Serialize)]
        struct Wire {
            role: Role,
            table: Table,
            classes: Vec<Class>,
        }
        let w: Wire = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(w.role, "clerk");
        assert_eq!(w.table, Table::Persons);
        assert_eq!(w.classes, vec![Class::IDENTITY]);
        assert_eq!(serde_json::to_value(&w).unwrap(), json);
        let bad = serde_json::json!({"role": "Clerk", "table": "persons", "classes": []});
        let e = serde_json::from_value::<Wire>(bad).err().unwrap();
        assert!(e.to_string().contains("role name `Clerk`"), "{e}");
    }

    #[test]
    fn a_map_keyed_by_a_name_is_looked_up_with_text() {
        let m = BTreeMap::from([(Role::new("clerk").unwrap(), 1)]);
        assert_eq!(m.get("clerk"), Some(&1));
        assert_eq!(m.get("partner"), None);
    }
}
