//! Bearer tokens: created with 256 random bits, shown once, stored only as a SHA-256 hash.
//! Tokens are random rather than chosen by people, so a fast hash is enough.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::Engine;
use rand::RngCore;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{now_rfc3339, StoreError, TOKENS};

/// Prefix of every token, so secret scanners and people can recognize one.
const TOKEN_PREFIX: &str = "idps_";

/// A stored token, without the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the token.
    #[serde(rename = "sha256")]
    pub hash: String,
    pub created: String,
    pub last_used: Option<String>,
}

/// Raised by token commands.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name must be 1 to 100 printable characters, found {0:?}")]
    InvalidName(String),
    #[error("no token with id {0:?}; `idpsync token list` shows the ids")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl super::writer::JobError for TokenError {
    fn aborts(&self) -> bool {
        matches!(self, TokenError::Store(_))
    }
}

impl From<redb::TableError> for TokenError {
    fn from(error: redb::TableError) -> Self {
        TokenError::Store(error.into())
    }
}

impl From<redb::StorageError> for TokenError {
    fn from(error: redb::StorageError) -> Self {
        TokenError::Store(error.into())
    }
}

fn hash_hex(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn short_id() -> String {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Creates a token named `name`; returns its record and the token, which is never stored.
pub fn create(txn: &WriteTransaction, name: &str) -> Result<(TokenRecord, String), TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(TokenError::InvalidName(name.to_string()));
    }
    let token = generate_token();
    let record = TokenRecord {
        id: short_id(),
        name: name.to_string(),
        hash: hash_hex(&token),
        created: now_rfc3339(),
        last_used: None,
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    txn.open_table(TOKENS)?.insert(record.id.as_str(), bytes.as_slice())?;
    Ok((record, token))
}

/// Deletes a token; requests that present it fail from then on.
pub fn revoke(txn: &WriteTransaction, id: &str) -> Result<TokenRecord, TokenError> {
    let mut table = txn.open_table(TOKENS)?;
    let removed = table.remove(id)?.map(|bytes| serde_json::from_slice::<TokenRecord>(bytes.value()));
    match removed {
        Some(Ok(record)) => Ok(record),
        Some(Err(_)) => Ok(TokenRecord { id: id.to_string(), name: String::new(), hash: String::new(), created: String::new(), last_used: None }),
        None => Err(TokenError::NotFound(id.to_string())),
    }
}

/// Every token record, oldest first.
pub fn list(txn: &ReadTransaction) -> Result<Vec<TokenRecord>, TokenError> {
    let table = txn.open_table(TOKENS)?;
    let mut records = Vec::new();
    for entry in table.iter()? {
        let (_, bytes) = entry?;
        if let Ok(record) = serde_json::from_slice::<TokenRecord>(bytes.value()) {
            records.push(record);
        }
    }
    records.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(records)
}

/// The answer to `token create`: the only time the token is shown.
pub fn created_view(record: &TokenRecord, token: &str, scim_url: &str) -> serde_json::Value {
    serde_json::json!({"id": record.id, "name": record.name, "created": record.created, "token": token, "scim_url": scim_url})
}

/// Stores last-use times that the daemon collected in memory.
pub fn record_last_used(txn: &WriteTransaction, times: &HashMap<String, String>) -> Result<(), TokenError> {
    let mut table = txn.open_table(TOKENS)?;
    for (id, time) in times {
        let record = table.get(id.as_str())?.and_then(|bytes| serde_json::from_slice::<TokenRecord>(bytes.value()).ok());
        if let Some(mut record) = record {
            record.last_used = Some(time.clone());
            let bytes = serde_json::to_vec(&record).unwrap_or_default();
            table.insert(id.as_str(), bytes.as_slice())?;
        }
    }
    Ok(())
}

/// The daemon's view of valid tokens: their hashes in memory, checked in constant time, and
/// last-use times kept in memory until `take_last_used` hands them to the store.
#[derive(Default)]
pub struct TokenVerifier {
    hashes: ArcSwap<Vec<(String, [u8; 32])>>,
    last_used: Mutex<HashMap<String, String>>,
}

impl TokenVerifier {
    pub fn new() -> Arc<TokenVerifier> {
        Arc::new(TokenVerifier::default())
    }

    /// Replaces the set of valid tokens with the given records.
    pub fn load(&self, records: &[TokenRecord]) {
        let hashes = records
            .iter()
            .filter_map(|record| {
                let mut hash = [0u8; 32];
                for (index, byte) in hash.iter_mut().enumerate() {
                    let pair = record.hash.get(index * 2..index * 2 + 2)?;
                    *byte = u8::from_str_radix(pair, 16).ok()?;
                }
                Some((record.id.clone(), hash))
            })
            .collect();
        self.hashes.store(Arc::new(hashes));
    }

    /// Returns the id of the token, or None. Every stored hash is compared in constant time,
    /// and no comparison stops early, so timing reveals nothing about which bytes matched.
    pub fn verify(&self, token: &str) -> Option<String> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let hashes = self.hashes.load();
        let mut found = None;
        for (id, hash) in hashes.iter() {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(id.clone());
            }
        }
        if let Some(id) = &found {
            if let Ok(mut last_used) = self.last_used.lock() {
                last_used.insert(id.clone(), now_rfc3339());
            }
        }
        found
    }

    /// Last-use times collected but not yet taken, without taking them.
    pub fn pending_last_used(&self) -> HashMap<String, String> {
        self.last_used.lock().map(|times| times.clone()).unwrap_or_default()
    }

    /// Last-use times collected since the previous call.
    pub fn take_last_used(&self) -> HashMap<String, String> {
        self.last_used.lock().map(|mut times| std::mem::take(&mut *times)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_accepts_only_loaded_tokens() {
        let token = generate_token();
        let record = TokenRecord { id: "a1".into(), name: "entra".into(), hash: hash_hex(&token), created: now_rfc3339(), last_used: None };
        let verifier = TokenVerifier::default();
        assert_eq!(verifier.verify(&token), None);
        verifier.load(&[record]);
        assert_eq!(verifier.verify(&token).as_deref(), Some("a1"));
        assert_eq!(verifier.verify("idps_wrong"), None);
        assert!(verifier.take_last_used().contains_key("a1"));
        verifier.load(&[]);
        assert_eq!(verifier.verify(&token), None);
    }

    #[test]
    fn generated_tokens_differ_and_carry_prefix() {
        let first = generate_token();
        assert!(first.starts_with(TOKEN_PREFIX));
        assert!(first.len() > 40);
        assert_ne!(first, generate_token());
    }
}
