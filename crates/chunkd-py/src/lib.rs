//! `chunkd._chunkd`: the engine for the Python package. The package's WSGI and ASGI
//! adapters (python/chunkd) turn their requests into `Core.start` calls and drive
//! each `Call` from the request's own thread; every wait here releases the
//! interpreter lock and wakes often enough for Python's signal handlers to run.

mod request;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chunkd::config::{AuthMode, Config};
use chunkd::embed::{Call, Engine};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

/// How long a wait runs before Python may handle a signal (gunicorn's workers stop
/// through handlers that run only between bytecodes).
const SIGNAL_CHECK: Duration = Duration::from_millis(200);

/// chunkd's configuration and, once a request came, this process's engine.
#[pyclass(frozen, module = "chunkd._chunkd")]
struct Core {
    config: Config,
    /// `receive(kind, body, key) -> bytes`: the hooks, answered as webhooks answer;
    /// made once, handed to each process's engine.
    hooks: Option<Arc<PyHooks>>,
    /// Built on the first request of each process, never before: a forked worker
    /// inherits no runtime threads, so one built before `fork` would hang there.
    engine: Mutex<Option<(u32, Arc<Engine>)>>,
}

#[pymethods]
impl Core {
    /// `settings`: chunkd's settings as JSON, the TOML file's keys nested as there;
    /// `mount`: the prefix below which the application routes requests to chunkd.
    /// `hooks(kind, body, key) -> bytes`, given, gets every hook event `[hooks]`
    /// selects as the webhook's JSON body and answers as a webhook does.
    #[new]
    #[pyo3(signature = (settings, mount="", hooks=None))]
    fn new(settings: &str, mount: &str, hooks: Option<Py<PyAny>>) -> PyResult<Self> {
        let settings: serde_json::Value = serde_json::from_str(settings)
            .map_err(|e| PyValueError::new_err(format!("settings are not JSON: {e}")))?;
        let mut config = Config::from_settings(&settings, mount)
            .map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
        // The application's identity stays its own whatever CHUNKD_* variables say:
        // a header's identity would let clients name themselves.
        if settings.pointer("/auth/mode").and_then(|m| m.as_str()) == Some("app") {
            config.auth.mode = AuthMode::App;
        }
        log_to_stderr();
        Ok(Core {
            config,
            hooks: hooks.map(|hooks| Arc::new(PyHooks::new(hooks))),
            engine: Mutex::new(None),
        })
    }

