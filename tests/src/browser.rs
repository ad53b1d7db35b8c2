//! A real browser for the web-page tests: Debian's Chromium, headless, driven over the Chrome
//! DevTools Protocol (chromiumoxide; its fetcher is never used).
//!
//! One [`Browser`] per test, each with a fresh profile, so a second browser is a second
//! profile (no shared storage, cache or history). Every [`Tab`] records what its page does:
//! every network request (URL, method, headers, post data), every response, console errors and
//! uncaught exceptions. Helpers wait by polling the DOM (never a fixed sleep), click with real
//! mouse events, type with real text input, run axe-core, and take screenshots. When a test
//! panics, every open page is saved as a full-page PNG under `target/browser-screenshots/`.
//!
//! Set `BURNBOX_TEST_CHROMIUM` to use another Chromium/Chrome binary than `chromium` on the PATH.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use burnbox_server::Config;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetScriptExecutionDisabledParams,
};
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EventRequestWillBeSent, EventResponseReceived, GetCookiesParams, GetRequestPostDataParams,
    GetResponseBodyParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, GetNavigationHistoryParams,
    NavigateToHistoryEntryParams, ReloadParams, Viewport,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport as WindowViewport;
use chromiumoxide::layout::Point;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::page::ScreenshotParams;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;

use crate::{Backend, TestServer, poll_until};

/// How long any wait for the page lasts before the test fails (ten times and more the usual).
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

const MISSING_CHROMIUM: &str = "chromium is not installed; the page tests need it. Install it \
    (Debian/Ubuntu: `apt-get install chromium`) or set BURNBOX_TEST_CHROMIUM to a Chromium/Chrome binary.";

/// Starts the server for page tests: REST on a port chosen beforehand, so that its public URL
/// (the origin of every link the pages show) is the server itself.
pub async fn start_page_server(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let port = free_port();
    TestServer::start_with(backend, |config| {
        page_config(config, port);
        adjust(config);
    })
    .await
}

/// [`start_page_server`] with the harness's customers ([`crate::ALICE`], [`crate::BOB`]).
pub async fn start_page_server_with_customers(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let port = free_port();
    TestServer::start_with_customers(backend, |config| {
        page_config(config, port);
        adjust(config);
    })
    .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn page_config(config: &mut Config, port: u16) {
    config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.public_url = format!("http://127.0.0.1:{port}");
}

/// The Chromium binary: `BURNBOX_TEST_CHROMIUM`, else `chromium` (or `chromium-browser`) on
/// the PATH. Panics with the install hint when there is none.
pub fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BURNBOX_TEST_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "BURNBOX_TEST_CHROMIUM is {}, which is not a file. {MISSING_CHROMIUM}",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{MISSING_CHROMIUM}");
}

