//! The log lines: one per event that `BURNBOX_LOG` lets through, as text or JSON, written to
//! stdout in batches by a writer thread.
//!
//! A line holds the time, level, target, message and the event's fields, and for an event of a
//! request its trace id and operation, read from the [request scope](crate::request_scope):
//! nothing of the spans around it. That keeps the per-operation line cheap: spans (the request's
//! attributes, the core operation's, the Redis commands') are never formatted for logs, and
//! without trace export they are not built at all. Their attributes are in the exported trace,
//! which the trace id leads to.
//!
//! Each thread formats its lines into a buffer of its own and appends them, under a lock, to one
//! pending buffer. A writer thread writes that buffer with one `write` per batch: the first line
//! after a quiet time wakes it, and it gives the batch the flush interval
//! (`BURNBOX_LOG_FLUSH_MS`) to fill; a batch that holds a warning or an error, or
//! reaches [`WRITE_AT`], is written at once. No thread is woken per line.
//!
//! Pending lines are bounded ([`PENDING_LIMIT`], besides the batch being written). When the
//! writer falls that far behind (stdout blocked: a stalled log collector), further lines are
//! dropped and counted, and the writer reports how many in a warning line when it writes again.
//! Serving requests never waits for the log collector. [`LogWriter::close`] (which dropping the
//! [`LogWriter`] calls, so also when the process exits on an error) writes everything pending;
//! lines logged after it are written at once, by the thread that logs them.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::request_scope;

/// At most this many bytes of lines wait for the writer; lines beyond are dropped and counted.
pub const PENDING_LIMIT: usize = 1 << 20;

/// A batch this large is written without waiting for the rest of the flush interval.
pub const WRITE_AT: usize = 64 << 10;

/// A thread's line buffer keeps at most this much memory between lines.
const LINE_KEPT: usize = 16 << 10;

thread_local! {
    /// The line being formatted on this thread (reused: no allocation per line).
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The second this thread last wrote a time for, and that time up to its seconds
    /// (`YYYY-MM-DDTHH:MM:SS.`): the calendar is worked out once a second, not once a line.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// The process's log lines: the [`layer`](Self::layer) that formats them and the writer thread
/// that writes them. Dropping it writes what is pending (see [`close`](Self::close)).
pub struct LogWriter {
    sink: Arc<Sink>,
}

impl LogWriter {
    /// Lines in JSON (else text) to `writer`, each written at most `flush_interval` after it is
    /// logged (warnings and errors at once). Lines wait until [`start`](Self::start) starts the
    /// writer thread.
    pub fn new(writer: impl Write + Send + 'static, json: bool, flush_interval: Duration) -> Self {
        Self {
            sink: Arc::new(Sink {
                pending: Mutex::new(Pending {
                    lines: Vec::new(),
                    dropped: 0,
                    writer_waiting: false,
                    urgent: false,
                    closed: false,
                }),
                wake: Condvar::new(),
                output: Mutex::new(Output {
                    writer: Box::new(writer),
                    batch: Vec::new(),
                    json,
                }),
                flush_interval,
            }),
        }
    }

    /// The layer that formats the events `filter` enables into lines for this writer.
    pub fn layer<S>(&self, filter: EnvFilter) -> Filtered<LogLayer, EventsOnly, S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let json = lock(&self.sink.output).json;
        LogLayer {
            sink: self.sink.clone(),
            json,
        }
        .with_filter(EventsOnly(filter))
    }

    /// Starts the writer thread. Where no thread can be started, every line is written at once
    /// by the thread that logs it.
    pub fn start(&self) {
        let sink = self.sink.clone();
        let started = std::thread::Builder::new()
            .name("burnbox-logs".into())
            .spawn(move || sink.write_batches());
        if let Err(err) = started {
            self.close();
            tracing::warn!(%err, "no log writer thread: every line is written as it is logged");
        }
    }

    /// Writes every line logged so far, now.
    pub fn flush(&self) {
        self.sink.write_pending();
    }

    /// Writes every line logged so far and stops the writer thread; from now on each line is
    /// written as it is logged. Closing again does nothing more.
    pub fn close(&self) {
        lock(&self.sink.pending).closed = true;
        self.sink.wake.notify_all();
        self.sink.write_pending();
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The per-layer filter of the log lines: the events the `BURNBOX_LOG` filter enables, and never
/// a span (lines show none). Without trace export no layer wants spans, so none is built.
/// Span-scoped directives (`target[span]=level`) therefore select nothing.
pub struct EventsOnly(EnvFilter);

impl<S> Filter<S> for EventsOnly {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        metadata.is_event() && Filter::<S>::enabled(&self.0, metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() {
            Interest::never()
        } else {
            Filter::<S>::callsite_enabled(&self.0, metadata)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::<S>::max_level_hint(&self.0)
    }
}

/// Formats each event into a line and hands it to the writer.
pub struct LogLayer {
    sink: Arc<Sink>,
    json: bool,
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => self.log(event, &mut line),
            // An event logged while this thread formats another (by a field's `Debug`).
            Err(_) => self.log(event, &mut Vec::new()),
        });
    }
}

