//! The JavaScript API (wasm32 only): one class, `LightClient`, exported with wasm-bindgen.
//!
//! It is a thin shell over [`Driver`] and [`ClientHandle`]: `create` checks the config and
//! opens the store (no network), `start` runs the driver as a task on the JS event loop and
//! forwards its [`ClientEvent`]s to listeners, `stop` waits until the loop returned and the
//! store is closed, so its Web Lock is free when the promise resolves. Values cross the
//! boundary through serde ([`to_js`]), so the JS field names are the serde names, and the
//! TypeScript declarations in `api.d.ts` are checked against them by `tests/wasm_api.rs`.
//!
//! Nothing here touches `window`: the same build runs in a page and in a dedicated Worker.

mod config;
mod error;
mod store;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, FutureExt, Shared};
use futures::StreamExt;
use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub use config::{JsConfig, DEFAULT_STORE_NAME};
pub use error::{js_err, js_error, ERROR_NAME};
pub use store::{JsStore, JsStoreError};

use crate::chain::Hash;
use crate::client::{
    ClientConfig, ClientError, ClientEvent, ClientHandle, ClientStatus, Driver, ErrorCode,
    HeaderStore, HeaderView,
};
use crate::light::{LightError, LightStats, Phase};
use crate::platform;

/// The TypeScript declarations the generated `.d.ts` carries besides the class itself.
pub const TYPESCRIPT: &str = include_str!("api.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const TS_SECTION: &str = TYPESCRIPT;

/// The event names `on` and `off` accept, as [`ClientEvent::name`] gives them.
pub const EVENT_NAMES: [&str; 5] = [
    "progress",
    "newHead",
    "forkDetected",
    "checkpointStale",
    "error",
];

/// How often a running client checks whether the stored head moved, for [`LightClient::head`]
/// (writes are batched and raise no event of their own).
const HEAD_REFRESH: Duration = Duration::from_millis(500);

/// A value as JS sees it: plain objects, `null` for `None` (not `undefined`, so every field
/// of the TypeScript interfaces is present), numbers for integers up to 2^53 − 1.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, ClientError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| ClientError::new(ErrorCode::Internal, format!("cannot convert: {e}")))
}

fn stopped(message: &str) -> ClientError {
    ClientError::new(ErrorCode::Stopped, message)
}

/// Resolves once the run task returned and closed the store.
type Done = Shared<oneshot::Receiver<()>>;

/// Where a client is in its life: created → starting → running → stopped, once.
enum Run {
    Created,
    Starting { done: Done, stop_requested: bool },
    Running { handle: ClientHandle, done: Done },
    Stopped { handle: Option<ClientHandle> },
}

struct Inner {
    config: ClientConfig,
    /// The store until `start` hands it to the driver (or `stop` closes it). An async lock:
    /// `header()` reads it across an await before `start`.
    store: futures::lock::Mutex<Option<JsStore>>,
    run: RefCell<Run>,
    listeners: RefCell<Vec<(&'static str, Function)>>,
    /// The newest stored header, kept so `head()` can answer synchronously.
    head: RefCell<Option<HeaderView>>,
    /// The status before `start`, from the store's head.
    initial: ClientStatus,
}

impl Drop for Inner {
    /// A client freed from JS (`free()`) while running stops its driver instead of leaking it.
    fn drop(&mut self) {
        if let Run::Running { handle, .. } = self.run.get_mut() {
            handle.stop();
        }
    }
}

/// A light client for JavaScript. See `docs/JS_API.md`.
#[wasm_bindgen]
pub struct LightClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl LightClient {
    /// Checks `config` and opens the store. Touches no network.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "LightClientConfig")] config: JsValue,
    ) -> Result<LightClient, JsValue> {
        Self::open(&config).await.map_err(|e| js_error(&e))
    }