    /// Starts answering a request. `headers` are (name, value) pairs whose values are
    /// latin-1 text, as WSGI gives them; `owner` is the host application's user.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (method, uri, headers, owner=None, peer=None, secure=false))]
    fn start(
        &self,
        py: Python<'_>,
        method: &str,
        uri: &str,
        headers: Vec<(String, String)>,
        owner: Option<String>,
        peer: Option<String>,
        secure: bool,
    ) -> PyResult<PyCall> {
        let request = request::build(request::Parts {
            method,
            uri,
            headers: &headers,
            owner: owner.as_deref(),
            peer: peer.as_deref(),
            secure,
        })
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let engine = self.engine(py)?;
        let call = engine.call(request);
        Ok(PyCall {
            engine,
            call: Mutex::new(Some(call)),
            cancelled: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// This process's upload events from now on.
    fn events(&self, py: Python<'_>) -> PyResult<PyEvents> {
        let engine = self.engine(py)?;
        let events = engine.events();
        Ok(PyEvents {
            engine,
            events: Mutex::new(events),
        })
    }

    /// Stops this process's engine: uploads under way commit what they received.
    fn close(&self) {
        if let Some((pid, engine)) = lock(&self.engine).as_ref()
            && *pid == std::process::id()
        {
            engine.shutdown();
        }
    }
}

impl Core {
    fn engine(&self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        // The lock is taken, and the engine built, without the interpreter lock: a
        // thread waiting here must never hold what the builder needs.
        py.detach(|| {
            let mut engine = lock(&self.engine);
            let pid = std::process::id();
            match engine.take() {
                Some((built_in, current)) if built_in == pid => {
                    *engine = Some((pid, current.clone()));
                    return Ok(current);
                }
                // Built by the parent before a fork: its threads are gone, and dropping
                // it would wait for them. It is left as it is.
                Some(inherited) => std::mem::forget(inherited),
                None => {}
            }
            let hooks = self
                .hooks
                .clone()
                .map(|hooks| hooks as Arc<dyn chunkd_hooks::Receiver>);
            let built = Engine::start(&self.config, hooks)
                .map_err(|e| PyRuntimeError::new_err(format!("cannot start chunkd: {e:#}")))?;
            *engine = Some((pid, built.clone()));
            Ok(built)
        })
    }
}

/// The application's hooks. Python runs on tokio's blocking pool, never on a runtime
/// worker, so a slow hook holds up its own request only; one that outlives
/// `[hooks] timeout` is answered by the failure policy while it runs on. At most
/// [`HOOKS_AT_ONCE`] run at once, so hung hooks never take the threads the disk needs.
struct PyHooks {
    hooks: Arc<Py<PyAny>>,
    running: Arc<tokio::sync::Semaphore>,
}

/// Python hooks running at once per process (of the blocking pool's 64 threads).
const HOOKS_AT_ONCE: usize = 16;

impl PyHooks {
    fn new(hooks: Py<PyAny>) -> Self {
        PyHooks {
            hooks: Arc::new(hooks),
            running: Arc::new(tokio::sync::Semaphore::new(HOOKS_AT_ONCE)),
        }
    }
}

#[async_trait::async_trait]
impl chunkd_hooks::Receiver for PyHooks {
    async fn receive(
        &self,
        kind: chunkd_core::HookKind,
        body: Vec<u8>,
        key: String,
    ) -> Result<Vec<u8>, String> {
        let hooks = self.hooks.clone();
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let answer = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Python::attach(|py| -> PyResult<Vec<u8>> {
                let answer = hooks.call1(py, (kind.name(), PyBytes::new(py, &body), key))?;
                Ok(answer.extract::<PyBackedBytes>(py)?.to_vec())
            })
        });
        match answer.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(format!("the Python hook raised {e}")),
            Err(e) => Err(format!("the Python hook did not run: {e}")),
        }
    }
}

/// One request being answered; used from one thread at a time.
#[pyclass(frozen, module = "chunkd._chunkd", name = "Call")]
struct PyCall {
    engine: Arc<Engine>,
    call: Mutex<Option<Call>>,
    /// Ends a wait under way from another thread or task (the client went away while
    /// an answer streams), without the call's lock.
    cancelled: tokio_util::sync::CancellationToken,
}

#[pymethods]
impl PyCall {
    /// Hands over the next piece of the request body; `False` when chunkd reads no
    /// more of it (it has answered).
    fn feed(&self, py: Python<'_>, chunk: PyBackedBytes) -> PyResult<bool> {
        let mut call = self.call()?;
        let Some(call) = call.as_mut() else {
            return Ok(false);
        };
        let fed = wait(
            py,
            &self.engine,
            self.cancellable(call.feed(Bytes::from_owner(chunk))),
        )?;
        Ok(fed.unwrap_or(false))
    }

    /// The request body ended before it was complete (the client went away).
    fn fail(&self, why: &str) -> PyResult<()> {
        if let Some(call) = self.call()?.as_mut() {
            call.fail(why);
        }
        Ok(())
    }

    /// The answer's status line ("204 No Content") and headers, latin-1 text as WSGI
    /// wants them; waits for chunkd to answer.
    fn head(&self, py: Python<'_>) -> PyResult<(String, Vec<(String, String)>)> {
        let mut call = self.call()?;
        let call = call
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the call is closed"))?;
        let head = wait(py, &self.engine, self.cancellable(call.head()))?
            .ok_or_else(|| PyRuntimeError::new_err("the call was cancelled"))?;
        Ok(request::head(&head))
    }

