//! Where custodians' passphrases come from: a prompt, the environment, or files.
//!
//! - `prompt`: asked on the terminal without echo (twice at `keys init`);
//! - `env`: `RIBAT_CUSTODIAN_<i>_PASSPHRASE` for custodian `i`;
//! - `dir:PATH`: the file `PATH/custodian-<i>.pass`, which must be readable by its owner
//!   only (like an SSH key).
//!
//! In production each custodian's passphrase is held by a different person on a different
//! machine; the embedded shape holds all of them in one process, which is what it is for.

use crate::bail;
use crate::error::{Context, Result};
use ribat_crypto::secret::Passphrase;
use std::path::PathBuf;
use std::str::FromStr;

/// A passphrase source.
#[derive(Debug, Clone)]
pub enum Source {
    /// Ask on the terminal.
    Prompt,
    /// Read `RIBAT_CUSTODIAN_<i>_PASSPHRASE`.
    Env,
    /// Read `DIR/custodian-<i>.pass`.
    Dir(PathBuf),
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "prompt" => Ok(Self::Prompt),
            "env" => Ok(Self::Env),
            _ => match s.strip_prefix("dir:") {
                Some(p) if !p.is_empty() => Ok(Self::Dir(PathBuf::from(p))),
                _ => Err(format!("`{s}`: expected prompt, env or dir:PATH")),
            },
        }
    }
}

/// Name of the environment variable holding custodian `i`'s passphrase.
pub fn env_name(i: usize) -> String {
    format!("RIBAT_CUSTODIAN_{i}_PASSPHRASE")
}

/// The file holding custodian `i`'s passphrase in a `dir:` source.
pub fn file_name(i: usize) -> String {
    format!("custodian-{i}.pass")
}

impl Source {
    /// Custodian `i`'s passphrase; `confirm` asks twice at a prompt.
    pub fn get(&self, i: usize, confirm: bool) -> Result<Passphrase> {
        let p = match self {
            Self::Prompt => {
                let first = rpassword::prompt_password(format!("passphrase for custodian {i}: "))
                    .context(
                    "cannot read a passphrase from the terminal; use --passphrases env or dir:PATH",
                )?;
                if confirm {
                    let again = rpassword::prompt_password(format!("again, for custodian {i}: "))
                        .context("cannot read the passphrase confirmation")?;
                    if again != first {
                        bail!("the two passphrases for custodian {i} differ");
                    }
                }
                first
            }
            Self::Env => std::env::var(env_name(i)).with_context(|| {
                format!(
                    "{} is not set (or not UTF-8); set it or use --passphrases prompt",
                    env_name(i)
                )
            })?,
            Self::Dir(d) => {
                let path = d.join(file_name(i));
                check_private(&path)?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                text.trim_end_matches(['\n', '\r']).to_owned()
            }
        };
        if p.chars().count() < 12 {
            bail!("custodian {i}'s passphrase is shorter than 12 characters; choose a longer one");
        }
        Ok(Passphrase::new(p))
    }
}

fn check_private(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Passphrases for a throwaway node (the demo, a benchmark): drawn at random and written
/// owner-only into `dir`, so that later commands (`--passphrases dir:…`) can reopen it.
pub fn random_files(dir: &std::path::Path, n: usize) -> Result<Source> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    crate::home::restrict(dir)?;
    for i in 1..=n {
        let raw = ribat_crypto::secret::SecretBytes::<18>::random()?;
        let pass: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(hex::encode(raw.expose()));
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(dir.join(file_name(i)))?
            .write_all(pass.as_bytes())?;
    }
    Ok(Source::Dir(dir.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_source_is_prompt_env_or_a_directory_and_anything_else_says_so() {
        assert!(matches!("prompt".parse::<Source>(), Ok(Source::Prompt)));
        assert!(matches!("env".parse::<Source>(), Ok(Source::Env)));
        assert!(
            matches!("dir:/x".parse::<Source>(), Ok(Source::Dir(p)) if p.as_path() == std::path::Path::new("/x"))
        );
        for bad in ["", "dir:", "file:/x", "Prompt"] {
            let e = bad.parse::<Source>().unwrap_err();
            assert!(e.contains("expected prompt, env or dir:PATH"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_passphrase_file_must_be_owner_only_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        std::fs::write(&path, "correct horse battery staple\n").unwrap();
        let source = Source::Dir(dir.path().to_owned());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = source.get(1, false).unwrap_err().chain();
        assert!(
            e.contains("readable by other users") && e.contains("chmod 600"),
            "{e}"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = source.get(1, false).unwrap();
        assert_eq!(format!("{p:?}"), "Passphrase([redacted])");

        std::fs::write(&path, "short\n").unwrap();
        let e = source.get(1, false).unwrap_err().chain();
        assert!(e.contains("shorter than 12 characters"), "{e}");

        let e = source.get(2, false).unwrap_err().chain();
        assert!(e.contains(&file_name(2)), "a missing file is named: {e}");
    }

    #[test]
    fn random_passphrase_files_are_owner_only_and_open_again() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("passphrases");
        let source = random_files(&at, 3).unwrap();
        for i in 1..=3 {
            let mode = std::fs::metadata(at.join(file_name(i)))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "custodian {i}'s file is owner-only");
            assert!(source.get(i, false).is_ok());
        }
    }
}