    /// Opens the network and starts syncing in the background.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Inner::start(inner).await.map(|()| JsValue::UNDEFINED) })
    }

    /// Stops syncing; resolves once the store is closed (and its lock released).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn stop(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Inner::stop(inner).await.map(|()| JsValue::UNDEFINED) })
    }

    /// The latest status (before `start`: what the store holds).
    #[wasm_bindgen(unchecked_return_type = "Status")]
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.status()).map_err(|e| js_error(&e))
    }

    /// The newest stored header, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Header | null")]
    pub fn head(&self) -> Result<JsValue, JsValue> {
        to_js(&*self.inner.head.borrow()).map_err(|e| js_error(&e))
    }

    /// The stored header at `height`, or `null` (not synced yet, or pruned).
    #[wasm_bindgen(unchecked_return_type = "Promise<Header | null>")]
    pub fn header(&self, height: f64) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let header = Inner::header(inner, js_height(height)?).await?;
            to_js(&header)
        })
    }

    /// Proves that the event `eventId` (64 hex) is in the chain, against the verified head.
    #[wasm_bindgen(
        js_name = verifyEvent,
        unchecked_return_type = "Promise<EventVerification>"
    )]
    pub fn verify_event(&self, #[wasm_bindgen(js_name = eventId)] event_id: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let event_id = Hash::from_hex(&event_id).map_err(|e| {
                ClientError::new(
                    ErrorCode::InvalidConfig,
                    format!("eventId {event_id:?} is not 64 hex digits: {e}"),
                )
            })?;
            let handle = inner.running("verifyEvent")?;
            to_js(&handle.verify_event(event_id).await?)
        })
    }

    /// Adds `listener` for `event` (once: adding it again changes nothing). Typed in the
    /// `LightClient` interface of `api.d.ts`, which generics make precise.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| js_error(&e))?;
        let mut listeners = self.inner.listeners.borrow_mut();
        if !listeners.iter().any(|(n, f)| *n == name && *f == listener) {
            listeners.push((name, listener));
        }
        Ok(())
    }

    /// Removes `listener` from `event`.
    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| js_error(&e))?;
        self.inner
            .listeners
            .borrow_mut()
            .retain(|(n, f)| !(*n == name && *f == listener));
        Ok(())
    }
}

impl LightClient {
    async fn open(config: &JsValue) -> Result<LightClient, ClientError> {
        let config = JsConfig::from_js(config)?;
        let store = JsStore::open(config.store_name.as_deref())
            .await
            .map_err(|e| store_error(&e))?;
        // The driver checks this again at start; checking here reports it before any
        // network traffic, and lets `head()` show the stored head of the right chain only.
        let stored = match read_store(&store, &config.client).await {
            Ok(head) => head,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        let initial = ClientStatus {
            phase: Phase::Bootstrapping,
            verified_height: stored.as_ref().map(|h| h.height),
            verified_hash: stored.as_ref().map(|h| h.hash),
            target_height: 0,
            peers: 0,
            stored_height: stored.as_ref().map(|h| h.height),
            headers_per_second: 0.0,
            fork_height: None,
            checkpoint_stale_ms: None,
            store_paused: false,
            last_error: None,
            stats: LightStats::default(),
            store_writes: 0,
            running: false,
        };
        Ok(LightClient {
            inner: Rc::new(Inner {
                config: config.client,
                store: futures::lock::Mutex::new(Some(store)),
                run: RefCell::new(Run::Created),
                listeners: RefCell::default(),
                head: RefCell::new(stored),
                initial,
            }),
        })
    }
}

/// The stored head, after checking the store holds headers of this checkpoint (if any).
async fn read_store(
    store: &JsStore,
    config: &ClientConfig,
) -> Result<Option<HeaderView>, ClientError> {
    if let Some(stored) = store.checkpoint().await.map_err(|e| store_error(&e))? {
        if stored != config.checkpoint {
            return Err(LightError::StoreCheckpointMismatch {
                stored: stored.block_hash,
                given: config.checkpoint.block_hash,
            }
            .into());
        }
    }
    let head = store.head().await.map_err(|e| store_error(&e))?;
    Ok(head.as_ref().map(HeaderView::from))
}

impl Inner {
    fn status(&self) -> ClientStatus {
        match &*self.run.borrow() {
            Run::Running { handle, .. }
            | Run::Stopped {
                handle: Some(handle),
            } => handle.status(),
            _ => self.initial.clone(),
        }
    }

