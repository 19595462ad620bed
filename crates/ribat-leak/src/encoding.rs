//! Which text encoding a dump is in: UTF-8, Windows-1256 (Arabic) or Latin-1 (read as
//! Windows-1252, its superset), guessed from the bytes when not given.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252, WINDOWS_1256};
use std::borrow::Cow;

/// A dump's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (a byte-order mark is dropped).
    Utf8,
    /// Windows-1256, the Arabic code page of older Windows exports.
    Windows1256,
    /// Latin-1, read as Windows-1252.
    Latin1,
}

impl TextEncoding {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Windows1256 => "windows-1256",
            Self::Latin1 => "latin-1",
        }
    }

    /// The encoding named `s` (`utf-8`, `windows-1256`/`cp1256`, `latin-1`/`iso-8859-1`/`cp1252`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(Self::Utf8),
            "windows-1256" | "cp1256" | "arabic" => Some(Self::Windows1256),
            "latin-1" | "latin1" | "iso-8859-1" | "windows-1252" | "cp1252" => Some(Self::Latin1),
            _ => None,
        }
    }

    fn codec(self) -> &'static Encoding {
        match self {
            Self::Utf8 => UTF_8,
            Self::Windows1256 => WINDOWS_1256,
            Self::Latin1 => WINDOWS_1252,
        }
    }

    /// One line's text. `None` when a UTF-8 file has a line that is not UTF-8 (the caller
    /// counts it; the line is still decoded, with replacement characters, if it wants).
    pub fn decode(self, bytes: &[u8]) -> (Cow<'_, str>, bool) {
        if self == Self::Utf8 {
            let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            return match std::str::from_utf8(b) {
                Ok(s) => (Cow::Borrowed(s), false),
                Err(_) => (String::from_utf8_lossy(b), true),
            };
        }
        let (text, _, _) = self.codec().decode(bytes);
        (text, false)
    }
}

/// Guesses the encoding of a file from its first bytes.
///
/// Valid UTF-8 with any byte above 0x7F is UTF-8 (legacy text almost never is). Otherwise
/// Arabic letters in Windows-1256 sit mostly at 0xC1–0xDF and 0xE1–0xE6, where Latin-1 has
/// capital accented letters that French text seldom uses; French accents (é, è, à, ç) sit
/// at the same places in both. So many bytes in 0xC1–0xDF means Arabic.
pub fn guess(sample: &[u8]) -> TextEncoding {
    let sample = sample.strip_prefix(b"\xef\xbb\xbf").unwrap_or(sample);
    match std::str::from_utf8(sample) {
        Ok(_) => return TextEncoding::Utf8,
        // A sample cut inside a character is still UTF-8.
        Err(e) if e.error_len().is_none() => return TextEncoding::Utf8,
        Err(_) => {}
    }
    let high = sample.iter().filter(|&&b| b >= 0x80).count();
    let arabic = sample
        .iter()
        .filter(|&&b| (0xC1..=0xDF).contains(&b) && b != 0xD7)
        .count();
    if high > 0 && arabic * 10 >= high * 4 {
        TextEncoding::Windows1256
    } else {
        TextEncoding::Latin1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_encodings_are_told_apart() {
        let name = "محمد العلوي";
        let (cp1256, _, _) = WINDOWS_1256.encode(name);
        assert_eq!(guess(&cp1256), TextEncoding::Windows1256);
        assert_eq!(TextEncoding::Windows1256.decode(&cp1256).0, name);
        let (latin, _, _) = WINDOWS_1252.encode("Hélène Benani, Fès, ça va");
        assert_eq!(guess(&latin), TextEncoding::Latin1);
        assert_eq!(guess(name.as_bytes()), TextEncoding::Utf8);
        // Cut in the middle of a two-byte letter.
        assert_eq!(guess(&name.as_bytes()[..3]), TextEncoding::Utf8);
    }

    #[test]
    fn a_broken_utf8_line_is_flagged_not_fatal() {
        let (text, broken) = TextEncoding::Utf8.decode(b"ok \xff\xfe end");
        assert!(broken);
        assert!(text.starts_with("ok ") && text.ends_with(" end"));
        assert_eq!(
            TextEncoding::parse("CP1256"),
            Some(TextEncoding::Windows1256)
        );
        assert_eq!(TextEncoding::parse("ebcdic"), None);
    }
}
