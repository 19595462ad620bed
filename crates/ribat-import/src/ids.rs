//! The fund's identifiers (see `../shared/FUND-DATA.md`): shapes and check digits.

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

/// Whether a CNSS number is 9 digits and not a placeholder (`000000000` = not yet
/// registered, `999999999` = occasional worker).
pub fn cnss_is_valid(n: &str) -> bool {
    n.len() == 9 && n.bytes().all(|b| b.is_ascii_digit()) && n != "000000000" && n != "999999999"
}

/// Whether `YYYY-MM-DD` is a real calendar date between 1900 and 2100.
pub fn date_is_valid(d: &str) -> bool {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(day)) = (
        d[..4].parse::<u32>(),
        d[5..7].parse::<u32>(),
        d[8..].parse::<u32>(),
    ) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2100).contains(&y) && (1..=days).contains(&day)
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

    #[test]
    fn cnss_and_dates() {
        assert!(cnss_is_valid("123456789"));
        assert!(
            !cnss_is_valid("000000000")
                && !cnss_is_valid("999999999")
                && !cnss_is_valid("12345678a")
        );
        assert!(date_is_valid("2024-02-29") && !date_is_valid("2025-02-29"));
        assert!(
            !date_is_valid("1990-04-31")
                && !date_is_valid("1990-13-01")
                && !date_is_valid("90-01-01")
        );
    }
}
