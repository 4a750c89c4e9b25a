//! Domain types shared by the server and the browser: ids, the event catalog, webhook settings and
//! payload filters. Everything here is plain data with validating constructors, so an invalid value
//! cannot be built, and nothing here touches a database, the network or the clock's side effects.

pub mod account;
pub mod alerts;
pub mod catalog;
pub mod delivery;
pub mod event;
pub mod filter;
pub mod headers;
pub mod ids;
pub mod insights;
pub mod query;
pub mod replay;
pub mod rfc3339;
pub mod schema;
pub mod settings;
pub mod snippets;
pub mod transfer;
pub mod validation;
pub mod views;
pub mod webhook;

pub use validation::ValidationError;

/// Lower-case hex of `bytes` (digests in headers, stored hashes and key ids), two digits a byte.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_hex_gives_two_digits_a_byte() {
        assert_eq!(super::lower_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::lower_hex(&[]), "");
    }
}
