//! A client certificate's name as a chat nick (PROTOCOL.md §3): the first
//! DNS name in the subject alternative names, else the subject's common
//! name, reduced to the nick alphabet `A-Z a-z 0-9 _ -` and 32 characters.

use rustls::pki_types::CertificateDer;

/// Longest nick (PROTOCOL.md §2).
const MAX_NICK: usize = 32;
/// The DER encoding of OID 2.5.4.3, `commonName`.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The nick a certificate reserves, or `None` if its name has no character
/// of the nick alphabet (or the certificate cannot be parsed).
pub fn nick_of(der: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    let dns = cert.valid_dns_names().next().map(str::as_bytes);
    let name = dns.or_else(|| common_name(cert.subject()))?;
    reduce(name)
}

/// Keeps the characters of the nick alphabet, at most [`MAX_NICK`].
pub fn reduce(name: &[u8]) -> Option<String> {
    let nick: String = name
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
        .take(MAX_NICK)
        .map(|&b| char::from(b))
        .collect();
    (!nick.is_empty()).then_some(nick)
}

/// One DER element: (tag, contents, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The first common name in a subject (the contents of its `Name`
/// SEQUENCE): SET { SEQUENCE { OID, value } } ...
fn common_name(mut name: &[u8]) -> Option<&[u8]> {
    while !name.is_empty() {
        let (_, set, rest) = tlv(name)?;
        name = rest;
        let (_, pair, _) = tlv(set)?;
        let (oid_tag, oid, value) = tlv(pair)?;
        if oid_tag == 0x06 && oid == CN_OID {
            return tlv(value).map(|(_, v, _)| v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_keeps_the_nick_alphabet() {
        assert_eq!(
            reduce(b"alice.example.com").as_deref(),
            Some("aliceexamplecom")
        );
        assert_eq!(reduce(b"Bob_Smith-2").as_deref(), Some("Bob_Smith-2"));
        assert_eq!(reduce(&[b'x'; 40]).map(|s| s.len()), Some(32));
        assert_eq!(reduce(b"..."), None);
    }

    #[test]
    fn common_name_is_found_among_other_attributes() {
        // SET{SEQ{OID 2.5.4.6, PrintableString "NZ"}}, SET{SEQ{OID 2.5.4.3, UTF8 "carol"}}
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'N', b'Z', 0x31,
            0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x05, b'c', b'a', b'r', b'o',
            b'l',
        ];
        assert_eq!(common_name(&name), Some(&b"carol"[..]));
        assert_eq!(common_name(&name[..13]), None);
        assert_eq!(common_name(&name[..20]), None);
    }
}
