//! `LightClientConfig` (a plain JS object) into a [`ClientConfig`] and a store choice.
//!
//! Parsing is strict (unknown fields and wrong types are [`ErrorCode::InvalidConfig`]) so a
//! misspelt option fails at `create` instead of being silently ignored. The checkpoint is read
//! apart from the other fields so that its faults carry [`ErrorCode::InvalidCheckpoint`].
//!
//! The object goes through `JSON.stringify` and serde_json rather than serde-wasm-bindgen:
//! serde-wasm-bindgen reads only a struct's declared fields, so `deny_unknown_fields` would
//! never fire (a test caught that). JSON also drops `undefined` fields, as JS callers expect.

use js_sys::Reflect;
use libp2p::Multiaddr;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use crate::chain::{Checkpoint, Hash};
use crate::client::{ClientConfig, ClientError, ErrorCode};
use crate::light::LightOptions;

/// The IndexedDB database name used when `storeName` is absent.
pub const DEFAULT_STORE_NAME: &str = "headway";

/// Every field of the config but the checkpoint (which is parsed on its own, see above).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Fields {
    /// Text, or the JSON form as a string or object: see [`parse_checkpoint`].
    checkpoint: serde_json::Value,
    #[serde(default)]
    genesis_hash: Option<String>,
    bootnodes: Vec<String>,
    /// `undefined` and absent mean the default; `null` is told apart with `Reflect`.
    #[serde(default)]
    store_name: Option<String>,
    #[serde(default)]
    keep_headers: Option<u64>,
    #[serde(default)]
    trust_period_ms: Option<u64>,
    #[serde(default)]
    refuse_stale_checkpoint: Option<bool>,
    #[serde(default)]
    batch_size: Option<u32>,
    #[serde(default)]
    max_requests_per_peer: Option<usize>,
}

/// A checked config: what [`crate::client::Driver::start`] needs, and which store to open.
#[derive(Clone, Debug)]
pub struct JsConfig {
    pub client: ClientConfig,
    /// The IndexedDB database name; `None` for an in-memory store.
    pub store_name: Option<String>,
}

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::new(ErrorCode::InvalidConfig, message)
}

impl JsConfig {
    /// Parses and validates `value` (everything [`ClientConfig::validate`] checks, too).
    pub fn from_js(value: &JsValue) -> Result<JsConfig, ClientError> {
        if !value.is_object() || js_sys::Array::is_array(value) {
            return Err(invalid("the config must be an object"));
        }
        let json = js_sys::JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| invalid("the config cannot be read as JSON (a BigInt or a cycle?)"))?;
        let fields: Fields = serde_json::from_str(&json)
            .map_err(|e| invalid(format!("config: {}", without_position(&e))))?;
        let checkpoint = parse_checkpoint(&fields.checkpoint)?;
        let genesis_hash = fields
            .genesis_hash
            .as_deref()
            .map(|h| {
                Hash::from_hex(h).map_err(|e| {
                    invalid(format!("genesisHash {h:?} is not a 64-digit hex hash: {e}"))
                })
            })
            .transpose()?;
        let bootnodes = fields
            .bootnodes
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>()
                    .map_err(|e| invalid(format!("bootnode {a:?} is not a multiaddr: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = LightOptions::default();
        if let Some(v) = fields.trust_period_ms {
            options.trust_period_ms = v;
        }
        if let Some(v) = fields.refuse_stale_checkpoint {
            options.refuse_stale_checkpoint = v;
        }
        if let Some(v) = fields.batch_size {
            options.batch_size = v;
            // Keep the look-ahead valid for a batch size above its default.
            options.max_ahead_headers = options.max_ahead_headers.max(u64::from(v));
        }
        if let Some(v) = fields.max_requests_per_peer {
            options.max_requests_per_peer = v;
            options.max_requests_total = options.max_requests_total.max(v);
        }
        let client = ClientConfig {
            checkpoint,
            genesis_hash,
            bootnodes,
            seed: None,
            options,
            keep_headers: fields.keep_headers,
        };
        client.validate()?;
        let store_name = if get(value, "storeName").is_null() {
            None
        } else {
            Some(
                fields
                    .store_name
                    .unwrap_or_else(|| DEFAULT_STORE_NAME.to_owned()),
            )
        };
        if store_name.as_deref() == Some("") {
            return Err(invalid("storeName must not be empty (null keeps no store)"));
        }
        Ok(JsConfig { client, store_name })
    }
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The checkpoint as the one-line text, a JSON string, or the JSON form as an object.
fn parse_checkpoint(value: &serde_json::Value) -> Result<Checkpoint, ClientError> {
    let invalid = |m: String| ClientError::new(ErrorCode::InvalidCheckpoint, m);
    match value {
        serde_json::Value::String(text) => {
            Checkpoint::parse(text).map_err(|e| invalid(e.to_string()))
        }
        serde_json::Value::Object(_) => Checkpoint::deserialize(value)
            .map_err(|e| invalid(format!("checkpoint JSON: {}", without_position(&e)))),
        _ => Err(invalid(
            "checkpoint must be the one-line text form, or the JSON form as a string or object"
                .into(),
        )),
    }
}

/// serde_json's message without " at line 1 column N", which means nothing for a JS object.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) if e.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}
