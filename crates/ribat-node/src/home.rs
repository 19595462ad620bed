//! The node directory every command works in, and what lives inside it.
//!
//! Resolution: `--home DIR`, else `$RIBAT_HOME`, else `$XDG_DATA_HOME/ribat`, else
//! `$HOME/.local/share/ribat`. Nothing is written outside it.
//!
//! ```text
//!   HOME/group.json                    public group file
//!   HOME/store.sqlite                  sealed records (+ -wal, -shm)
//!   HOME/custodians/custodian-<i>/     one directory per custodian (see ribat-custodian)
//! ```

use crate::bail;
use crate::error::{Context, Result};
use std::path::{Path, PathBuf};

/// A node directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    store: StoreSpec,
}

impl Home {
    /// Resolves the directory from the flag, the environment, or the default.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        let root = match flag {
            Some(p) => p,
            None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
                Some(x) => PathBuf::from(x).join("ribat"),
                None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                    Some(h) => PathBuf::from(h).join(".local/share/ribat"),
                    None => bail!("no node directory: pass --home DIR or set RIBAT_HOME"),
                },
            },
        };
        Ok(Self {
            root,
            store: StoreSpec::Sqlite,
        })
    }

    /// A home at a given path.
    pub fn at(root: PathBuf) -> Self {
        Self {
            root,
            store: StoreSpec::Sqlite,
        }
    }

    /// The same node with its records in `store` (the embedded SQLite file by default).
    pub fn with_store(mut self, store: StoreSpec) -> Self {
        self.store = store;
        self
    }

    /// Where the node keeps its sealed records.
    pub fn store(&self) -> &StoreSpec {
        &self.store
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory (owner-only) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(self.custodians_root())
            .with_context(|| format!("cannot create node directory {}", self.root.display()))?;
        restrict(&self.root)?;
        Ok(())
    }

    /// The public group file.
    pub fn group_file(&self) -> PathBuf {
        self.root.join("group.json")
    }

    /// The SQLite store's file: HOME/store.sqlite, or the file a `sqlite:PATH` store names
    /// (a mesh's nodes on one host share one).
    pub fn store_file(&self) -> PathBuf {
        match &self.store {
            StoreSpec::SqliteAt(p) => p.clone(),
            _ => self.root.join("store.sqlite"),
        }
    }

    fn custodians_root(&self) -> PathBuf {
        self.root.join("custodians")
    }

    /// Directory of custodian `i` (1-based).
    pub fn custodian_dir(&self, i: usize) -> PathBuf {
        self.custodians_root().join(format!("custodian-{i}"))
    }

    /// Whether keys were initialised here.
    pub fn has_keys(&self) -> bool {
        self.group_file().exists()
    }
}

/// Makes a directory readable by its owner only.
pub fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict permissions of {}", path.display()))
}

/// Where a node keeps its sealed records: `sqlite` (default, `HOME/store.sqlite`),
/// `sqlite:PATH` (another SQLite file), or `postgres:<conninfo>` with `RIBAT_STORE_SCHEMA`
/// (default `ribat`), set by the global `--store` and `--store-schema` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded SQLite file.
    Sqlite,
    /// A SQLite file elsewhere.
    SqliteAt(PathBuf),
    /// A PostgreSQL schema.
    Postgres {
        /// libpq connection string or URL.
        conninfo: String,
        /// Schema.
        schema: String,
    },
}

impl StoreSpec {
    /// Parses the `--store` value.
    pub fn parse(spec: &str, schema: &str) -> Result<Self> {
        match spec {
            "sqlite" | "" => Ok(Self::Sqlite),
            _ => match (spec.strip_prefix("postgres:"), spec.strip_prefix("sqlite:")) {
                (Some(c), _) if !c.is_empty() => Ok(Self::Postgres {
                    conninfo: c.to_owned(),
                    schema: schema.to_owned(),
                }),
                (_, Some(p)) if !p.is_empty() => Ok(Self::SqliteAt(PathBuf::from(p))),
                _ => bail!(
                    "--store `{spec}`: expected `sqlite`, `sqlite:PATH` or `postgres:<connection string>`"
                ),
            },
        }
    }

    /// The spec as `--store` takes it (the schema apart).
    pub fn to_arg(&self) -> String {
        match self {
            Self::Sqlite => "sqlite".into(),
            Self::SqliteAt(p) => format!("sqlite:{}", p.display()),
            Self::Postgres { conninfo, .. } => format!("postgres:{conninfo}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_option_is_sqlite_or_postgres_with_a_connection_string() {
        assert!(matches!(
            StoreSpec::parse("sqlite", "s"),
            Ok(StoreSpec::Sqlite)
        ));
        assert!(matches!(StoreSpec::parse("", "s"), Ok(StoreSpec::Sqlite)));
        assert!(matches!(
            StoreSpec::parse("postgres:host=/run/pg dbname=ribat", "fund"),
            Ok(StoreSpec::Postgres { conninfo, schema })
                if conninfo == "host=/run/pg dbname=ribat" && schema == "fund"
        ));
        assert_eq!(
            StoreSpec::parse("sqlite:/m/store.sqlite", "s").unwrap(),
            StoreSpec::SqliteAt(PathBuf::from("/m/store.sqlite"))
        );
        for good in ["sqlite", "sqlite:/m/s.sqlite", "postgres:dbname=x"] {
            assert_eq!(StoreSpec::parse(good, "s").unwrap().to_arg(), good);
        }
        for bad in ["postgres:", "mysql:x", "postgres", "sqlite:"] {
            let e = StoreSpec::parse(bad, "s").unwrap_err().to_string();
            assert!(
                e.contains("expected `sqlite`, `sqlite:PATH` or `postgres:<connection string>`"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_node_directory_carries_its_store_and_lays_out_its_files() {
        let home = Home::at(PathBuf::from("/n"));
        assert!(matches!(home.store(), StoreSpec::Sqlite));
        assert_eq!(home.store_file(), PathBuf::from("/n/store.sqlite"));
        assert_eq!(home.group_file(), PathBuf::from("/n/group.json"));
        assert_eq!(
            home.custodian_dir(2),
            PathBuf::from("/n/custodians/custodian-2")
        );
        let shared = home
            .clone()
            .with_store(StoreSpec::SqliteAt(PathBuf::from("/m/store.sqlite")));
        assert_eq!(shared.store_file(), PathBuf::from("/m/store.sqlite"));
        let pg = home.with_store(StoreSpec::Postgres {
            conninfo: "dbname=x".into(),
            schema: "ribat".into(),
        });
        assert!(matches!(pg.store(), StoreSpec::Postgres { .. }));
        assert_eq!(
            Home::resolve(Some(PathBuf::from("/flag"))).unwrap().root(),
            Path::new("/flag")
        );
    }
}
