//! The real `burnbox` binary: configuration errors exit 2 with one line naming the setting, and
//! SIGTERM stops a running server with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

fn burnbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_burnbox"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("BURNBOX_")) {
        command.env_remove(name);
    }
    command
        .env("BURNBOX_HTTP_ADDR", "127.0.0.1:0")
        .env("BURNBOX_GRPC_ADDR", "127.0.0.1:0")
        .env("BURNBOX_ADMIN_ADDR", "127.0.0.1:0");
    command
}

fn assert_config_error(command: &mut Command, setting: &str) {
    let output = command.output().expect("run burnbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(setting), "names {setting}: {stderr}");
}

/// A `burnbox` started with logs in `format`: the process, the log lines not read yet, and the
/// REST address it logged when it began listening.
struct Running {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    http: String,
}

fn start_logging(command: &mut Command, format: &str) -> Running {
    let mut child = command
        .env("BURNBOX_LOG_FORMAT", format)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start burnbox");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("burnbox listening"))
        .expect("the server logs that it listens");
    // `"http":"127.0.0.1:1234"` in JSON, `http=127.0.0.1:1234` in text.
    let http = listening
        .split("\"http\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .or_else(|| {
            listening
                .split(" http=")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
        })
        .expect("http address in the log")
        .to_owned();
    Running { child, lines, http }
}

fn start_with_json_logs(command: &mut Command) -> Running {
    start_logging(command, "json")
}

/// Stops a running `burnbox` with SIGTERM; asserts it exits with 0 and returns the log lines it
/// wrote since the last one read.
fn stop(running: Running) -> Vec<String> {
    let Running {
        mut child, lines, ..
    } = running;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    // The exit itself is the event: a thread waits for it, the test for the thread.
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(child.wait()));
    let status = exit
        .recv_timeout(Duration::from_secs(30))
        .expect("burnbox did not stop within 30 s of SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    lines.map_while(Result::ok).collect()
}

/// A master key and a public URL: a server started with them logs no warning (a warning would
/// have the pending lines written at once).
fn configured(command: &mut Command) -> &mut Command {
    command
        .env(
            "BURNBOX_MASTER_KEY",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        )
        .env("BURNBOX_PUBLIC_URL", "http://localhost")
}

#[test]
fn invalid_configuration_exits_2_naming_the_setting() {
    // (variable set, its value, the setting the error must name)
    let cases = [
        (
            "BURNBOX_REDIS_URL",
            "redis://127.0.0.1:1/",
            "BURNBOX_MASTER_KEY",
        ),
        ("BURNBOX_MASTER_KEY", "too-short", "BURNBOX_MASTER_KEY"),
        (
            "BURNBOX_MAX_SECRET_BYTES",
            "lots",
            "BURNBOX_MAX_SECRET_BYTES",
        ),
        ("BURNBOX_MAX_SECRET_BYTES", "0", "BURNBOX_MAX_SECRET_BYTES"),
        ("BURNBOX_DEFAULT_TTL", "10", "BURNBOX_DEFAULT_TTL"),
        ("BURNBOX_MAX_TTL", "30", "BURNBOX_MAX_TTL"),
        ("BURNBOX_HTTP_ADDR", "not an address", "BURNBOX_HTTP_ADDR"),
        ("BURNBOX_LOG_FORMAT", "xml", "BURNBOX_LOG_FORMAT"),
        (
            "BURNBOX_ALLOW_ANONYMOUS",
            "perhaps",
            "BURNBOX_ALLOW_ANONYMOUS",
        ),
        (
            "BURNBOX_ALLOW_ANONYMOUS_CREATE",
            "perhaps",
            "BURNBOX_ALLOW_ANONYMOUS_CREATE",
        ),
        (
            "BURNBOX_API_TOKENS_FILE",
            "/nonexistent/tokens",
            "BURNBOX_API_TOKENS_FILE",
        ),
        ("BURNBOX_REDIS_URL", "http://x", "BURNBOX_REDIS_URL"),
        (
            "BURNBOX_REDIS_CLUSTER_NODES",
            "redis://127.0.0.1:1,127.0.0.1:2",
            "BURNBOX_REDIS_CLUSTER_NODES",
        ),
    ];
    for (variable, value, setting) in cases {
        assert_config_error(burnbox().env(variable, value), setting);
    }
    // An on/off setting says what it accepts.
    let output = burnbox()
        .env("BURNBOX_ALLOW_ANONYMOUS", "perhaps")
        .output()
        .expect("run burnbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("yes/no"), "{stderr}");
}

#[test]
fn on_off_settings_take_yes_no_on_off_and_1_0() {
    for value in ["yes", "NO", "on", "off", "1", "0", "True"] {
        let running = start_with_json_logs(burnbox().env("BURNBOX_ALLOW_ANONYMOUS_CREATE", value));
        let Running { mut child, .. } = running;
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_port_in_use_is_one_line_naming_its_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = taken.local_addr().expect("address").to_string();
    for setting in [
        "BURNBOX_HTTP_ADDR",
        "BURNBOX_GRPC_ADDR",
        "BURNBOX_ADMIN_ADDR",
    ] {
        let output = burnbox()
            .env(setting, &address)
            .stdout(Stdio::null())
            .output()
            .expect("run burnbox");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        let lines: Vec<_> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains(setting) && lines[0].contains(&address),
            "{stderr}"
        );
    }
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let output = burnbox()
        .arg("--help")
        .output()
        .expect("run burnbox --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in [
        "BURNBOX_HTTP_ADDR",
        "BURNBOX_GRPC_ADDR",
        "BURNBOX_ADMIN_ADDR",
        "BURNBOX_REDIS_URL",
        "BURNBOX_MASTER_KEY",
        "BURNBOX_PUBLIC_URL",
        "BURNBOX_MAX_SECRET_BYTES",
        "BURNBOX_DEFAULT_TTL",
        "BURNBOX_MAX_TTL",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}");
    }
}

