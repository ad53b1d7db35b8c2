//! The README's command blocks, run as written against a real server: "Share and reveal", the
//! customer session and its passphrase example with `curl` through `sh -c`, the answers compared
//! with the ones shown. The gRPC block is checked against the descriptors the server serves.
//!
//! The blocks are read from README.md and CONTRIBUTING.md at build time (no copy of them lives
//! here), and every shell-looking block must be either run here or listed in [`NOT_RUN`] with the
//! reason, so a new or moved block cannot drift from what the server does unnoticed.
//!
//! In a shown answer, `…` stands for any fields, and generated values (keys, timestamps,
//! `error_id`, the ttls that count down, a generated password) match any value of their shape;
//! everything else (field names, states, messages, status lines, the headers shown) must be
//! exactly what the server answers. A key shown in one answer and used in a later command is
//! replaced by the key the server really gave.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use burnbox_server::Config;
use burnbox_tests::{Backend, TestServer};
use clap::Parser;
use regex::Regex;

const README: &str = include_str!("../../README.md");
const CONTRIBUTING: &str = include_str!("../../CONTRIBUTING.md");

/// The languages of fenced blocks that look like something to run.
const SHELL_LANGUAGES: [&str; 6] = ["sh", "bash", "shell", "console", "zsh", "shell-session"];

/// The blocks this file runs or checks: (file, heading, index of the shell block under it).
const SHARE_AND_REVEAL: (&str, &str, usize) = ("README.md", "Share and reveal", 0);
const SESSION: (&str, &str, usize) = ("README.md", "A session", 0);
const PASSPHRASE: (&str, &str, usize) = ("README.md", "A session", 1);
const GRPCURL: (&str, &str, usize) = ("README.md", "gRPC API", 0);

/// Shell blocks that no test runs: (file, heading, index of the shell block under it, why).
const NOT_RUN: [(&str, &str, usize, &str); 5] = [
    (
        "README.md",
        "Run it",
        0,
        "builds the release binary and serves on the fixed ports 8080, 50051 and 9090 until \
         stopped; crates/server/tests/binary.rs covers the binary's startup, and the blocks run \
         here use a server with the same default configuration \
         (defaults_are_the_addresses_the_readme_uses checks its ports)",
    ),
    (
        "README.md",
        "Run it",
        1,
        "needs openssl, a Redis on 127.0.0.1:6379 and a release build, and runs until stopped; the \
         Redis suites run the server on a real redis-server with a master key",
    ),
    (
        "README.md",
        "From the terminal",
        0,
        "needs burnbox-cli installed and a server at secrets.example.com; crates/cli/tests/cli.rs \
         pipes a secret through `burnbox-cli share` and `reveal` against a real server",
    ),
    (
        "README.md",
        "Develop and test",
        0,
        "`cargo test --workspace` is this suite itself",
    ),
    (
        "CONTRIBUTING.md",
        "Tests",
        0,
        "`cargo test --workspace` is this suite itself",
    ),
];

/// A fenced block of a Markdown file.
struct Block {
    file: &'static str,
    /// The nearest heading above it, without its `#`s.
    heading: String,
    /// Its index among the shell blocks under that heading.
    index: usize,
    language: String,
    /// Its lines, without the fence's indentation.
    lines: Vec<String>,
}

/// Every fenced block of `text` (fences may be indented, as in a list item).
fn blocks(file: &'static str, text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut heading = String::new();
    let mut shell_blocks_under_heading = 0;
    let mut open: Option<(usize, Block)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((fence_indent, mut block)) = open.take() {
            if trimmed.trim_end() == "```" {
                found.push(block);
            } else {
                block
                    .lines
                    .push(line[fence_indent.min(indent)..].to_owned());
                open = Some((fence_indent, block));
            }
        } else if let Some(info) = trimmed.strip_prefix("```") {
            let language = info.trim().to_owned();
            let index = shell_blocks_under_heading;
            if SHELL_LANGUAGES.contains(&language.as_str()) {
                shell_blocks_under_heading += 1;
            }
            open = Some((
                indent,
                Block {
                    file,
                    heading: heading.clone(),
                    index,
                    language,
                    lines: Vec::new(),
                },
            ));
        } else if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_owned();
            shell_blocks_under_heading = 0;
        }
    }
    assert!(open.is_none(), "{file} ends inside a fenced block");
    found
}

