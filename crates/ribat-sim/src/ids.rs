//! Identifier shapes of the fund (see `../shared/FUND-DATA.md`) and their check digits.

/// The RIB key: `97 − ((first 22 digits × 100) mod 97)`. *(to verify against a bank's
/// specification; kept in this one function.)*
pub fn rib_key(first22: &str) -> Option<u8> {
    if first22.len() != 22 || !first22.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u128 = first22.parse().ok()?;
    u8::try_from(97 - (n * 100) % 97).ok()
}

/// Whether a 24-digit RIB carries a valid key.
pub fn rib_is_valid(rib: &str) -> bool {
    rib.len() == 24
        && rib.is_ascii()
        && rib_key(&rib[..22]).is_some_and(|k| rib[22..].parse::<u8>().ok() == Some(k))
}

/// Builds a RIB from bank, city and account numbers.
pub fn make_rib(bank: u16, city: u16, account: u64) -> Option<String> {
    let first = format!("{bank:03}{city:03}{account:016}");
    rib_key(&first).map(|k| format!("{first}{k:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rib_keys_round_trip_and_catch_single_digit_errors() {
        let rib = make_rib(7, 780, 1234567890123456).unwrap();
        assert_eq!(rib.len(), 24);
        assert!(rib_is_valid(&rib));
        for i in 0..22 {
            let mut b = rib.clone().into_bytes();
            b[i] = if b[i] == b'9' { b'0' } else { b[i] + 1 };
            assert!(!rib_is_valid(std::str::from_utf8(&b).unwrap()), "digit {i}");
        }
        assert!(!rib_is_valid("12345"));
        assert_eq!(rib_key("abc"), None);
    }
}
