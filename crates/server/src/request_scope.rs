//! What the code serving one request shares about it, kept in a task-local scope around the
//! request's whole future: its trace id (the `error_id` of its errors and the `trace_id` of its
//! log lines), the operation it turned out to be (known once the gate admits it) and the error
//! type its answer reported (for its metrics sample). The observers open the scope; the gate,
//! the wire-error table and the log lines read and fill it. Outside a request every function
//! here does nothing or answers `None`.

use std::cell::Cell;
use std::future::Future;

use futures_util::FutureExt;

struct RequestScope {
    trace_id: String,
    /// The operation's one name, from [`crate::operations`].
    operation: Cell<Option<&'static str>>,
    /// The error type of the answer, set where errors meet the wire table.
    error_type: Cell<Option<&'static str>>,
}

tokio::task_local! {
    static REQUEST: RequestScope;
}

/// Runs `serve` as the request with `trace_id`; returns its result and the recorded error type.
///
/// Not an `async fn`, and no `async` block: either would keep `serve` twice (once as it was
/// passed, once as it is polled), and a request's future is kilobytes, copied at every layer
/// that moves it. The combinators here hold it once.
pub fn run<T>(
    trace_id: String,
    serve: impl Future<Output = T>,
) -> impl Future<Output = (T, Option<&'static str>)> {
    let scope = RequestScope {
        trace_id,
        operation: Cell::new(None),
        error_type: Cell::new(None),
    };
    REQUEST.scope(
        scope,
        serve.map(|result| (result, REQUEST.with(|request| request.error_type.get()))),
    )
}

/// Names the operation the current request performs.
pub fn name_operation(operation: &'static str) {
    let _ = REQUEST.try_with(|request| request.operation.set(Some(operation)));
}

/// Notes the error type of the current request's answer (for its metrics sample).
pub fn record_error_type(error_type: &'static str) {
    let _ = REQUEST.try_with(|request| request.error_type.set(Some(error_type)));
}

/// Whether the current request's answer is an error already reported through the error table.
pub fn error_type_recorded() -> bool {
    REQUEST
        .try_with(|request| request.error_type.get().is_some())
        .unwrap_or(false)
}

/// The current request's trace id.
pub fn trace_id() -> Option<String> {
    REQUEST.try_with(|request| request.trace_id.clone()).ok()
}

/// Calls `with` with the current request's trace id and operation, without copying them (log
/// lines are written from here once per event).
pub fn with_current<R>(mut with: impl FnMut(Option<&str>, Option<&'static str>) -> R) -> R {
    match REQUEST.try_with(|request| with(Some(&request.trace_id), request.operation.get())) {
        Ok(result) => result,
        Err(_) => with(None, None),
    }
}
