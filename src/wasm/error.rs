//! Errors as JS sees them: a real `Error` (so `instanceof Error`, a stack, and `message` work
//! as everywhere else) named `HeadwayError`, with the stable [`ErrorCode`] text as `code`, so
//! callers branch on `err.code` and never parse messages.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::client::{ClientError, ErrorCode};

/// The `name` of every error the JS API throws or rejects with.
pub const ERROR_NAME: &str = "HeadwayError";

/// Builds the JS error for `error`.
pub fn js_error(error: &ClientError) -> JsValue {
    let js = js_sys::Error::new(&error.message);
    js.set_name(ERROR_NAME);
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(&js, &JsValue::from_str("code"), &error.code.as_str().into());
    js.into()
}

/// Shorthand: the JS error for `code` and `message`.
pub fn js_err(code: ErrorCode, message: impl Into<String>) -> JsValue {
    js_error(&ClientError::new(code, message))
}