    /// The handle of a running client, or a [`ErrorCode::Stopped`] error naming `call`.
    fn running(&self, call: &str) -> Result<ClientHandle, ClientError> {
        match &*self.run.borrow() {
            Run::Running { handle, .. } => Ok(handle.clone()),
            other => Err(not_running(other, call)),
        }
    }

    async fn start(this: Rc<Inner>) -> Result<(), ClientError> {
        let (done_tx, done_rx) = oneshot::channel();
        let done = done_rx.shared();
        {
            let mut run = this.run.borrow_mut();
            match &*run {
                Run::Created => {}
                Run::Starting { .. } | Run::Running { .. } => {
                    return Err(stopped("start() was already called: a client starts once"))
                }
                Run::Stopped { .. } => {
                    return Err(stopped("the client was stopped; create a new LightClient"))
                }
            }
            *run = Run::Starting {
                done: done.clone(),
                stop_requested: false,
            };
        }
        let Some(store) = this.store.lock().await.take() else {
            *this.run.borrow_mut() = Run::Stopped { handle: None };
            return Err(stopped("the client was stopped while starting"));
        };
        // A failed start drops the store (closing it, releasing its lock): the client is
        // then stopped, and `done_tx` is dropped so a waiting `stop()` resolves.
        let mut driver = match Driver::start(this.config.clone(), store).await {
            Ok(driver) => driver,
            Err(e) => {
                *this.run.borrow_mut() = Run::Stopped { handle: None };
                return Err(e);
            }
        };
        let events = driver.events();
        let handle = driver.handle();
        platform::spawn(async move {
            let store = driver.run().await;
            store.close().await;
            let _ = done_tx.send(());
        });
        platform::spawn(pump(Rc::downgrade(&this), events, handle.clone()));
        let stop_requested = {
            let mut run = this.run.borrow_mut();
            let stop_requested = matches!(
                &*run,
                Run::Starting {
                    stop_requested: true,
                    ..
                }
            );
            *run = Run::Running {
                handle: handle.clone(),
                done,
            };
            stop_requested
        };
        if stop_requested {
            handle.stop();
        }
        Ok(())
    }

    async fn stop(this: Rc<Inner>) -> Result<(), ClientError> {
        let done = {
            let mut run = this.run.borrow_mut();
            match &mut *run {
                Run::Created => {
                    *run = Run::Stopped { handle: None };
                    None
                }
                Run::Starting {
                    done,
                    stop_requested,
                } => {
                    *stop_requested = true;
                    Some(done.clone())
                }
                Run::Running { handle, done } => {
                    handle.stop();
                    Some(done.clone())
                }
                Run::Stopped { .. } => return Ok(()),
            }
        };
        match done {
            None => {
                let store = this.store.lock().await.take();
                if let Some(store) = store {
                    store.close().await;
                }
            }
            Some(done) => {
                // Resolves when the run task closed the store, or (a failed start) when its
                // sender was dropped: either way nothing holds the store any more.
                let _ = done.await;
                let mut run = this.run.borrow_mut();
                let handle = match &*run {
                    Run::Running { handle, .. } => Some(handle.clone()),
                    Run::Stopped { handle } => handle.clone(),
                    _ => None,
                };
                *run = Run::Stopped { handle };
            }
        }
        Ok(())
    }