#[test]
fn sigterm_stops_the_server_with_exit_code_0() {
    let running = start_with_json_logs(&mut burnbox());
    assert!(running.http.starts_with("127.0.0.1:"), "{}", running.http);
    let rest = stop(running);
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}

/// A bare HTTP/1.1 GET; returns the status code.
fn http_get_status(addr: &str, path: &str, authorization: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

fn basic(credentials: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// Reads the server's log lines on a thread, so the server never blocks on a full pipe, and
/// hands them to the test to wait for.
fn forward_log(lines: std::io::Lines<BufReader<std::process::ChildStdout>>) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            // Keep draining even once the test stopped listening.
            let _ = sender.send(line);
        }
    });
    receiver
}

/// Waits for the next log line containing `needle`, skipping others.
fn expect_log_line(log: &Receiver<String>, needle: &str) -> String {
    // Only there to fail instead of hanging.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line containing {needle:?}"),
        }
    }
}

#[test]
fn sighup_reloads_the_api_tokens_file() {
    let tokens = tempfile::NamedTempFile::new().expect("tokens file");
    std::fs::write(tokens.path(), "alice:first-token\n").expect("write tokens");
    let Running {
        mut child,
        lines,
        http,
    } = start_with_json_logs(burnbox().env("BURNBOX_API_TOKENS_FILE", tokens.path()));
    let log = forward_log(lines);

    assert_eq!(
        http_get_status(&http, "/api/v1/authcheck", &basic("alice:first-token")),
        200
    );
    assert_eq!(
        http_get_status(&http, "/api/v1/authcheck", &basic("alice:second-token")),
        401
    );

    std::fs::write(tokens.path(), "alice:second-token\n").expect("rewrite tokens");
    let hangup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("send SIGHUP");
    assert!(hangup.success());
    expect_log_line(&log, "API tokens reloaded");
    assert_eq!(
        http_get_status(&http, "/api/v1/authcheck", &basic("alice:second-token")),
        200
    );
    assert_eq!(
        http_get_status(&http, "/api/v1/authcheck", &basic("alice:first-token")),
        401
    );

    // A broken file on reload keeps the tokens in force.
    std::fs::write(tokens.path(), "no colon here\n").expect("break tokens");
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("send SIGHUP");
    expect_log_line(&log, "API tokens not reloaded");
    assert_eq!(
        http_get_status(&http, "/api/v1/authcheck", &basic("alice:second-token")),
        200
    );
    assert_eq!(child.try_wait().expect("wait"), None, "still running");

    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_invalid_tokens_file_is_a_configuration_error() {
    let tokens = tempfile::NamedTempFile::new().expect("tokens file");
    std::fs::write(tokens.path(), "alice:t\nalice:u\n").expect("write tokens");
    assert_config_error(
        burnbox().env("BURNBOX_API_TOKENS_FILE", tokens.path()),
        "BURNBOX_API_TOKENS_FILE",
    );
}

/// An HTTP/1.1 POST of a form, with a W3C `traceparent` naming `trace_id`; returns the status
/// code and the body.
fn http_post_form(addr: &str, path: &str, trace_id: &str, form: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\ntraceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, body.to_owned())
}