/// The shell blocks of README.md and CONTRIBUTING.md.
fn shell_blocks() -> Vec<Block> {
    let mut all = blocks("README.md", README);
    all.extend(blocks("CONTRIBUTING.md", CONTRIBUTING));
    all.retain(|block| SHELL_LANGUAGES.contains(&block.language.as_str()));
    all
}

/// The shell block `(file, heading, index)`.
fn block(which: (&str, &str, usize)) -> Block {
    shell_blocks()
        .into_iter()
        .find(|block| (block.file, block.heading.as_str(), block.index) == which)
        .unwrap_or_else(|| panic!("no shell block {which:?}: was it moved or renamed?"))
}

#[test]
fn every_shell_block_is_run_or_listed_with_a_reason() {
    let handled = [SHARE_AND_REVEAL, SESSION, PASSPHRASE, GRPCURL];
    let mut expected: Vec<(&str, &str, usize)> = handled.to_vec();
    expected.extend(
        NOT_RUN
            .iter()
            .map(|(file, heading, index, _)| (*file, *heading, *index)),
    );
    let blocks = shell_blocks();
    let present: Vec<(&str, &str, usize)> = blocks
        .iter()
        .map(|block| (block.file, block.heading.as_str(), block.index))
        .collect();
    let new: Vec<String> = blocks
        .iter()
        .filter(|block| !expected.contains(&(block.file, block.heading.as_str(), block.index)))
        .map(|block| {
            format!(
                "{} under \"{}\" (shell block {}): {}",
                block.file,
                block.heading,
                block.index,
                block.lines.first().map(String::as_str).unwrap_or("")
            )
        })
        .collect();
    assert!(
        new.is_empty(),
        "shell blocks neither run by tests/tests/readme.rs nor listed in its NOT_RUN: {new:#?}"
    );
    let stale: Vec<_> = expected
        .iter()
        .filter(|which| !present.contains(which))
        .collect();
    assert!(
        stale.is_empty(),
        "tests/tests/readme.rs names blocks the docs no longer have: {stale:?}"
    );
}

#[test]
fn defaults_are_the_addresses_the_readme_uses() {
    // The blocks say localhost:8080 and localhost:50051, the ports `cargo run` serves on.
    let defaults = Config::parse_from(["burnbox"]);
    assert_eq!(defaults.http_addr.port(), 8080);
    assert_eq!(defaults.grpc_addr.port(), 50051);
    assert_eq!(defaults.admin_addr.port(), 9090);
    assert!(
        README.contains("localhost:8080") && README.contains("localhost:50051"),
        "the README's blocks use the default ports"
    );
}

/// A server as `cargo run` starts it (the default configuration; only the listeners on free
/// loopback ports), with `tokens_file` as `BURNBOX_API_TOKENS_FILE` if given. Startup itself,
/// from the binary, is what crates/server/tests/binary.rs covers.
async fn default_server(tokens_file: Option<PathBuf>) -> TestServer {
    TestServer::start_with(Backend::Memory, |config| {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        *config = Config::parse_from(["burnbox"]);
        config.http_addr = loopback;
        config.grpc_addr = loopback;
        config.admin_addr = loopback;
        config.api_tokens_file = tokens_file;
    })
    .await
}

/// The port of the server's REST listener.
fn http_port(server: &TestServer) -> u16 {
    server
        .http_base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("http://127.0.0.1:PORT")
}

/// Runs `script` with `sh -c` in `dir`; returns its stdout, after asserting it succeeded.
async fn sh(dir: &Path, script: String) -> String {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&dir)
            // The server is on loopback: a proxy from the environment must not be asked.
            .env("NO_PROXY", "*")
            .env("no_proxy", "*")
            .output()
            .expect("sh runs");
        assert!(
            output.status.success(),
            "`{script}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    })
    .await
    .expect("the shell's thread")
}

