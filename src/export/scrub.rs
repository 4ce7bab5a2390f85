//! What makes an export safe to hand to a researcher: personal details in the words
//! replaced by placeholders, and people named by keyed pseudonyms.
//!
//! A stored pseudonym is random, but anyone holding the database could link it to a
//! platform id. Export pseudonyms are an HMAC of the platform id under a key kept outside
//! the database (`storage.export_key_file`, or `KINDRED_EXPORT_KEY`): the same person gets
//! the same pseudonym in every export made with that key, and whoever receives an export
//! cannot recompute it from a platform id.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use regex::Regex;
use sha2::{Digest, Sha256};

/// The secret behind export pseudonyms.
#[derive(Clone)]
pub struct PseudonymKey(Vec<u8>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey([redacted])")
    }
}

impl PseudonymKey {
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 16 {
            bail!("an export key must be at least 16 bytes long");
        }
        Ok(Self(secret.to_vec()))
    }

    /// `KINDRED_EXPORT_KEY` if set, else the key in `path`, created (32 random bytes, hex,
    /// mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Ok(k) = std::env::var("KINDRED_EXPORT_KEY") {
            if !k.trim().is_empty() {
                return Self::new(k.trim().as_bytes()).context("KINDRED_EXPORT_KEY is too short");
            }
        }
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the export key {}", path.display()))?;
            return Self::new(text.trim().as_bytes())
                .with_context(|| format!("the export key in {} is too short", path.display()));
        }
        let key = crate::store::random_token(64);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = private_file(path)?;
        writeln!(f, "{key}")?;
        tracing::info!(path = %path.display(), "created the export pseudonym key");
        Self::new(key.as_bytes())
    }

    /// The export pseudonym of a person: `p-` and 16 hex digits of HMAC-SHA256.
    pub fn pseudonym(&self, platform: &str, platform_user_id: &str) -> String {
        let mac = hmac_sha256(&self.0, format!("{platform}:{platform_user_id}").as_bytes());
        let hex: String = mac[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("p-{hex}")
    }
}

/// A new file only its owner can read.
pub(crate) fn private_file(path: &Path) -> Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Replaces personal details in a message with placeholders: email addresses, web
/// addresses, phone numbers (8 digits or more), @mentions and Discord mentions.
pub struct Scrubber {
    email: Regex,
    url: Regex,
    discord_mention: Regex,
    mention: Regex,
    phone: Regex,
}

impl Default for Scrubber {
    fn default() -> Self {
        Self::new()
    }
}

impl Scrubber {
    pub fn new() -> Self {
        let re = |p: &str| Regex::new(p).expect("the scrubber's patterns compile");
        Self {
            email: re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
            url: re(
                r"(?i)\b(?:https?://|www\.)[^\s<>]+|\b[a-z0-9-]+\.(?:com|org|net|io|co|me|ly|gg|app|dev)(?:/[^\s<>]*)?\b",
            ),
            discord_mention: re(r"<(?:@[!&]?|#)\d+>"),
            mention: re(r"(?:^|\B)@[A-Za-z0-9_.]{2,}"),
            phone: re(r"\+?\(?\d[\d\s().-]{6,}\d"),
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let t = self.email.replace_all(text, "[email]");
        let t = self.url.replace_all(&t, "[url]");
        let t = self.discord_mention.replace_all(&t, "[mention]");
        let t = self.mention.replace_all(&t, "[mention]");
        let t = self.phone.replace_all(&t, |c: &regex::Captures| {
            let digits = c[0].chars().filter(|ch| ch.is_ascii_digit()).count();
            if digits >= 8 {
                "[phone]".to_string()
            } else {
                c[0].to_string()
            }
        });
        t.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn pseudonyms_are_stable_with_the_key_and_differ_without_it() {
        let a = PseudonymKey::new(b"0123456789abcdef0123").unwrap();
        let b = PseudonymKey::new(b"another key, another world").unwrap();
        assert_eq!(
            a.pseudonym("telegram", "1001"),
            a.pseudonym("telegram", "1001")
        );
        assert_ne!(
            a.pseudonym("telegram", "1001"),
            a.pseudonym("telegram", "1002")
        );
        assert_ne!(
            a.pseudonym("telegram", "1001"),
            b.pseudonym("telegram", "1001")
        );
        assert!(!a.pseudonym("telegram", "1001").contains("1001"));
        assert!(PseudonymKey::new(b"short").is_err());
    }

    #[test]
    fn personal_details_become_placeholders() {
        let s = Scrubber::new();
        let out = s.scrub(
            "mail me at jane.doe+x@example.co.uk or call +44 (0)20 7946 0958, see https://my.site/page?id=3 or www.blog.net, ask @sam_k or <@!123456789012345678> in <#987654321>",
        );
        for gone in [
            "jane",
            "7946",
            "my.site",
            "blog.net",
            "sam_k",
            "123456789012345678",
            "987654321",
        ] {
            assert!(!out.contains(gone), "{gone} survived: {out}");
        }
        for kept in ["[email]", "[phone]", "[url]", "[mention]"] {
            assert!(out.contains(kept), "{out}");
        }
        // Ordinary numbers and words stay.
        assert_eq!(
            s.scrub("I slept 4 hours, it's 2024 and I'm 17"),
            "I slept 4 hours, it's 2024 and I'm 17"
        );
    }
}