/// `target/` of this build (the test binary lives in `target/<profile>/deps/`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_owned)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// One headless Chromium with a profile of its own (a fresh temporary directory).
///
/// Dropped while the test panics, it saves a full-page screenshot of each of its pages first.
pub struct Browser {
    inner: Option<chromiumoxide::Browser>,
    handler: Option<tokio::task::JoinHandle<()>>,
    pages: Arc<Mutex<Vec<chromiumoxide::Page>>>,
    test_name: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launches Chromium: headless, no first run, no background networking, sync, extensions,
    /// default apps or component updates (the browser itself asks nobody for anything), no
    /// sandbox when running as root. Needs a multi-threaded tokio runtime.
    pub async fn launch() -> Self {
        let executable = chromium_binary();
        let profile = tempfile::Builder::new()
            .prefix("burnbox-chromium-")
            .tempdir()
            .expect("a profile directory");
        let mut builder = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(&executable)
            .user_data_dir(profile.path())
            .viewport(WindowViewport {
                width: 1024,
                height: 768,
                ..Default::default()
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(PAGE_TIMEOUT)
            .args([
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-component-update",
                "--disable-component-extensions-with-background-pages",
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--no-pings",
                "--no-proxy-server",
                "--disable-features=TranslateUI,Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,PrivacySandboxSettings4",
                "--safebrowsing-disable-auto-update",
                "--metrics-recording-only",
                "--password-store=basic",
                "--use-mock-keychain",
                "--disable-gpu",
            ]);
        if running_as_root() {
            builder = builder.no_sandbox();
        }
        let config = builder.build().expect("browser configuration");
        let (inner, mut handler) =
            chromiumoxide::Browser::launch(config)
                .await
                .unwrap_or_else(|err| {
                    panic!(
                        "cannot start {} ({err}). {MISSING_CHROMIUM}",
                        executable.display()
                    )
                });
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if event.is_err() {
                    // A message the CDP types do not know; the connection goes on.
                    continue;
                }
            }
        });
        let test_name = std::thread::current()
            .name()
            .unwrap_or("test")
            .replace("::", "-");
        Self {
            inner: Some(inner),
            handler: Some(handler),
            pages: Arc::new(Mutex::new(Vec::new())),
            test_name,
            _profile: profile,
        }
    }

    /// A new tab on `about:blank`, already recording.
    pub async fn tab(&self) -> Tab {
        let page = self
            .inner
            .as_ref()
            .expect("browser is open")
            .new_page("about:blank")
            .await
            .expect("a new tab");
        let streams = Streams {
            requests: page.event_listener().await.expect("request events"),
            responses: page.event_listener().await.expect("response events"),
            console: page.event_listener().await.expect("console events"),
            exceptions: page.event_listener().await.expect("exception events"),
            log: page.event_listener().await.expect("log events"),
        };
        self.pages.lock().expect("pages").push(page.clone());
        Tab {
            page,
            streams: Mutex::new(streams),
            record: Mutex::new(Record::default()),
            scripts_disabled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A new tab with JavaScript disabled for its page (CDP
    /// `Emulation.setScriptExecutionDisabled`): what a browser without scripts sees.
    pub async fn tab_without_javascript(&self) -> Tab {
        let tab = self.tab().await;
        tab.page
            .execute(SetScriptExecutionDisabledParams::new(true))
            .await
            .expect("disable JavaScript");
        tab.scripts_disabled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tab
    }

    /// Closes the browser and waits until it has exited.
    pub async fn close(mut self) {
        if let Some(mut inner) = self.inner.take() {
            let _ = inner.close().await;
            let _ = inner.wait().await;
        }
        if let Some(handler) = self.handler.take() {
            let _ = handler.await;
        }
    }

    fn save_screenshots(&self) {
        let pages = self
            .pages
            .lock()
            .map(|pages| pages.clone())
            .unwrap_or_default();
        if pages.is_empty() {
            return;
        }
        let dir = target_dir().join("browser-screenshots");
        let name = self.test_name.clone();
        // The test's runtime is unwinding: take the screenshots from a runtime of our own (the
        // browser's connection keeps running on the test runtime's worker threads).
        let saved = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for screenshots");
                    runtime.block_on(async {
                        let _ = std::fs::create_dir_all(&dir);
                        let mut saved = Vec::new();
                        for page in pages {
                            let shot = tokio::time::timeout(
                                Duration::from_secs(10),
                                page.screenshot(
                                    ScreenshotParams::builder()
                                        .format(CaptureScreenshotFormat::Png)
                                        .full_page(true)
                                        .build(),
                                ),
                            )
                            .await;
                            let n = SCREENSHOT_COUNTER.fetch_add(1, Ordering::Relaxed);
                            let path = dir.join(format!("{name}-{n}.png"));
                            match shot {
                                Ok(Ok(png)) => match std::fs::write(&path, png) {
                                    Ok(()) => saved.push(path.display().to_string()),
                                    Err(err) => saved.push(format!("{}: {err}", path.display())),
                                },
                                Ok(Err(err)) => saved.push(format!("(no screenshot: {err})")),
                                Err(_) => saved.push("(no screenshot: timed out)".into()),
                            }
                        }
                        saved
                    })
                })
                .join()
        });
        if let Ok(saved) = saved {
            for line in saved {
                eprintln!("browser screenshot: {line}");
            }
        }
    }
}

static SCREENSHOT_COUNTER: AtomicUsize = AtomicUsize::new(1);

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.save_screenshots();
        }
        // chromiumoxide kills the process on drop; the handler ends with the connection.
    }
}

