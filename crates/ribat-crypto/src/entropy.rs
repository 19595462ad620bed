//! The one source of randomness: the operating system, through `getrandom`.
//!
//! Every key, nonce and sealing randomness comes from here. A failure of the source is an
//! error, never a silent fallback.

use crate::{CryptoError, Result};
use curve25519_dalek::scalar::Scalar;
use getrandom::SysRng;
use rand_core::UnwrapErr;

/// Fills `buf` with fresh random bytes.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| CryptoError::Entropy(e.to_string()))
}

/// A uniformly random scalar (wide reduction of 64 random bytes).
pub(crate) fn scalar() -> Result<Scalar> {
    let mut wide = zeroize::Zeroizing::new([0u8; 64]);
    fill(wide.as_mut())?;
    Ok(Scalar::from_bytes_mod_order_wide(&wide))
}

/// An RNG handle for libraries that take one (vsss-rs). `UnwrapErr` panics if the OS source
/// fails mid-call; we probe the source first so that a broken source is reported as an error.
pub(crate) fn rng() -> Result<UnwrapErr<SysRng>> {
    let mut probe = [0u8; 1];
    fill(&mut probe)?;
    Ok(UnwrapErr(SysRng))
}
