//! A request body kept on the node's disk as it arrives, never whole in memory: the
//! intake's register and declaration files, the console's leaked dumps. Written under a
//! `.partial` name (0600: plaintext personal data), synced, then renamed into place with
//! its directory synced, so that a file the node acknowledged is whole after a crash and a
//! file cut off never passes for one.

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use std::path::Path;

/// Why a body was not kept (what was written of it is the caller's to delete).
#[derive(Debug)]
pub(crate) enum NotKept {
    /// Nothing came.
    Empty,
    /// More than the limit came.
    TooLarge,
    /// The body broke off.
    Broken(String),
    /// The disk refused it.
    Disk(String),
}

/// Writes `chunks` to `partial` (created, mode 0600) and syncs it: its size and SHA-256.
pub(crate) async fn receive<S, E>(
    chunks: S,
    partial: &Path,
    max: u64,
) -> Result<(u64, String), NotKept>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    use tokio::io::AsyncWriteExt;
    let disk = |e: std::io::Error| NotKept::Disk(e.to_string());
    let mut out = {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true).mode(0o600);
        tokio::fs::OpenOptions::from(o)
            .open(partial)
            .await
            .map_err(disk)?
    };
    let mut hash = <sha2::Sha256 as sha2::Digest>::new();
    let mut bytes = 0u64;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| NotKept::Broken(e.to_string()))?;
        bytes += chunk.len() as u64;
        if bytes > max {
            return Err(NotKept::TooLarge);
        }
        sha2::Digest::update(&mut hash, &chunk);
        out.write_all(&chunk).await.map_err(disk)?;
    }
    if bytes == 0 {
        return Err(NotKept::Empty);
    }
    out.sync_all().await.map_err(disk)?;
    Ok((bytes, hex::encode(sha2::Digest::finalize(hash))))
}

/// Renames a kept `partial` to `path` and syncs their directory (blocking: call it off the
/// async threads).
pub(crate) fn commit(partial: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(partial, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(
        parts: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, &'static str>> {
        futures_util::stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)))
    }

    #[tokio::test]
    async fn a_body_is_kept_whole_with_its_digest_or_not_at_all() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let partial = d.path().join("f.partial");
        let (n, sha) = receive(stream(vec![Ok(b"ab"), Ok(b"c")]), &partial, 10)
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mode = std::fs::metadata(&partial).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = d.path().join("f");
        commit(&partial, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert!(!partial.exists());

        let p2 = d.path().join("g.partial");
        assert!(matches!(
            receive(stream(vec![Ok(b"0123456789"), Ok(b"x")]), &p2, 10).await,
            Err(NotKept::TooLarge)
        ));
        let p3 = d.path().join("h.partial");
        assert!(matches!(
            receive(stream(vec![]), &p3, 10).await,
            Err(NotKept::Empty)
        ));
        let p4 = d.path().join("i.partial");
        assert!(matches!(
            receive(stream(vec![Ok(b"a"), Err("reset")]), &p4, 10).await,
            Err(NotKept::Broken(e)) if e == "reset"
        ));
        // A partial left behind is never written over: a second upload gets its own name.
        assert!(matches!(
            receive(stream(vec![Ok(b"a")]), &p4, 10).await,
            Err(NotKept::Disk(_))
        ));
    }
}
