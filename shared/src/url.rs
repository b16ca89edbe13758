//! Percent-encoding of URL components (by the `percent-encoding` crate), one rule for
//! the relay's HTTP clients and the dashboard.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What stays as it is in a path segment or a query value: RFC 3986's unreserved
/// characters (letters, digits, `-`, `.`, `_`, `~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`COMPONENT`] and `,`, which the dashboard's URLs use between list items.
const LIST: &AsciiSet = &COMPONENT.remove(b',');

/// `text` percent-encoded for one path segment or query value:
/// `a b/ç` → `a%20b%2F%C3%A7`.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Like [`encode`], keeping `,` (for a value that is a comma-separated list).
pub fn encode_list(text: &str) -> String {
    utf8_percent_encode(text, LIST).to_string()
}

/// Undoes [`encode`] and [`encode_list`], reading `+` as a space (as forms send it);
/// malformed escapes are kept as they are, and bytes that are not UTF-8 become U+FFFD.
pub fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_and_decoded() {
        assert_eq!(encode("a b/ç"), "a%20b%2F%C3%A7");
        assert_eq!(encode("1704556900000-0"), "1704556900000-0");
        assert_eq!(encode("../a b/é"), "..%2Fa%20b%2F%C3%A9");
        assert_eq!(encode("a,b"), "a%2Cb");
        assert_eq!(encode_list("a,b c"), "a,b%20c");
        for text in ["a b/ç", "100%", "x+y", "cortex:tasks:high", ""] {
            assert_eq!(decode(&encode(text)), text);
        }
        assert_eq!(decode("a+b%20c"), "a b c");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }
}