    /// The answer's next piece of body, or `None` at its end.
    fn next_chunk<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut call = self.call()?;
        let Some(call) = call.as_mut() else {
            return Ok(None);
        };
        match wait(py, &self.engine, self.cancellable(call.next_chunk()))?.flatten() {
            None => Ok(None),
            Some(Ok(data)) => Ok(Some(PyBytes::new(py, &data))),
            Some(Err(e)) => Err(PyRuntimeError::new_err(format!("answer failed: {e}"))),
        }
    }

    /// Ends a wait under way on another thread: the answer ends there.
    fn cancel(&self) {
        self.cancelled.cancel();
    }

    /// Ends the call: a body still expected counts as interrupted. A wait under way on
    /// another thread is cancelled, and its end awaited.
    fn close(&self, py: Python<'_>) {
        self.cancelled.cancel();
        let call = py.detach(|| lock(&self.call).take());
        // Dropped without the interpreter lock: the body's end reaches the engine.
        py.detach(move || drop(call));
    }
}

impl PyCall {
    /// `future`, or `None` once the call is cancelled.
    async fn cancellable<F: Future>(&self, future: F) -> Option<F::Output> {
        tokio::select! {
            output = future => Some(output),
            () = self.cancelled.cancelled() => None,
        }
    }

    fn call(&self) -> PyResult<MutexGuard<'_, Option<Call>>> {
        self.call
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("a chunkd call is used by two threads at once"))
    }
}

/// Upload events of one process, as JSON: `{"kind": "finished", "upload": {...}}`.
#[pyclass(frozen, module = "chunkd._chunkd", name = "Events")]
struct PyEvents {
    engine: Arc<Engine>,
    events: Mutex<tokio::sync::broadcast::Receiver<chunkd_core::Event>>,
}

#[pymethods]
impl PyEvents {
    /// The next event, waiting at most `timeout` seconds; `None` if none came, or the
    /// engine stopped.
    fn next(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        use tokio::sync::broadcast::error::RecvError;
        let mut guard = self.events.try_lock().map_err(|_| {
            PyRuntimeError::new_err("chunkd events are read by two threads at once")
        })?;
        let events = &mut *guard;
        let within = Duration::from_secs_f64(timeout.max(0.0));
        let received = wait(py, &self.engine, async {
            loop {
                match tokio::time::timeout(within, events.recv()).await {
                    Err(_) | Ok(Err(RecvError::Closed)) => return None,
                    Ok(Err(RecvError::Lagged(lost))) => {
                        tracing::warn!(lost, "upload events lost: their receiver fell behind");
                    }
                    Ok(Ok(event)) => return Some(event),
                }
            }
        })?;
        Ok(received.map(|event| event_json(&event)))
    }
}

fn event_json(event: &chunkd_core::Event) -> String {
    use chunkd_core::Event;
    let (kind, message) = match event {
        Event::Created(_) => ("created", None),
        Event::Progress(_) => ("progress", None),
        Event::Finished(_) => ("finished", None),
        Event::Refused(_, why) => ("refused", Some(why.as_str())),
        Event::Terminated(_) => ("terminated", None),
        Event::Expired(_) => ("expired", None),
    };
    serde_json::json!({ "kind": kind, "upload": event.upload(), "message": message }).to_string()
}

/// Runs `future` on the engine without the interpreter lock, returning to Python every
/// [`SIGNAL_CHECK`] for its signal handlers (whose exceptions end the wait).
fn wait<F>(py: Python<'_>, engine: &Engine, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut future = std::pin::pin!(future);
    loop {
        let done = py.detach(|| {
            engine.block_on(async { tokio::time::timeout(SIGNAL_CHECK, future.as_mut()).await })
        });
        match done {
            Ok(output) => return Ok(output),
            Err(_) => py.check_signals()?,
        }
    }
}

/// The engine's warnings and errors (a failed hook, a lost event) to the process's
/// standard error, filtered by `RUST_LOG`, unless a subscriber is installed already.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `python -m chunkd ...`: the binary's command line (`serve`, `gc`, `upload`, ...), with
/// its signal handling; returns the exit status.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<String>) -> PyResult<i32> {
    let code = py
        .detach(|| chunkd::main(argv))
        .map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))?;
    // `ExitCode` keeps its number to itself; the commands' own failures print why.
    Ok(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    })
}

#[pymodule]
fn _chunkd(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add_class::<PyCall>()?;
    m.add_class::<PyEvents>()?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}
