//! Files that refuse to be written: how the audit log's tests take its disk away.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the tests run as root (as CI does), where permissions do not stop a write and
/// the immutable attribute is used instead.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Makes `dir` and the files directly in it unwritable (`on`), or writable again. As root,
/// with the immutable attribute, which binds even a descriptor opened before; otherwise by
/// permissions, which bind at the next open. Fails with the file it could not change, or
/// with chattr's status.
pub fn make_unwritable(dir: &Path, on: bool) -> std::io::Result<()> {
    let mut paths: Vec<PathBuf> = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir)? {
        paths.push(e?.path());
    }
    if is_root() {
        let st = Command::new("chattr")
            .arg(if on { "+i" } else { "-i" })
            .args(&paths)
            .status()?;
        if !st.success() {
            return Err(std::io::Error::other(format!(
                "chattr {} on {} failed: {st}",
                if on { "+i" } else { "-i" },
                dir.display()
            )));
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        for p in paths.iter().rev() {
            let mode = match (p.is_dir(), on) {
                (true, true) => 0o500,
                (true, false) => 0o700,
                (false, true) => 0o400,
                (false, false) => 0o600,
            };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_made_unwritable_refuses_a_new_file_and_takes_one_again_after() {
        let tmp = std::env::temp_dir().join(format!("ribat-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("a"), b"1").unwrap();
        make_unwritable(&tmp, true).unwrap();
        let refused = std::fs::write(tmp.join("b"), b"2").is_err();
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.join("a"))
            .is_ok();
        make_unwritable(&tmp, false).unwrap();
        assert!(refused, "a new file was created in an unwritable directory");
        assert!(!appended, "an unwritable file was opened for appending");
        std::fs::write(tmp.join("b"), b"2").unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