/// The line of `lines` containing `needle`.
fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}: {lines:#?}"))
}

#[test]
fn log_lines_of_a_request_carry_its_trace_id_and_operation_and_no_secret() {
    let share_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reveal_trace = "0af7651916cd43dd8448eb211c80319c";
    let value = "log-probe-value-5d2e";
    let passphrase = "log-probe-passphrase-81c3";
    for format in ["text", "json"] {
        let running = start_logging(configured(&mut burnbox()), format);
        let (status, shared) = http_post_form(
            &running.http,
            "/api/v1/share",
            share_trace,
            &format!("secret={value}&passphrase={passphrase}"),
        );
        assert_eq!(status, 200, "{shared}");
        let shared: serde_json::Value = serde_json::from_str(&shared).expect("a JSON answer");
        let secret_key = shared["secret_key"]
            .as_str()
            .expect("a secret key")
            .to_owned();
        let metadata_key = shared["metadata_key"].as_str().expect("a key").to_owned();
        let (status, revealed) = http_post_form(
            &running.http,
            &format!("/api/v1/secret/{secret_key}"),
            reveal_trace,
            &format!("passphrase={passphrase}"),
        );
        assert_eq!(status, 200, "{revealed}");
        assert!(revealed.contains(value), "{revealed}");
        let lines = stop(running);

        let stored = line_with(&lines, "secret stored");
        let revealed = line_with(&lines, "secret revealed");
        if format == "json" {
            for (line, message, trace_id, operation) in [
                (stored, "secret stored", share_trace, "share"),
                (revealed, "secret revealed", reveal_trace, "reveal"),
            ] {
                let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(line["fields"]["message"], message, "{line}");
                assert_eq!(line["level"], "INFO", "{line}");
                assert_eq!(line["target"], "burnbox_core::secrets", "{line}");
                assert_eq!(line["trace_id"], trace_id, "{line}");
                assert_eq!(line["operation"], operation, "{line}");
                assert!(line["timestamp"].is_string(), "{line}");
            }
        } else {
            assert!(
                stored.contains(" INFO burnbox_core::secrets: secret stored ")
                    && stored.ends_with(&format!(" trace_id={share_trace} operation=share")),
                "{stored}"
            );
            assert!(
                revealed.contains(" INFO burnbox_core::secrets: secret revealed ")
                    && revealed.ends_with(&format!(" trace_id={reveal_trace} operation=reveal")),
                "{revealed}"
            );
        }
        for needle in [value, passphrase, &secret_key, &metadata_key] {
            let line = lines.iter().find(|line| line.contains(needle));
            assert!(line.is_none(), "{needle:?} appears in the logs: {line:?}");
        }
    }
}

#[test]
fn lines_logged_just_before_shutdown_are_written() {
    // Info lines wait a minute to be written: only the shutdown can write them in time.
    let running = start_logging(
        configured(&mut burnbox()).env("BURNBOX_LOG_FLUSH_MS", "60000"),
        "text",
    );
    let trace_id = "5e1e5e1e5e1e5e1e5e1e5e1e5e1e5e1e";
    let (status, answer) = http_post_form(&running.http, "/api/v1/share", trace_id, "secret=s");
    assert_eq!(status, 200, "{answer}");
    let lines = stop(running);
    assert!(line_with(&lines, "secret stored").contains(trace_id));
    line_with(&lines, "shutting down");
    line_with(&lines, "stopped");
}

#[test]
fn lines_logged_before_a_failing_exit_are_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = taken.local_addr().expect("address").to_string();
    // The admin listener is bound last: the store's line is logged, then startup fails.
    let output = configured(&mut burnbox())
        .env("BURNBOX_LOG_FLUSH_MS", "60000")
        .env("BURNBOX_ADMIN_ADDR", &address)
        .output()
        .expect("run burnbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(" INFO burnbox_server::app: store: in-process memory"),
        "{stdout}"
    );
}
