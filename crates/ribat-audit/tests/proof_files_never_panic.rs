//! Outsiders hand `ribat audit verify-proof` any file: it answers valid or invalid, never
//! panics, and never calls a damaged proof valid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_audit::proof_file::verify_text;

const HAPPY: &str = r#"{"leafIdx": 0, "treeSize": 8, "root": "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
 "leafHash": "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
 "proof": ["lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=", "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
           "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="]}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_text_is_refused_without_panic(s in ".{0,400}") {
        prop_assert!(verify_text(&s).is_err());
    }

    #[test]
    fn a_changed_character_never_leaves_a_valid_proof_except_whitespace(at in 0usize..HAPPY.len(), c in prop::char::range('!', '~')) {
        prop_assume!(HAPPY.is_char_boundary(at));
        let original = HAPPY[at..].chars().next().unwrap();
        prop_assume!(c != original && !original.is_whitespace());
        let mut s = HAPPY.to_owned();
        s.replace_range(at..at + original.len_utf8(), &c.to_string());
        // Base64 has a few non-canonical spellings of the last character before `=`; those
        // decode to the same bytes and remain valid. Anything else must not verify.
        if let Ok(what) = verify_text(&s) {
            prop_assert!(original.is_ascii_alphanumeric() && s.contains('='), "{what} after changing {original:?} to {c:?} at {at}");
        }
    }
}

#[test]
fn the_unchanged_proof_is_valid() {
    assert!(verify_text(HAPPY).is_ok());
}