struct Streams {
    requests: EventStream<EventRequestWillBeSent>,
    responses: EventStream<EventResponseReceived>,
    console: EventStream<EventConsoleApiCalled>,
    exceptions: EventStream<EventExceptionThrown>,
    log: EventStream<EventEntryAdded>,
}

/// A network request a page made.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// CDP request id.
    pub id: String,
    /// The URL without its fragment.
    pub url: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// The request headers as the browser reported them (a JSON object).
    pub headers: Value,
    /// The request body, when it had one.
    pub post_data: Option<String>,
    /// CDP resource type (`Document`, `Script`, `Fetch`, …).
    pub resource_type: String,
    /// The answer, once it came.
    pub response: Option<RecordedResponse>,
}

impl RecordedRequest {
    /// A request header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.as_object().and_then(|headers| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, value)| value.as_str().map(str::to_owned))
        })
    }
}

/// The answer to a [`RecordedRequest`].
#[derive(Clone, Debug)]
pub struct RecordedResponse {
    /// HTTP status.
    pub status: i64,
    /// MIME type.
    pub mime_type: String,
    /// Response headers (a JSON object).
    pub headers: Value,
}

/// A console message of level error, an uncaught exception or a browser log entry of level
/// error.
#[derive(Clone, Debug)]
pub struct ConsoleError {
    /// `console` (console.error), `exception`, or the log entry's source (`network`,
    /// `security`, `javascript`, …).
    pub source: String,
    /// The message.
    pub text: String,
    /// Where, when known.
    pub url: Option<String>,
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.source, self.text)?;
        if let Some(url) = &self.url {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Record {
    requests: Vec<RecordedRequest>,
    errors: Vec<ConsoleError>,
}

/// An axe-core violation.
#[derive(Clone, Debug)]
pub struct AxeViolation {
    /// Rule id.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks.
    pub help: String,
    /// The elements in violation: CSS selector, HTML and axe's summary.
    pub nodes: Vec<String>,
}

impl AxeViolation {
    /// Serious or critical.
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} ({}): {}", self.id, self.impact, self.help)?;
        for node in &self.nodes {
            writeln!(f, "    {node}")?;
        }
        Ok(())
    }
}

/// One page of a [`Browser`], recording its requests and errors.
pub struct Tab {
    page: chromiumoxide::Page,
    streams: Mutex<Streams>,
    record: Mutex<Record>,
    scripts_disabled: std::sync::atomic::AtomicBool,
}

/// A JS string literal of `text` (JSON is valid JavaScript).
pub fn js_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

impl Tab {
    /// The underlying chromiumoxide page, for what the helpers do not cover.
    pub fn page(&self) -> &chromiumoxide::Page {
        &self.page
    }

    /// Navigates to `url` and waits for its load event.
    pub async fn goto(&self, url: &str) {
        let navigation = tokio::time::timeout(PAGE_TIMEOUT, self.page.goto(url)).await;
        match navigation {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => panic!("navigation to {url} failed: {err}"),
            Err(_) => panic!("navigation to {url} did not finish within {PAGE_TIMEOUT:?}"),
        }
        self.wait_until("document.readyState === 'complete'", "the page loaded")
            .await;
    }

    /// Reloads the page and waits until the new document has loaded.
    pub async fn reload(&self) {
        let _: Value = self.eval("window.__burnboxBeforeReload = true; null").await;
        self.page
            .execute(ReloadParams::default())
            .await
            .expect("reload");
        self.wait_until(
            "document.readyState === 'complete' && !window.__burnboxBeforeReload",
            "the reloaded page",
        )
        .await;
    }