/// Panics with an install hint unless `curl` can run.
fn require_curl() {
    match Command::new("curl").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!("curl --version failed: {}", output.status),
        Err(err) => panic!(
            "the README's examples run curl, which cannot run here ({err}). Install it \
             (Debian/Ubuntu: `apt-get install curl`, macOS: it is built in)."
        ),
    }
}

/// The keys the shown answers named, each with the key the server really gave in its place.
#[derive(Default)]
struct Keys {
    actual: BTreeMap<String, String>,
}

impl Keys {
    /// Records that the shown key `shown` is `actual` here; the same shown key must always be
    /// the same real one, and two shown keys two real ones.
    fn bind(&mut self, shown: &str, actual: &str) {
        if let Some(bound) = self.actual.get(shown) {
            assert_eq!(bound, actual, "the key shown as {shown} is {bound} here");
            return;
        }
        if let Some((other, _)) = self.actual.iter().find(|(_, real)| *real == actual) {
            panic!("the keys shown as {other} and {shown} are both {actual} here");
        }
        self.actual.insert(shown.to_owned(), actual.to_owned());
    }

    /// `command` with every shown key replaced by its real one; a key that no earlier answer
    /// gave is a mistake in the docs.
    fn substitute(&self, command: &str) -> String {
        let key = Regex::new(r"\b([0-9a-z]{31}|SECRET_KEY|METADATA_KEY)\b").expect("regex");
        if let Some(unknown) = key
            .find_iter(command)
            .find(|shown| !self.actual.contains_key(shown.as_str()))
        {
            panic!(
                "`{command}` uses the key {}, which no earlier answer gave",
                unknown.as_str()
            );
        }
        key.replace_all(command, |shown: &regex::Captures<'_>| {
            self.actual[&shown[0]].clone()
        })
        .into_owned()
    }
}

/// What a placeholder in a shown answer must be checked against once matched.
enum Check {
    /// A key, bound in [`Keys`].
    Key(String),
    /// A ttl that counts down: close to the one shown.
    Countdown(i64),
    /// The first 8 characters of a key shown in full elsewhere.
    ShortKey(String),
}

/// A generated password's characters (letters and digits without look-alikes, and symbols).
const PASSWORD_CLASS: &str = r"[a-km-zA-HJ-NP-Z2-9!#$%&*+\-=?@^_~]";

/// The shown answer as one text: a JSON line the README wraps continues on lines that start
/// with a space.
fn unwrap_lines(lines: &[&str]) -> String {
    let mut text = String::new();
    for (index, line) in lines.iter().enumerate() {
        match line.strip_prefix(' ') {
            Some(continued) if index > 0 => text.push_str(continued),
            Some(_) | None => {
                if index > 0 {
                    text.push('\n');
                }
                text.push_str(line);
            }
        }
    }
    text
}