    async fn header(this: Rc<Inner>, height: u64) -> Result<Option<HeaderView>, ClientError> {
        let handle = match &*this.run.borrow() {
            Run::Running { handle, .. } => Some(handle.clone()),
            Run::Created => None,
            other => return Err(not_running(other, "header")),
        };
        if let Some(handle) = handle {
            return handle.header(height).await;
        }
        let store = this.store.lock().await;
        let Some(store) = store.as_ref() else {
            return Err(not_running(&this.run.borrow(), "header"));
        };
        let header = store.header(height).await.map_err(|e| store_error(&e))?;
        Ok(header.as_ref().map(HeaderView::from))
    }

    /// Calls the listeners of `event`'s name with its payload: the serde object, or for
    /// `error` a `HeadwayError`.
    fn dispatch(&self, event: &ClientEvent) {
        let name = event.name();
        // Copied out first: a listener may call `on` or `off`.
        let listeners: Vec<Function> = self
            .listeners
            .borrow()
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
            .collect();
        if listeners.is_empty() {
            return;
        }
        let payload = match event {
            ClientEvent::Error(e) => js_error(e),
            other => match to_js(other) {
                Ok(value) => value,
                Err(e) => js_error(&e),
            },
        };
        for listener in listeners {
            if let Err(thrown) = listener.call1(&JsValue::UNDEFINED, &payload) {
                // One faulty listener must not stop the others or the client.
                web_sys::console::error_2(&"headway: an event listener threw".into(), &thrown);
            }
        }
    }
}

/// Forwards the driver's events to the listeners and keeps the cached head fresh, until the
/// driver stops (its event sender is dropped) or the client is freed.
async fn pump(
    inner: Weak<Inner>,
    mut events: mpsc::UnboundedReceiver<ClientEvent>,
    handle: ClientHandle,
) {
    loop {
        let woke = {
            let next = events.next();
            let tick = platform::sleep(HEAD_REFRESH);
            futures::pin_mut!(next);
            match future::select(next, tick).await {
                Either::Left((event, _)) => Some(event),
                Either::Right(_) => None,
            }
        };
        let Some(this) = inner.upgrade() else { return };
        match woke {
            Some(Some(event)) => this.dispatch(&event),
            Some(None) => return,
            None => {}
        }
        let cached = this.head.borrow().as_ref().map(|h| h.height);
        let stored = handle.status().stored_height;
        if let Some(height) = stored.filter(|s| cached.is_none_or(|c| *s > c)) {
            if let Ok(Some(header)) = handle.header(height).await {
                *this.head.borrow_mut() = Some(header);
            }
        }
    }
}

/// Why `call` cannot be made in state `run`.
fn not_running(run: &Run, call: &str) -> ClientError {
    match run {
        Run::Stopped { .. } => stopped(&format!(
            "{call}(): the client was stopped; create a new LightClient"
        )),
        _ => stopped(&format!(
            "{call}() needs a started client: call and await start() first"
        )),
    }
}

fn store_error(e: &JsStoreError) -> ClientError {
    ClientError::new(JsStore::failure(e).into(), format!("store: {e}"))
}

fn event_name(event: &str) -> Result<&'static str, ClientError> {
    EVENT_NAMES
        .iter()
        .find(|n| **n == event)
        .copied()
        .ok_or_else(|| {
            ClientError::new(
                ErrorCode::InvalidConfig,
                format!(
                    "unknown event {event:?}; events are {}",
                    EVENT_NAMES.join(", ")
                ),
            )
        })
}

/// A JS number as a height: a non-negative safe integer.
fn js_height(height: f64) -> Result<u64, ClientError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if height.fract() == 0.0 && (0.0..=MAX_SAFE).contains(&height) {
        Ok(height as u64)
    } else {
        Err(ClientError::new(
            ErrorCode::InvalidConfig,
            format!("height {height} is not a non-negative integer"),
        ))
    }
}

/// A promise of `future`, rejected with a `HeadwayError`.
fn promise(
    future: impl std::future::Future<Output = Result<JsValue, ClientError>> + 'static,
) -> Promise {
    future_to_promise(async move { future.await.map_err(|e| js_error(&e)) })
}