    /// Goes one entry back in the history (as the browser's back button) and waits until that
    /// entry's document is shown and loaded (from the back/forward cache or the network).
    pub async fn back(&self) {
        let history = self
            .page
            .execute(GetNavigationHistoryParams::default())
            .await
            .expect("navigation history");
        let current = usize::try_from(history.current_index).expect("history index");
        assert!(current > 0, "no history entry to go back to");
        let entry = &history.entries[current - 1];
        let url = entry.url.clone();
        self.page
            .execute(NavigateToHistoryEntryParams::new(entry.id))
            .await
            .expect("go back");
        self.wait_until(
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                js_string(&url)
            ),
            &format!("going back to {url}"),
        )
        .await;
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.eval::<String>("location.href").await
    }

    /// Evaluates `expression` (a promise is awaited) and returns its value as `T`; panics on an
    /// exception.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, expression: &str) -> T {
        let value = match self.try_eval(expression).await {
            Ok(value) => value.unwrap_or(Value::Null),
            Err(err) => panic!("evaluating `{}` failed: {err}", shorten(expression)),
        };
        serde_json::from_value(value.clone()).unwrap_or_else(|err| {
            panic!(
                "`{}` gave {value}, not the expected type: {err}",
                shorten(expression)
            )
        })
    }

    /// Evaluates `expression` in the page's current document: its JSON value (`None` for
    /// undefined), or the exception / protocol error as text.
    pub async fn try_eval(&self, expression: &str) -> Result<Option<Value>, String> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .user_gesture(false)
            .build()
            .map_err(|err| err.to_string())?;
        let answer = self
            .page
            .execute(params)
            .await
            .map_err(|err| err.to_string())?;
        if let Some(exception) = &answer.result.exception_details {
            let detail = exception
                .exception
                .as_ref()
                .and_then(|object| object.description.clone())
                .unwrap_or_else(|| exception.text.clone());
            return Err(detail);
        }
        Ok(answer.result.result.value.clone())
    }

    /// Waits until the JavaScript `condition` is true (polling the DOM; a navigation in between
    /// is waited out). Panics naming `what` after [`PAGE_TIMEOUT`], with the page's URL and text.
    ///
    /// Polled through the harness's one helper ([`crate::poll_until`]): CDP has no event for
    /// "an expression became true". A `MutationObserver` would see DOM changes only, not the
    /// rest these conditions read (`document.readyState`, focus, layout and styles, script
    /// state), and a navigation would drop it with the page's context.
    pub async fn wait_until(&self, condition: &str, what: &str) {
        let expression = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        let expression = &expression;
        let held = poll_until(
            PAGE_TIMEOUT,
            Duration::from_millis(25),
            move || async move {
                matches!(self.try_eval(expression).await, Ok(Some(Value::Bool(true)))).then_some(())
            },
        )
        .await;
        if held.is_err() {
            let url = self.try_eval("location.href").await;
            let text = self
                .try_eval("document.body ? document.body.innerText : ''")
                .await;
            panic!(
                "{what}: not so within {PAGE_TIMEOUT:?} (waiting for `{condition}`); page {url:?} shows: {}",
                shorten(&format!("{text:?}"))
            );
        }
    }

    /// Waits until `selector` matches an element.
    pub async fn wait_for(&self, selector: &str) {
        self.wait_until(
            &format!("document.querySelector({})", js_string(selector)),
            &format!("element {selector}"),
        )
        .await;
    }

    /// Waits until `selector` matches an element that is rendered visibly (not `hidden`, no
    /// hidden ancestor).
    pub async fn wait_visible(&self, selector: &str) {
        self.wait_until(
            &visible_js(selector),
            &format!("element {selector} visible"),
        )
        .await;
    }

    /// Waits until `selector` matches no visible element.
    pub async fn wait_not_visible(&self, selector: &str) {
        self.wait_until(
            &format!("!({})", visible_js(selector)),
            &format!("element {selector} not visible"),
        )
        .await;
    }

    /// Whether `selector` matches a visibly rendered element now.
    pub async fn is_visible(&self, selector: &str) -> bool {
        self.eval::<bool>(&visible_js(selector)).await
    }

    /// Whether `selector` matches an element now.
    pub async fn exists(&self, selector: &str) -> bool {
        self.eval::<bool>(&format!(
            "!!document.querySelector({})",
            js_string(selector)
        ))
        .await
    }

    /// Clicks the element with a real mouse click at its centre (scrolled into view first),
    /// after waiting until it is visible and enabled.
    pub async fn click(&self, selector: &str) {
        self.wait_until(
            &format!(
                "{} && !document.querySelector({}).disabled",
                visible_js(selector),
                js_string(selector)
            ),
            &format!("{selector} clickable"),
        )
        .await;
        let centre: Value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center', inline: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                js_string(selector)
            ))
            .await;
        let point = Point {
            x: centre[0].as_f64().expect("x"),
            y: centre[1].as_f64().expect("y"),
        };
        // The element hit at that point must be the one (or inside it): nothing covers it.
        let hit: bool = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); const h = document.elementFromPoint({}, {}); return !!h && (h === e || e.contains(h)); }})()",
                js_string(selector),
                point.x,
                point.y
            ))
            .await;
        assert!(
            hit,
            "{selector} is covered by another element; cannot click it"
        );
        self.page.click(point).await.expect("click");
    }

    /// Focuses the field `selector` by clicking it, selects what it holds, and types `text`
    /// over it (CDP `Input.insertText`, as a keyboard or paste would).
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        let _: Value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); e.focus(); if (e.select) e.select(); return null; }})()",
                js_string(selector)
            ))
            .await;
        self.page
            .execute(InsertTextParams::new(text))
            .await
            .expect("type text");
        let value = self.value(selector).await;
        assert_eq!(value, text, "{selector} does not hold what was typed");
    }

    /// The rendered text of the element (`innerText`, trimmed).
    pub async fn text(&self, selector: &str) -> String {
        self.wait_for(selector).await;
        self.eval::<String>(&format!(
            "document.querySelector({}).innerText.trim()",
            js_string(selector)
        ))
        .await
    }

    /// The `value` of a form field.
    pub async fn value(&self, selector: &str) -> String {
        self.wait_for(selector).await;
        self.eval::<String>(&format!(
            "document.querySelector({}).value",
            js_string(selector)
        ))
        .await
    }

    /// An attribute of the element (`None` when absent).
    pub async fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        self.wait_for(selector).await;
        self.eval::<Option<String>>(&format!(
            "document.querySelector({}).getAttribute({})",
            js_string(selector),
            js_string(name)
        ))
        .await
    }

    /// Everything a person could read or copy from the page now: its text, every form field's
    /// value and the document title.
    pub async fn everything_shown(&self) -> String {
        self.eval::<String>(
            "[document.title, document.body ? document.body.innerText : '', ...Array.from(document.querySelectorAll('input, textarea, select'), e => e.value)].join('\\n')",
        )
        .await
    }

    /// Emulates a screen `width` CSS pixels wide (a phone at 360).
    pub async fn set_viewport_width(&self, width: i64) {
        self.page
            .execute(
                SetDeviceMetricsOverrideParams::builder()
                    .width(width)
                    .height(740)
                    .device_scale_factor(1.0)
                    .mobile(true)
                    .build()
                    .expect("device metrics"),
            )
            .await
            .expect("set the viewport");
    }

    /// A PNG of the element's box as rendered (at `scale` device pixels per CSS pixel).
    pub async fn screenshot_element(&self, selector: &str, scale: f64) -> Vec<u8> {
        self.wait_visible(selector).await;
        let rect: Value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; }})()",
                js_string(selector)
            ))
            .await;
        let number = |index: usize| rect[index].as_f64().expect("a number");
        assert!(
            number(2) > 0.0 && number(3) > 0.0,
            "{selector} has no size: {rect}"
        );
        let shot = self
            .page
            .execute(
                CaptureScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .clip(Viewport {
                        x: number(0),
                        y: number(1),
                        width: number(2),
                        height: number(3),
                        scale,
                    })
                    .capture_beyond_viewport(true)
                    .build(),
            )
            .await
            .expect("element screenshot");
        let data: &str = shot.result.data.as_ref();
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("PNG data")
    }

    /// A full-page PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .full_page(true)
                    .build(),
            )
            .await
            .expect("screenshot")
    }

    /// Takes in every event the browser has sent so far: a command's answer comes after the
    /// events sent before it, so one round trip first.
    async fn sync(&self) {
        self.page
            .execute(GetNavigationHistoryParams::default())
            .await
            .expect("a round trip to the browser");
        let mut streams = self.streams.lock().expect("streams");
        let mut record = self.record.lock().expect("record");
        while let Some(Some(event)) = streams.requests.next().now_or_never() {
            let request = &event.request;
            let post_data = request.post_data_entries.as_ref().map(|entries| {
                let mut bytes = Vec::new();
                for entry in entries {
                    if let Some(data) = &entry.bytes {
                        let data: &str = data.as_ref();
                        bytes.extend(
                            base64::engine::general_purpose::STANDARD
                                .decode(data)
                                .unwrap_or_else(|_| data.as_bytes().to_vec()),
                        );
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            });
            let post_data = match post_data {
                Some(data) if !data.is_empty() => Some(data),
                _ if request.has_post_data == Some(true) => Some(String::new()),
                _ => None,
            };
            record.requests.push(RecordedRequest {
                id: event.request_id.inner().clone(),
                url: request.url.clone(),
                method: request.method.clone(),
                headers: request.headers.inner().clone(),
                post_data,
                resource_type: event
                    .r#type
                    .as_ref()
                    .map(|kind| format!("{kind:?}"))
                    .unwrap_or_default(),
                response: None,
            });
        }
        while let Some(Some(event)) = streams.responses.next().now_or_never() {
            let id = event.request_id.inner();
            if let Some(request) = record.requests.iter_mut().rev().find(|r| r.id == *id) {
                request.response = Some(RecordedResponse {
                    status: event.response.status,
                    mime_type: event.response.mime_type.clone(),
                    headers: event.response.headers.inner().clone(),
                });
            }
        }
        while let Some(Some(event)) = streams.console.next().now_or_never() {
            if matches!(
                event.r#type,
                ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
            ) {
                let text = event
                    .args
                    .iter()
                    .map(|arg| {
                        arg.value
                            .as_ref()
                            .map(|value| {
                                value
                                    .as_str()
                                    .map_or_else(|| value.to_string(), str::to_owned)
                            })
                            .or_else(|| arg.description.clone())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                record.errors.push(ConsoleError {
                    source: "console".into(),
                    text,
                    url: None,
                });
            }
        }
        while let Some(Some(event)) = streams.exceptions.next().now_or_never() {
            let details = &event.exception_details;
            let text = details
                .exception
                .as_ref()
                .and_then(|object| object.description.clone())
                .unwrap_or_else(|| details.text.clone());
            record.errors.push(ConsoleError {
                source: "exception".into(),
                text,
                url: details.url.clone(),
            });
        }
        while let Some(Some(event)) = streams.log.next().now_or_never() {
            if event.entry.level == LogEntryLevel::Error {
                record.errors.push(ConsoleError {
                    source: format!("{:?}", event.entry.source).to_lowercase(),
                    text: event.entry.text.clone(),
                    url: event.entry.url.clone(),
                });
            }
        }
    }

    /// Every request the page made so far, oldest first (post data fetched where the event did
    /// not carry it).
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        self.sync().await;
        let missing: Vec<String> = self
            .record
            .lock()
            .expect("record")
            .requests
            .iter()
            .filter(|request| request.post_data.as_deref() == Some(""))
            .map(|request| request.id.clone())
            .collect();
        for id in missing {
            if let Ok(answer) = self
                .page
                .execute(GetRequestPostDataParams::new(id.clone()))
                .await
            {
                let mut record = self.record.lock().expect("record");
                if let Some(request) = record.requests.iter_mut().find(|r| r.id == id) {
                    request.post_data = Some(answer.result.post_data.clone());
                }
            }
        }
        self.record.lock().expect("record").requests.clone()
    }

    /// Console errors, uncaught exceptions and error log entries so far.
    pub async fn console_errors(&self) -> Vec<ConsoleError> {
        self.sync().await;
        self.record.lock().expect("record").errors.clone()
    }

    /// The console errors since the last call (as [`Tab::console_errors`], then forgotten).
    pub async fn take_console_errors(&self) -> Vec<ConsoleError> {
        self.sync().await;
        std::mem::take(&mut self.record.lock().expect("record").errors)
    }

    /// Asserts the page logged no error and threw nothing.
    pub async fn assert_no_console_errors(&self, what: &str) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "{what}: console errors:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The requests that went elsewhere than `origin` (`http://host:port`); `data:` and
    /// `about:` URLs leave the browser for nobody and do not count.
    pub async fn requests_off_origin(&self, origin: &str) -> Vec<String> {
        self.requests()
            .await
            .into_iter()
            .filter(|request| {
                let url = &request.url;
                !(url.starts_with(&format!("{origin}/"))
                    || url == origin
                    || url.starts_with("data:")
                    || url.starts_with("about:"))
            })
            .map(|request| format!("{} {}", request.method, request.url))
            .collect()
    }

    /// Asserts every request went to `origin` (see [`Tab::requests_off_origin`]).
    pub async fn assert_only_origin(&self, origin: &str, what: &str) {
        let strays = self.requests_off_origin(origin).await;
        assert!(
            strays.is_empty(),
            "{what}: requests to other origins than {origin}: {strays:?}"
        );
    }

    /// The body of a request's answer as the page received it (uncompressed), in bytes.
    pub async fn response_body(&self, request_id: &str) -> Vec<u8> {
        let answer = self
            .page
            .execute(GetResponseBodyParams::new(request_id.to_owned()))
            .await
            .unwrap_or_else(|err| panic!("body of request {request_id}: {err}"));
        if answer.result.base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(&answer.result.body)
                .expect("base64 body")
        } else {
            answer.result.body.clone().into_bytes()
        }
    }

    /// Every cookie the browser holds for `url` (and for the page and its frames).
    pub async fn cookies(&self, url: &str) -> Vec<String> {
        self.page
            .execute(GetCookiesParams::builder().url(url).build())
            .await
            .expect("cookies")
            .result
            .cookies
            .iter()
            .map(|cookie| format!("{}={} ({})", cookie.name, cookie.value, cookie.domain))
            .collect()
    }

    /// Every URL in this tab's history.
    pub async fn history_urls(&self) -> Vec<String> {
        self.page
            .execute(GetNavigationHistoryParams::default())
            .await
            .expect("navigation history")
            .result
            .entries
            .iter()
            .map(|entry| entry.url.clone())
            .collect()
    }

    /// Runs axe-core (WCAG 2 A, AA and 2.1 AA rules) on the page as it is and returns the
    /// violations. axe is injected with `Runtime.evaluate`, which the page's CSP does not
    /// govern, so the CSP stays as strict as served.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        // axe needs timers. On a page loaded without JavaScript, scripts are allowed for the run
        // only: the page's own script was skipped at load and does not run now.
        let disabled = self
            .scripts_disabled
            .load(std::sync::atomic::Ordering::Relaxed);
        if disabled {
            self.set_scripts_disabled(false).await;
        }
        let violations = self.run_axe().await;
        if disabled {
            self.set_scripts_disabled(true).await;
        }
        violations
    }

    async fn set_scripts_disabled(&self, disabled: bool) {
        self.page
            .execute(SetScriptExecutionDisabledParams::new(disabled))
            .await
            .expect("switch JavaScript");
    }

    async fn run_axe(&self) -> Vec<AxeViolation> {
        let loaded: bool = self.eval("typeof window.axe === 'object'").await;
        if !loaded {
            let source = axe_source().await;
            self.try_eval(&format!("{source}\n;true"))
                .await
                .unwrap_or_else(|err| panic!("injecting axe-core failed: {err}"));
        }
        let violations: Vec<Value> = self
            .eval(
                "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] }, resultTypes: ['violations'] })
                   .then(r => r.violations.map(v => ({ id: v.id, impact: v.impact || '', help: v.help,
                     nodes: v.nodes.map(n => `${n.target.join(' ')}: ${n.html} -- ${(n.failureSummary || '').replace(/\\s+/g, ' ')}`) })))",
            )
            .await;
        violations
            .into_iter()
            .map(|violation| AxeViolation {
                id: violation["id"].as_str().unwrap_or_default().to_owned(),
                impact: violation["impact"].as_str().unwrap_or_default().to_owned(),
                help: violation["help"].as_str().unwrap_or_default().to_owned(),
                nodes: violation["nodes"]
                    .as_array()
                    .map(|nodes| {
                        nodes
                            .iter()
                            .filter_map(|node| node.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Runs axe and asserts no serious or critical violation (printing all of them if any).
    /// Returns every violation found, for the report.
    pub async fn assert_axe_clean(&self, what: &str) -> Vec<AxeViolation> {
        let violations = self.axe().await;
        let listing: String = violations.iter().map(ToString::to_string).collect();
        if !violations.is_empty() {
            eprintln!("axe on {what}:\n{listing}");
        }
        assert!(
            !violations.iter().any(AxeViolation::is_serious),
            "{what}: axe-core found serious or critical violations:\n{listing}"
        );
        violations
    }
}

/// A JavaScript expression: whether `selector` matches an element rendered visibly (not
/// `hidden`, no hidden ancestor, not `display: none`, `visibility: hidden` or transparent).
pub fn visible_js(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); return !!e && !e.closest('[hidden]') && e.checkVisibility({{ visibilityProperty: true, opacityProperty: true }}); }})()",
        js_string(selector)
    )
}

fn shorten(text: &str) -> String {
    const MAX: usize = 600;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The axe-core release the page tests run: from the npm registry, checked against its
/// published sha512 integrity.
pub const AXE_VERSION: &str = "4.14.1";
const AXE_INTEGRITY: &str = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==";

static AXE: tokio::sync::OnceCell<Arc<String>> = tokio::sync::OnceCell::const_new();

/// axe.min.js of [`AXE_VERSION`]: the npm tarball is downloaded once into
/// `target/axe-core/`, its sha512 checked against the pinned integrity every time it is read,
/// and `package/axe.min.js` taken out of it (also kept beside the tarball).
pub async fn axe_source() -> Arc<String> {
    AXE.get_or_init(|| async { Arc::new(load_axe().await) })
        .await
        .clone()
}

async fn load_axe() -> String {
    let dir = target_dir().join("axe-core");
    let tarball = dir.join(format!("axe-core-{AXE_VERSION}.tgz"));
    let bytes = match std::fs::read(&tarball) {
        Ok(bytes) if integrity_of(&bytes) == AXE_INTEGRITY => bytes,
        _ => {
            let url = format!("https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz");
            let bytes = download(&url).await.unwrap_or_else(|err| {
                panic!(
                    "cannot download axe-core {AXE_VERSION} from {url}: {err}. The page tests run \
                     axe-core for their accessibility checks; they need the npm registry once \
                     (the tarball is then kept in {})",
                    dir.display()
                )
            });
            let integrity = integrity_of(&bytes);
            assert_eq!(
                integrity, AXE_INTEGRITY,
                "axe-core {AXE_VERSION} from {url} does not match its pinned integrity"
            );
            std::fs::create_dir_all(&dir).expect("target/axe-core");
            let partial = dir.join(format!(
                ".axe-core-{AXE_VERSION}.{}.tgz",
                std::process::id()
            ));
            std::fs::write(&partial, &bytes).expect("write the axe-core tarball");
            std::fs::rename(&partial, &tarball).expect("keep the axe-core tarball");
            bytes
        }
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut source = None;
    for entry in archive.entries().expect("axe-core tarball") {
        let mut entry = entry.expect("axe-core tarball entry");
        let path = entry.path().expect("entry path").into_owned();
        if path == Path::new("package/axe.min.js") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("axe.min.js");
            source = Some(text);
            break;
        }
    }
    let source = source.expect("package/axe.min.js in the axe-core tarball");
    let extracted = dir.join(format!("axe-{AXE_VERSION}.min.js"));
    if !extracted.is_file() {
        let partial = dir.join(format!(".axe-{AXE_VERSION}.{}.js", std::process::id()));
        if std::fs::write(&partial, &source).is_ok() {
            let _ = std::fs::rename(&partial, &extracted);
        }
    }
    source
}

fn integrity_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

async fn download(url: &str) -> Result<Vec<u8>, String> {
    // ureq: rustls with the ring provider and the system's certificate store (where a
    // machine keeps the CA of its TLS proxy), a client of its own that changes nothing for the
    // rest of the process.
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .new_agent();
        let mut response = agent.get(&url).call().map_err(|err| err.to_string())?;
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|err| err.to_string())
    })
    .await
    .map_err(|err| err.to_string())?
}
