//! Browser platform: `Date.now()`, `setTimeout` through gloo-timers, tasks on the JS event
//! loop. Works in a Window and in a Worker (nothing here touches `window`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use gloo_timers::future::TimeoutFuture;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A timer that completes after a duration.
pub struct Sleep(TimeoutFuture);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Completes after `duration` (at most `u32::MAX` ms, about 49 days).
pub fn sleep(duration: Duration) -> Sleep {
    let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
    Sleep(TimeoutFuture::new(ms))
}

/// Runs `future` on the JS event loop.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(future);
}