/// Asserts that `actual` (the output of `command`) is the `shown` answer, binding the keys it
/// shows. The `value` of a `/generate` answer is a generated password.
fn assert_answer(shown: &[&str], actual: &str, command: &str, keys: &mut Keys) {
    let actual = actual.replace("\r\n", "\n");
    let actual = actual.trim_end();
    let shown_lines: Vec<&str> = shown.to_vec();
    if shown_lines
        .first()
        .is_some_and(|line| line.starts_with("HTTP/"))
    {
        // A status line and the headers shown, a blank line, the body: the status line must be
        // the same, each header shown must be among the real ones, the body must match.
        let blank = shown_lines
            .iter()
            .position(|line| line.is_empty())
            .expect("a blank line after the headers shown");
        let (actual_head, actual_body) = actual
            .split_once("\n\n")
            .unwrap_or_else(|| panic!("`{command}` gave no headers: {actual}"));
        let mut actual_head = actual_head.lines();
        assert_eq!(
            actual_head.next(),
            Some(shown_lines[0]),
            "`{command}`: status line"
        );
        // Header names are case-insensitive, their values are not.
        let name_lowered = |header: &str| match header.split_once(':') {
            Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
            None => header.to_owned(),
        };
        let actual_headers: Vec<String> = actual_head.map(name_lowered).collect();
        for header in &shown_lines[1..blank] {
            assert!(
                actual_headers.contains(&name_lowered(header)),
                "`{command}`: no header `{header}` among {actual_headers:#?}"
            );
        }
        assert_answer(&shown_lines[blank + 1..], actual_body, command, keys);
        return;
    }
    let shown = unwrap_lines(&shown_lines);
    let generates = command.contains("/generate");
    let special = Regex::new(concat!(
        r"(?P<gap>…)",
        r#"|"(?P<time>created|updated|received|burned)":(?P<time_value>\d+)"#,
        r#"|"(?P<ttl>secret_ttl|metadata_ttl|receipt_ttl)":(?P<ttl_value>\d+)"#,
        r#"|"error_id":"(?P<error_id>[^"]*)""#,
        r#"|"value":"(?P<value>[^"]*)""#,
        r#"|"secret_shortkey":"(?P<short>[^"]*)""#,
        r"|\b(?P<key>[0-9a-z]{31}|SECRET_KEY|METADATA_KEY)\b",
    ))
    .expect("regex");
    let mut pattern = String::from("^");
    let mut checks = Vec::new();
    let mut last = 0;
    for found in special.captures_iter(&shown) {
        let whole = found.get(0).expect("the match");
        pattern.push_str(&regex::escape(&shown[last..whole.start()]));
        last = whole.end();
        if found.name("gap").is_some() {
            // Any fields, but within one object: a gap never spans from one receipt to the next.
            pattern.push_str("[^{}]*?");
        } else if let (Some(field), Some(value)) = (found.name("time"), found.name("time_value")) {
            assert_eq!(value.len(), 10, "a Unix time in seconds in `{shown}`");
            pattern.push_str(&regex::escape(&format!("\"{}\":", field.as_str())));
            pattern.push_str(r"\d{10}");
        } else if let (Some(field), Some(value)) = (found.name("ttl"), found.name("ttl_value")) {
            pattern.push_str(&regex::escape(&format!("\"{}\":", field.as_str())));
            pattern.push_str(r"(\d+)");
            checks.push(Check::Countdown(value.as_str().parse().expect("a number")));
        } else if let Some(error_id) = found.name("error_id") {
            let hex = error_id.as_str();
            assert!(
                hex.len() == 32
                    && hex
                        .bytes()
                        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')),
                "an error_id is 32 hex digits, in `{shown}`"
            );
            pattern.push_str(r#""error_id":"[0-9a-f]{32}""#);
        } else if let Some(value) = found.name("value") {
            if generates {
                let length = value.as_str().chars().count();
                let shape = format!("^{PASSWORD_CLASS}{{{length}}}$");
                assert!(
                    Regex::new(&shape).expect("regex").is_match(value.as_str()),
                    "the password shown in `{shown}` is not one burnbox generates"
                );
                pattern.push_str(&format!(r#""value":"{PASSWORD_CLASS}{{{length}}}""#));
            } else {
                pattern.push_str(&regex::escape(whole.as_str()));
            }
        } else if let Some(short) = found.name("short") {
            pattern.push_str(r#""secret_shortkey":"([0-9a-z]{8})""#);
            checks.push(Check::ShortKey(short.as_str().to_owned()));
        } else if let Some(key) = found.name("key") {
            pattern.push_str("([0-9a-z]{31})");
            checks.push(Check::Key(key.as_str().to_owned()));
        }
    }
    pattern.push_str(&regex::escape(&shown[last..]));
    pattern.push('$');
    let matcher = Regex::new(&pattern).expect("the shown answer's pattern");
    let Some(captures) = matcher.captures(actual) else {
        panic!("`{command}` answered\n{actual}\nwhich is not what the docs show:\n{shown}");
    };
    for (check, captured) in checks.iter().zip(captures.iter().skip(1)) {
        let captured = captured.expect("every group takes part").as_str();
        match check {
            Check::Key(shown_key) => keys.bind(shown_key, captured),
            Check::Countdown(shown_ttl) => {
                let ttl: i64 = captured.parse().expect("a number");
                assert!(
                    (ttl - shown_ttl).abs() <= 60,
                    "`{command}`: a ttl of {ttl} where the docs show {shown_ttl}"
                );
            }
            Check::ShortKey(short) => {
                let (_, key) = keys
                    .actual
                    .iter()
                    .find(|(shown_key, _)| shown_key.starts_with(short.as_str()))
                    .unwrap_or_else(|| panic!("the short key {short} is of no key shown before"));
                assert!(
                    key.starts_with(captured),
                    "`{command}`: short key {captured} is not the start of {key}"
                );
            }
        }
    }
}

/// A command's text with the README's address replaced by the server's.
fn at_server(text: &str, port: u16) -> String {
    text.replace("localhost:8080", &format!("localhost:{port}"))
}

/// The shell commands of a `sh` block (a trailing `\` continues a command on the next line),
/// each with the comment lines that follow it (`# ` taken off): the answer shown for it.
fn sh_commands(block: &Block) -> Vec<(String, Vec<String>)> {
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    let mut continuing = false;
    for line in &block.lines {
        if let Some(comment) = line.strip_prefix('#') {
            let (_, shown) = commands
                .last_mut()
                .unwrap_or_else(|| panic!("a comment before any command in {}", block.heading));
            shown.push(comment.strip_prefix(' ').unwrap_or(comment).to_owned());
        } else if continuing {
            let (command, _) = commands.last_mut().expect("a command to continue");
            command.push('\n');
            command.push_str(line);
        } else if !line.trim().is_empty() {
            commands.push((line.clone(), Vec::new()));
        }
        continuing = line.ends_with('\\');
    }
    commands
}

/// The commands of a `console` block (`$ ` lines), each with the lines after it up to the next
/// command, blank lines at the end taken off: the output shown.
fn console_commands(block: &Block) -> Vec<(String, Vec<String>)> {
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for line in &block.lines {
        if let Some(command) = line.strip_prefix("$ ") {
            commands.push((command.to_owned(), Vec::new()));
        } else {
            let (_, shown) = commands
                .last_mut()
                .unwrap_or_else(|| panic!("output before any command in {}", block.heading));
            shown.push(line.clone());
        }
    }
    for (_, shown) in &mut commands {
        while shown.last().is_some_and(|line| line.trim().is_empty()) {
            shown.pop();
        }
    }
    commands
}

/// Whether `command` only sets shell variables (`B=…; A='…'`).
fn only_sets_variables(command: &str) -> bool {
    let assignment =
        Regex::new(r"^\s*[A-Za-z_][A-Za-z0-9_]*=(\S+|'[^']*'|\S*$)\s*$").expect("regex");
    command.split(';').all(|part| assignment.is_match(part))
}

/// The status and JSON body of `command` run with `curl -w` reporting the status after the body.
async fn status_and_json(dir: &Path, prelude: &str, command: &str) -> (u16, serde_json::Value) {
    let output = sh(dir, format!("{prelude}\n{command} -w '\\n%{{http_code}}'")).await;
    let (body, status) = output
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("`{command}` gave no status: {output}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|err| panic!("`{command}` answered no JSON ({err}): {body}"));
    (status.parse().expect("an HTTP status"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_and_reveal_runs_as_written() {
    require_curl();
    let block = block(SHARE_AND_REVEAL);
    let commands = sh_commands(&block);
    assert_eq!(commands.len(), 2, "a share and a reveal");
    let server = default_server(None).await;
    let port = http_port(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut keys = Keys::default();
    for (command, shown) in &commands {
        assert!(!shown.is_empty(), "the docs show what `{command}` answers");
        let command = keys.substitute(&at_server(command, port));
        let output = sh(dir.path(), command.clone()).await;
        let shown = at_server(&shown.join("\n"), port);
        let shown: Vec<&str> = shown.lines().collect();
        assert_answer(&shown, &output, &command, &mut keys);
    }
    // "The second reveal of the same key is a 404 `Unknown secret`."
    let reveal = keys.substitute(&at_server(&commands[1].0, port));
    let (status, body) = status_and_json(dir.path(), "", &reveal).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["message"], "Unknown secret", "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_as_written() {
    require_curl();
    let block = block(SESSION);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server: Option<TestServer> = None;
    let mut prelude = String::new();
    let mut keys = Keys::default();
    let mut ran = 0;
    let tokens_file = Regex::new(r"\bBURNBOX_API_TOKENS_FILE=(\S+)").expect("regex");
    for (command, shown) in console_commands(&block) {
        if command.contains("cargo run") {
            // Not run: starting the binary is what crates/server/tests/binary.rs covers. The
            // server here has the same default configuration and the tokens file it names.
            let tokens = tokens_file
                .captures(&command)
                .unwrap_or_else(|| panic!("`{command}` names the tokens file"));
            assert_eq!(
                command.matches("BURNBOX_").count(),
                1,
                "`{command}` sets nothing but the tokens file: the server here has the defaults"
            );
            assert!(shown.is_empty(), "`{command}` is shown without output");
            server = Some(default_server(Some(dir.path().join(&tokens[1]))).await);
            continue;
        }
        let port = server.as_ref().map_or(8080, http_port);
        let command = keys.substitute(&at_server(&command, port));
        if only_sets_variables(&command) {
            assert!(shown.is_empty(), "`{command}` is shown without output");
            prelude.push_str(&command);
            prelude.push('\n');
            continue;
        }
        let output = sh(dir.path(), format!("{prelude}{command}")).await;
        let shown = at_server(&shown.join("\n"), port);
        let shown: Vec<&str> = shown.lines().collect();
        if shown.is_empty() {
            assert_eq!(output, "", "`{command}` is shown without output");
        } else {
            assert!(
                server.is_some(),
                "`{command}` runs before the server is started"
            );
            assert_answer(&shown, &output, &command, &mut keys);
            ran += 1;
        }
    }
    assert!(ran >= 10, "the session's requests ran ({ran})");
    server
        .expect("the session starts a server")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passphrase_example_runs_as_written() {
    require_curl();
    // It follows the session: `$B` is set there.
    let session = block(SESSION);
    let server = default_server(None).await;
    let port = http_port(&server);
    let prelude: String = console_commands(&session)
        .iter()
        .map(|(command, _)| at_server(command, port))
        .filter(|command| only_sets_variables(command))
        .map(|command| command + "\n")
        .collect();
    let commands = sh_commands(&block(PASSPHRASE));
    let [share, reveal, burn] = commands.as_slice() else {
        panic!("a share, a reveal and a burn: {commands:?}");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let shared = async || {
        let (status, receipt) = status_and_json(dir.path(), &prelude, &share.0).await;
        assert_eq!(status, 200, "{receipt}");
        assert_eq!(receipt["passphrase_required"], true, "{receipt}");
        assert_eq!(receipt["ttl"], 600, "{receipt}");
        let mut keys = Keys::default();
        keys.bind(
            "SECRET_KEY",
            receipt["secret_key"].as_str().expect("secret_key"),
        );
        keys.bind(
            "METADATA_KEY",
            receipt["metadata_key"].as_str().expect("metadata_key"),
        );
        keys
    };

    // Revealed with its passphrase; a burn after the reveal is the 404 the docs say.
    let revealed_keys = shared().await;
    let (status, revealed) =
        status_and_json(dir.path(), &prelude, &revealed_keys.substitute(&reveal.0)).await;
    assert_eq!(
        (status, &revealed["value"]),
        (200, &"s3cr3t".into()),
        "{revealed}"
    );
    let (status, too_late) =
        status_and_json(dir.path(), &prelude, &revealed_keys.substitute(&burn.0)).await;
    assert_eq!(
        (status, &too_late["message"]),
        (404, &"Unknown secret".into()),
        "{too_late}"
    );
    // Burned unread instead, with its passphrase; then nothing reveals it.
    let burned_keys = shared().await;
    let (status, burned) =
        status_and_json(dir.path(), &prelude, &burned_keys.substitute(&burn.0)).await;
    assert_eq!(status, 200, "{burned}");
    assert_eq!(burned["state"]["state"], "burned", "{burned}");
    let (status, gone) =
        status_and_json(dir.path(), &prelude, &burned_keys.substitute(&reveal.0)).await;
    assert_eq!(
        (status, &gone["message"]),
        (404, &"Unknown secret".into()),
        "{gone}"
    );
    server.shutdown().await;
}

/// The message and service descriptors the server serves by reflection, as grpcurl would read
/// them.
async fn served_descriptors(server: &TestServer) -> Vec<prost_types::FileDescriptorProto> {
    use prost::Message;
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1;

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "burnbox.v1.Secrets".into(),
            ),
        ),
    };
    let mut answers =
        v1::server_reflection_client::ServerReflectionClient::new(server.grpc_channel().await)
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect("reflection")
            .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        answer.message_response
    else {
        panic!("unexpected reflection answer {answer:?}");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file"))
        .collect()
}

// grpcurl is not packaged for Debian (nor a Rust crate), so the block is not run: it is checked
// against what the server serves by reflection, which is all grpcurl itself knows of the API.
// Every method it calls must be one of `burnbox.v1.Secrets`, and every `-d` field one of that
// method's request message, with a JSON value of the field's kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpcurl_examples_name_served_methods_and_fields() {
    use prost_types::field_descriptor_proto::Type;

    let server = default_server(None).await;
    let files = served_descriptors(&server).await;
    server.shutdown().await;
    let service = files
        .iter()
        .filter(|file| file.package() == "burnbox.v1")
        .flat_map(|file| &file.service)
        .find(|service| service.name() == "Secrets")
        .expect("burnbox.v1.Secrets is served");
    let message = |full_name: &str| {
        files
            .iter()
            .flat_map(|file| {
                file.message_type.iter().map(move |message| {
                    (format!(".{}.{}", file.package(), message.name()), message)
                })
            })
            .find(|(name, _)| name == full_name)
            .map(|(_, message)| message.clone())
            .unwrap_or_else(|| panic!("{full_name} is served"))
    };
    let call = Regex::new(r"\bburnbox\.v1\.Secrets/(\w+)").expect("regex");
    let data = Regex::new(r"-d '([^']*)'").expect("regex");
    let mut called = 0;
    for line in &block(GRPCURL).lines {
        let Some(method_name) = call.captures(line) else {
            continue;
        };
        called += 1;
        assert!(
            line.contains("localhost:50051"),
            "`{line}` goes to the default gRPC port"
        );
        let method = service
            .method
            .iter()
            .find(|method| method.name() == &method_name[1])
            .unwrap_or_else(|| panic!("`{line}` calls a method burnbox.v1.Secrets does not have"));
        let request = message(method.input_type());
        let Some(body) = data.captures(line) else {
            continue;
        };
        let body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body[1]).unwrap_or_else(|err| panic!("`{line}`: {err}"));
        for (name, value) in &body {
            // grpcurl takes a field by its proto name or its JSON (lowerCamelCase) name.
            let field = request
                .field
                .iter()
                .find(|field| field.name() == name || field.json_name() == name)
                .unwrap_or_else(|| panic!("`{line}`: {} has no field {name}", request.name()));
            let kind = field.r#type();
            let fits = if kind == Type::String {
                value.is_string()
            } else if kind == Type::Uint32
                || kind == Type::Uint64
                || kind == Type::Int32
                || kind == Type::Int64
            {
                value.is_u64()
            } else if kind == Type::Bool {
                value.is_boolean()
            } else {
                false
            };
            assert!(fits, "`{line}`: {name} is a {kind:?}, not {value}");
        }
    }
    assert!(called >= 8, "the block calls the methods ({called})");
}