impl LogLayer {
    fn log(&self, event: &Event<'_>, buffer: &mut Vec<u8>) {
        buffer.clear();
        // Records of the `log` crate come as events of target `log`: name their own target.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let level = *metadata.level();
        let mut line = Line::begin(buffer, self.json, level, metadata.target());
        event.record(&mut EventFields {
            line: &mut line,
            from_log: normalized.is_some(),
        });
        request_scope::with_current(|trace_id, operation| line.end(trace_id, operation));
        self.sink.push(buffer, level <= Level::WARN);
        if buffer.capacity() > LINE_KEPT {
            *buffer = Vec::new();
        }
    }
}

/// Writes an event's fields into its line.
struct EventFields<'line, 'buffer> {
    line: &'line mut Line<'buffer>,
    /// The event is a `log` record: its `log.*` fields are metadata, already used.
    from_log: bool,
}

impl EventFields<'_, '_> {
    fn skip(&self, field: &Field) -> bool {
        self.from_log && field.name().starts_with("log.")
    }
}

impl Visit for EventFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.skip(field) {
            self.line.str(field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.skip(field) {
            self.line.debug(field.name(), value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.line.number(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.skip(field) {
            self.line.number(field.name(), value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.line.number(field.name(), value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.line.number(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.line.number(field.name(), value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.line.number(field.name(), value);
        } else {
            // JSON has no infinities or NaN.
            self.line.debug(field.name(), &format_args!("{value}"));
        }
    }
}

/// One line being written: the one place that knows both layouts.
///
/// Text: `2025-06-01T12:00:00.123456Z  INFO burnbox_core::secrets: secret stored ttl=3600
/// passphrase=false trace_id=4bf9… operation=share`.
///
/// JSON: `{"timestamp":"…","level":"INFO","target":"burnbox_core::secrets","fields":{"message":
/// "secret stored","ttl":3600,"passphrase":false},"trace_id":"4bf9…","operation":"share"}`.
struct Line<'buffer> {
    out: &'buffer mut Vec<u8>,
    json: bool,
    /// Whether a field was written (JSON separates them with commas).
    fields: bool,
}

impl<'buffer> Line<'buffer> {
    fn begin(out: &'buffer mut Vec<u8>, json: bool, level: Level, target: &str) -> Self {
        let level = level.as_str();
        if json {
            out.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(out);
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(level.as_bytes());
            out.extend_from_slice(b"\",\"target\":");
            quoted(out, true, target);
            out.extend_from_slice(b",\"fields\":{");
        } else {
            timestamp(out);
            // Levels right-aligned, as people read them down a terminal.
            let padding = 6usize.saturating_sub(level.len());
            out.extend(std::iter::repeat_n(b' ', padding));
            out.extend_from_slice(level.as_bytes());
            out.push(b' ');
            escaped(out, false, target);
            out.push(b':');
        }
        Self {
            out,
            json,
            fields: false,
        }
    }

    /// The separator and key of the next field.
    fn key(&mut self, name: &str) {
        if self.json {
            if self.fields {
                self.out.push(b',');
            }
            quoted(self.out, true, name);
            self.out.push(b':');
        } else {
            self.out.push(b' ');
            escaped(self.out, false, name);
            self.out.push(b'=');
        }
        self.fields = true;
    }

    /// Text lines show the message bare, after the target.
    fn bare_message(&mut self, name: &str) -> bool {
        let bare = !self.json && name == "message";
        if bare {
            self.out.push(b' ');
        }
        bare
    }

    fn str(&mut self, name: &str, value: &str) {
        if self.bare_message(name) {
            escaped(self.out, false, value);
        } else {
            self.key(name);
            if self.json {
                quoted(self.out, true, value);
            } else {
                // Quoted, as `Debug` quotes (and escapes) strings.
                let _ = write!(Escaped::new(self.out, false), "{value:?}");
            }
        }
    }

    fn debug(&mut self, name: &str, value: &dyn fmt::Debug) {
        if !self.bare_message(name) {
            self.key(name);
        }
        if self.json {
            self.out.push(b'"');
            let _ = write!(Escaped::new(self.out, true), "{value:?}");
            self.out.push(b'"');
        } else {
            let _ = write!(Escaped::new(self.out, false), "{value:?}");
        }
    }

    /// A number or boolean: the same in both layouts.
    fn number(&mut self, name: &str, value: impl fmt::Display) {
        self.key(name);
        let _ = write!(Escaped::new(self.out, self.json), "{value}");
    }

    fn end(&mut self, trace_id: Option<&str>, operation: Option<&str>) {
        if self.json {
            self.out.push(b'}');
        }
        for (name, value) in [("trace_id", trace_id), ("operation", operation)] {
            let Some(value) = value else { continue };
            if self.json {
                self.out.extend_from_slice(b",\"");
                self.out.extend_from_slice(name.as_bytes());
                self.out.extend_from_slice(b"\":");
                quoted(self.out, true, value);
            } else {
                self.out.push(b' ');
                self.out.extend_from_slice(name.as_bytes());
                self.out.push(b'=');
                escaped(self.out, false, value);
            }
        }
        if self.json {
            self.out.push(b'}');
        }
        self.out.push(b'\n');
    }
}

/// Appends `text`, escaped (see [`Escaped`]).
fn escaped(out: &mut Vec<u8>, json: bool, text: &str) {
    let _ = Escaped::new(out, json).write_str(text);
}

/// Appends `text` as a JSON string (or, for text lines, in quotes with control characters
/// escaped).
fn quoted(out: &mut Vec<u8>, json: bool, text: &str) {
    out.push(b'"');
    escaped(out, json, text);
    out.push(b'"');
}

/// Appends text to a line, escaping what would break it: control characters always (a newline
/// in a value would forge a line of its own), in JSON also quotes and backslashes.
struct Escaped<'buffer> {
    out: &'buffer mut Vec<u8>,
    json: bool,
}

impl<'buffer> Escaped<'buffer> {
    fn new(out: &'buffer mut Vec<u8>, json: bool) -> Self {
        Self { out, json }
    }
}

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = text.as_bytes();
        // Almost all text needs no escape: a check without branches per byte (the compiler
        // vectorizes it) and one copy.
        let json = self.json;
        let special = bytes.iter().fold(false, |found, &byte| {
            found | (byte < 0x20) | (json & ((byte == b'"') | (byte == b'\\')))
        });
        if !special {
            self.out.extend_from_slice(bytes);
            return Ok(());
        }
        let mut plain = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            let replacement: &[u8] = match byte {
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                b'"' if self.json => b"\\\"",
                b'\\' if self.json => b"\\\\",
                0..0x20 => b"",
                _ => continue,
            };
            // Only ASCII bytes are replaced: the slices stay whole UTF-8.
            self.out.extend_from_slice(&bytes[plain..at]);
            plain = at + 1;
            if replacement.is_empty() {
                self.out.extend_from_slice(b"\\u00");
                self.out.push(HEX[usize::from(byte >> 4)]);
                self.out.push(HEX[usize::from(byte & 0xf)]);
            } else {
                self.out.extend_from_slice(replacement);
            }
        }
        self.out.extend_from_slice(&bytes[plain..]);
        Ok(())
    }
}

/// Appends the time now, UTC, to the microsecond: `2025-06-01T12:00:00.123456Z`.
fn timestamp(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != seconds {
        text = date_and_time(seconds);
        SECOND.set((seconds, text));
    }
    out.extend_from_slice(&text);
    let micros = now.subsec_micros();
    for divisor in [100_000, 10_000, 1000, 100, 10, 1] {
        out.push(b'0' + (micros / divisor % 10) as u8);
    }
    out.push(b'Z');
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.`, UTC.
fn date_and_time(seconds: u64) -> [u8; 20] {
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut text = [b'0'; 20];
    let _ = write!(
        &mut text[..],
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    text
}

/// What the logging threads and the writer thread share.
struct Sink {
    pending: Mutex<Pending>,
    /// Wakes the writer thread: a first line after a quiet time, a warning or an error, a batch
    /// of [`WRITE_AT`], closing.
    wake: Condvar,
    /// Held while a batch is taken and written, so that batches are written in the order taken.
    output: Mutex<Output>,
    flush_interval: Duration,
}

struct Pending {
    /// Whole lines, waiting.
    lines: Vec<u8>,
    /// Lines dropped since the last batch, for want of room.
    dropped: u64,
    /// The writer thread waits for a first line (else it is collecting a batch or writing).
    writer_waiting: bool,
    /// A warning or error waits: write the batch now.
    urgent: bool,
    /// No writer thread any more: whoever logs a line writes it.
    closed: bool,
}

struct Output {
    writer: Box<dyn Write + Send>,
    /// The batch being written; its memory is reused as the next pending buffer.
    batch: Vec<u8>,
    json: bool,
}

/// Locks `mutex`, also after a panic elsewhere: the buffers stay whole lines either way.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink {
    /// Adds `line`; `urgent` (a warning or error) has it written without waiting.
    fn push(&self, line: &[u8], urgent: bool) {
        let mut pending = lock(&self.pending);
        if pending.closed {
            pending.lines.extend_from_slice(line);
            drop(pending);
            self.write_pending();
            return;
        }
        let before = pending.lines.len();
        if before + line.len() > PENDING_LIMIT {
            pending.dropped += 1;
            return;
        }
        pending.lines.extend_from_slice(line);
        let first = before == 0 && pending.writer_waiting;
        let large = before < WRITE_AT && pending.lines.len() >= WRITE_AT;
        pending.urgent |= urgent;
        if first || large || urgent {
            pending.writer_waiting = false;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// The writer thread: waits for a first line, gives the batch the flush interval to fill
    /// (less when it turns urgent or large), writes it; until closed.
    fn write_batches(&self) {
        loop {
            let mut pending = lock(&self.pending);
            while pending.lines.is_empty() && !pending.closed {
                pending.writer_waiting = true;
                pending = self
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            pending.writer_waiting = false;
            let deadline = Instant::now() + self.flush_interval;
            loop {
                if pending.closed {
                    // Whoever closed writes what is left.
                    return;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if pending.urgent || pending.lines.len() >= WRITE_AT || left.is_zero() {
                    break;
                }
                pending = self
                    .wake
                    .wait_timeout(pending, left)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(pending, _)| pending);
            }
            drop(pending);
            self.write_pending();
        }
    }

    /// Writes the pending lines (and, if some were dropped, a warning saying how many).
    fn write_pending(&self) {
        let mut output = lock(&self.output);
        let Output {
            writer,
            batch,
            json,
        } = &mut *output;
        let dropped = {
            let mut pending = lock(&self.pending);
            std::mem::swap(&mut pending.lines, batch);
            pending.urgent = false;
            std::mem::take(&mut pending.dropped)
        };
        if dropped > 0 {
            let mut line = Line::begin(batch, *json, Level::WARN, module_path!());
            line.str(
                "message",
                "log lines dropped: stdout took them slower than they came",
            );
            line.number("dropped", dropped);
            line.end(None, None);
        }
        if batch.is_empty() {
            return;
        }
        // Nowhere else to report a failing stdout: the lines are lost either way.
        let _ = writer.write_all(batch);
        let _ = writer.flush();
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// A writer keeping what is written; [`Captured::wait_for`] waits until a text arrives.
    #[derive(Clone, Default)]
    struct Captured(Arc<(Mutex<Vec<u8>>, Condvar)>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0.0).extend_from_slice(bytes);
            self.0.1.notify_all();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&lock(&self.0.0)).into_owned()
        }

        /// Waits for `needle` to be written; returns everything written by then.
        fn wait_for(&self, needle: &str) -> String {
            // Only there to fail instead of hanging.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut written = lock(&self.0.0);
            loop {
                let text = String::from_utf8_lossy(&written).into_owned();
                if text.contains(needle) {
                    return text;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "{needle:?} never written: {text}");
                written = self
                    .0
                    .1
                    .wait_timeout(written, left)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(written, _)| written);
            }
        }
    }

    /// Longer than any test: lines are written only when a test makes them.
    const NEVER: Duration = Duration::from_secs(3600);

    fn subscriber(writer: &LogWriter) -> impl Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry().with(writer.layer(EnvFilter::new("info")))
    }

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    /// Logs, in a request with [`TRACE_ID`] doing `reveal`, a line with fields of every kind,
    /// then one outside any request; returns the lines written.
    fn lines_of_a_request(json: bool) -> Vec<String> {
        let captured = Captured::default();
        let writer = LogWriter::new(captured.clone(), json, NEVER);
        let _logging = tracing::subscriber::set_default(subscriber(&writer));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(request_scope::run(TRACE_ID.to_owned(), async {
            request_scope::name_operation("reveal");
            tracing::info!(
                ttl = 3600u64,
                offset = -2i64,
                passphrase = false,
                name = "a \"quoted\"\nname",
                error = %"line one\nline two",
                "secret revealed"
            );
            tracing::debug!("filtered out");
        }));
        tracing::warn!("outside any request");
        drop(writer);
        captured.text().lines().map(str::to_owned).collect()
    }

    #[test]
    fn text_lines_carry_the_fields_trace_id_and_operation() {
        let lines = lines_of_a_request(false);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let (time, rest) = lines[0].split_once(' ').expect("a time first");
        assert_eq!(time.len(), "2025-06-01T12:00:00.123456Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert_eq!(
            rest,
            format!(
                " INFO burnbox_server::logs::tests: secret revealed ttl=3600 offset=-2 \
                 passphrase=false name=\"a \\\"quoted\\\"\\nname\" error=line one\\nline two \
                 trace_id={TRACE_ID} operation=reveal"
            )
        );
        assert!(
            lines[1].ends_with(" WARN burnbox_server::logs::tests: outside any request"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn json_lines_carry_the_fields_trace_id_and_operation() {
        let lines = lines_of_a_request(true);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
        let time = line["timestamp"].as_str().expect("a timestamp");
        assert_eq!(time.len(), "2025-06-01T12:00:00.123456Z".len(), "{time}");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "burnbox_server::logs::tests");
        assert_eq!(
            line["fields"],
            serde_json::json!({
                "message": "secret revealed",
                "ttl": 3600,
                "offset": -2,
                "passphrase": false,
                "name": "a \"quoted\"\nname",
                "error": "line one\nline two",
            })
        );
        assert_eq!(line["trace_id"], TRACE_ID);
        assert_eq!(line["operation"], "reveal");
        let outside: serde_json::Value = serde_json::from_str(&lines[1]).expect("a JSON line");
        assert_eq!(outside["level"], "WARN");
        assert_eq!(outside["fields"]["message"], "outside any request");
        assert!(outside.get("trace_id").is_none(), "{outside}");
    }

    #[test]
    fn pending_lines_are_written_on_close_and_later_ones_at_once() {
        let captured = Captured::default();
        let writer = LogWriter::new(captured.clone(), false, NEVER);
        writer.start();
        let _logging = tracing::subscriber::set_default(subscriber(&writer));
        tracing::info!("first");
        tracing::info!("second");
        // The writer thread gives the batch an hour: nothing is written yet.
        assert_eq!(captured.text(), "");
        writer.close();
        let written = captured.text();
        assert!(
            written.contains(": first\n") && written.contains(": second\n"),
            "{written}"
        );
        tracing::info!("after closing");
        assert!(captured.text().contains(": after closing\n"));
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let captured = Captured::default();
        let writer = LogWriter::new(captured.clone(), false, NEVER);
        writer.start();
        let _logging = tracing::subscriber::set_default(subscriber(&writer));
        tracing::info!("routine");
        tracing::warn!("alarming");
        let written = captured.wait_for("alarming");
        let routine = written.find(": routine\n").expect("the earlier line");
        assert!(
            routine < written.find(": alarming\n").unwrap_or(0),
            "{written}"
        );
    }

    /// A writer whose first write waits until the test opens it.
    #[derive(Clone, Default)]
    struct Stalled {
        written: Captured,
        /// (the writer is inside its first write, the test let it go on)
        state: Arc<(Mutex<(bool, bool)>, Condvar)>,
    }

    impl Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let (state, changed) = &*self.state;
            let mut state = lock(state);
            state.0 = true;
            changed.notify_all();
            while !state.1 {
                state = changed.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            drop(state);
            self.written.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_beyond_the_limit_are_dropped_and_counted() {
        let stalled = Stalled::default();
        let writer = LogWriter::new(stalled.clone(), false, NEVER);
        writer.start();
        let _logging = tracing::subscriber::set_default(subscriber(&writer));
        // A warning is written at once: the writer thread then hangs in its first write.
        tracing::warn!("stalling");
        {
            let (state, changed) = &*stalled.state;
            let mut state = lock(state);
            while !state.0 {
                state = changed.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        }
        let filler = "x".repeat(100);
        let logged = 2 * PENDING_LIMIT / filler.len();
        for index in 0..logged {
            tracing::info!(index, "filler {filler}");
        }
        {
            let (state, changed) = &*stalled.state;
            lock(state).1 = true;
            changed.notify_all();
        }
        writer.close();
        let written = stalled.written.text();
        let kept = written.matches(": filler ").count();
        let report = written
            .lines()
            .find(|line| line.contains("log lines dropped"))
            .expect("a line reports the dropped lines");
        assert!(report.contains(" WARN burnbox_server::logs: "), "{report}");
        let dropped: usize = report
            .split("dropped=")
            .nth(1)
            .and_then(|count| count.parse().ok())
            .expect("the count");
        assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}");
        assert_eq!(kept + dropped, logged);
        // What is kept is whole lines, in the order logged.
        let indexes: Vec<usize> = written
            .lines()
            .filter(|line| line.contains(": filler "))
            .map(|line| {
                assert!(
                    line.contains(&format!(": filler {filler} index=")),
                    "{line}"
                );
                line.rsplit("index=")
                    .next()
                    .and_then(|index| index.parse().ok())
                    .expect("index")
            })
            .collect();
        assert!(indexes.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn records_of_the_log_crate_show_their_own_target_and_no_log_fields() {
        let captured = Captured::default();
        let writer = LogWriter::new(captured.clone(), false, NEVER);
        let _logging = tracing::subscriber::set_default(subscriber(&writer));
        let record = tracing_log::log::Record::builder()
            .level(tracing_log::log::Level::Warn)
            .target("some_dependency::pool")
            .module_path_static(Some("some_dependency::pool"))
            .file_static(Some("src/pool.rs"))
            .line(Some(42))
            .args(format_args!("connection lost"))
            .build();
        tracing_log::format_trace(&record).expect("dispatched");
        drop(writer);
        let written = captured.text();
        assert!(
            written.ends_with(" WARN some_dependency::pool: connection lost\n"),
            "{written}"
        );
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(&date_and_time(0), b"1970-01-01T00:00:00.");
        assert_eq!(&date_and_time(1_700_000_000), b"2023-11-14T22:13:20.");
        assert_eq!(&date_and_time(951_782_400), b"2000-02-29T00:00:00.");
    }
}
