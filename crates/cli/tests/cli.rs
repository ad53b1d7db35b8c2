//! The built `burnbox-cli` binary run as a user would (a pipe in, stdout and the exit code
//! out) against the real server from the test harness, on the memory store and on Redis.

use std::path::Path;
use std::process::Stdio;

use burnbox_tests::{
    ALICE, Backend, TestServer, on_both_stores, rest_get, rest_reveal, rest_share, text_field,
};
use tokio::io::AsyncWriteExt;

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Asserts success, and returns stdout.
    fn ok(&self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.stdout_text()
    }

    /// Asserts a failure with `code`: nothing on stdout, one line on stderr.
    fn failed(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {:?}", self.stdout_text());
        assert_eq!(self.stderr.lines().count(), 1, "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("burnbox-cli: "), "{}", self.stderr);
        &self.stderr
    }
}

/// Runs the binary with `args`, `stdin` piped in, the environment's BURNBOX_* variables
/// replaced by `env`, and a config directory of its own (empty unless a test writes to it).
async fn cli_in(config_home: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_burnbox-cli"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "BURNBOX_URL",
        "BURNBOX_CUSTID",
        "BURNBOX_TOKEN",
        "BURNBOX_CONFIG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the built burnbox-cli runs");
    let mut input = child.stdin.take().expect("stdin");
    // A run that fails before reading its input (a usage error) closes the pipe: not a failure
    // of the test, whose assertions are on the exit code and the output.
    let _ = input.write_all(stdin).await;
    drop(input);
    let output = child.wait_with_output().await.expect("burnbox-cli ends");
    Run {
        code: output.status.code().expect("an exit code, not a signal"),
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// [`cli_in`] with a fresh, empty config directory.
async fn cli(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().expect("temp dir");
    cli_in(home.path(), args, stdin, env).await
}

/// The one line `share` printed.
fn the_link(run: &Run) -> String {
    let out = run.ok();
    assert!(out.ends_with('\n'), "{out:?}");
    let link = out.trim_end_matches('\n');
    assert!(!link.contains('\n'), "one line: {out:?}");
    link.to_owned()
}

/// The secret key of a link.
fn key_of(link: &str) -> String {
    let after = link.split("/secret/").nth(1).expect("a secret link");
    after.split('#').next().expect("key").to_owned()
}

async fn pipe_share_reveal_then_gone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.http_base.as_str();
    // A trailing newline and no trailing newline both come back byte for byte.
    for secret in [
        "the launch codes\n",
        "no newline at the end",
        "two\nlines ünïcødé\n\n",
    ] {
        let link = the_link(&cli(&["share", "--url", url], secret.as_bytes(), &[]).await);
        // The server's public URL, and the key only in the fragment.
        assert!(link.starts_with("https://burnbox.test/secret/"), "{link}");
        let fragment = link.split_once('#').expect("a fragment").1;
        assert_eq!(fragment.len(), 43, "{link}");

        let revealed = cli(&["reveal", "--url", url, &link], b"", &[]).await;
        assert_eq!(revealed.ok(), secret);

        let again = cli(&["reveal", "--url", url, &link], b"", &[]).await;
        let line = again.failed(3);
        assert!(
            line.contains("NotFound") && line.contains("error_id"),
            "{line}"
        );
    }

    // The server only ever had the ciphertext, in the web page's format: it flags it end to end
    // (as for a secret shared from the page), and a plain API reveal gets `bbx1:`.
    let link = the_link(&cli(&["share", "--url", url], b"for my eyes only", &[]).await);
    let (status, body) = rest_get(&server, &format!("/secret/{}/status", key_of(&link))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["end_to_end"], true, "{body}");
    let (status, body) = rest_reveal(&server, &key_of(&link), None).await;
    assert_eq!(status, 200, "{body}");
    let value = text_field(&body, "value");
    assert!(value.starts_with("bbx1:"), "{value}");
    assert!(!value.contains("for my eyes only"));

    // From a file rather than stdin.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "from a file\n").expect("write");
    let file = file.display().to_string();
    let link = the_link(&cli(&["share", "--url", url, "--file", &file], b"", &[]).await);
    let revealed = cli(&["reveal", "--url", url, &link], b"", &[]).await;
    assert_eq!(revealed.ok(), "from a file\n");

    // Nothing to share is a usage error.
    cli(&["share", "--url", url], b"", &[]).await.failed(2);
}

async fn plain_share_ttl_and_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.http_base.as_str();
    let link = the_link(&cli(&["share", "--no-e2e", "--url", url], b"plain\n", &[]).await);
    assert!(!link.contains('#'), "{link}");
    let (status, body) = rest_reveal(&server, &key_of(&link), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(text_field(&body, "value"), "plain\n");

    let json = cli(
        &["share", "--url", url, "--ttl", "15m", "--json"],
        b"s",
        &[],
    )
    .await;
    let receipt: serde_json::Value = serde_json::from_str(&json.ok()).expect("one JSON document");
    assert_eq!(receipt["secret_ttl"], 900, "{receipt}");
    assert_eq!(receipt["state"], "new", "{receipt}");
    let link = text_field(&receipt, "link");
    assert!(
        link.contains(&text_field(&receipt, "secret_key")),
        "{receipt}"
    );
    let revealed = cli(&["reveal", "--url", url, "--json", &link], b"", &[]).await;
    let revealed: serde_json::Value = serde_json::from_str(&revealed.ok()).expect("JSON");
    assert_eq!(revealed["value"], "s");

    for bad in ["15x", "soon", "1.5h", "-5m"] {
        let run = cli(&["share", "--url", url, "--ttl", bad], b"s", &[]).await;
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

async fn passphrase_from_a_file(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.http_base.as_str();
    let dir = tempfile::tempdir().expect("temp dir");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, "correct horse\n").expect("write");
    std::fs::write(&wrong, "battery staple\n").expect("write");
    let (right, wrong) = (right.display().to_string(), wrong.display().to_string());

    let link = the_link(
        &cli(
            &["share", "--url", url, "--passphrase-file", &right],
            b"behind a passphrase",
            &[],
        )
        .await,
    );
    // The trailing newline of the file is not part of the passphrase.
    let (status, body) = rest_get(&server, &format!("/secret/{}/status", key_of(&link))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passphrase_required"], true);

    for attempt in [
        vec!["reveal", "--url", url, &link],
        vec!["reveal", "--url", url, "--passphrase-file", &wrong, &link],
    ] {
        let line = cli(&attempt, b"", &[]).await.failed(1).to_owned();
        assert!(
            line.contains("passphrase") && line.contains("error_id"),
            "{line}"
        );
    }
    let revealed = cli(
        &["reveal", "--url", url, "--passphrase-file", &right, &link],
        b"",
        &[],
    )
    .await;
    assert_eq!(revealed.ok(), "behind a passphrase");
}

async fn over_grpc(backend: Backend) {
    let server = TestServer::start(backend).await;
    let grpc = server.grpc_addr.to_string();
    let link = the_link(
        &cli(
            &["share", "--grpc", &grpc, "--ttl", "1h"],
            b"via gRPC\n",
            &[],
        )
        .await,
    );
    assert!(link.starts_with("https://burnbox.test/secret/"), "{link}");
    let (status, body) = rest_get(&server, &format!("/secret/{}/status", key_of(&link))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secret_ttl"], 3600);

    let revealed = cli(&["reveal", "--grpc", &grpc, &link], b"", &[]).await;
    assert_eq!(revealed.ok(), "via gRPC\n");
    let line = cli(&["reveal", "--grpc", &grpc, &link], b"", &[])
        .await
        .failed(3)
        .to_owned();
    assert!(
        line.contains("NotFound") && line.contains("error_id"),
        "{line}"
    );

    // The same JSON as over REST.
    let json = cli(&["share", "--grpc", &grpc, "--json"], b"s", &[]).await;
    let receipt: serde_json::Value = serde_json::from_str(&json.ok()).expect("JSON");
    assert_eq!(receipt["state"], "new");
    assert_eq!(receipt["custid"], "anon");
    let metadata_key = text_field(&receipt, "metadata_key");
    let burned = cli(
        &["burn", "--grpc", &grpc, "--json", &metadata_key],
        b"",
        &[],
    )
    .await;
    let burned: serde_json::Value = serde_json::from_str(&burned.ok()).expect("JSON");
    assert_eq!(burned["state"]["state"], "burned", "{burned}");
}

async fn credentials_tokens_and_recent(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let url = server.http_base.as_str();
    let grpc = server.grpc_addr.to_string();
    let wrong = [
        ("BURNBOX_CUSTID", ALICE.0),
        ("BURNBOX_TOKEN", "not-alices-token"),
    ];
    for args in [vec!["share", "--url", url], vec!["share", "--grpc", &grpc]] {
        let line = cli(&args, b"s", &wrong).await.failed(4).to_owned();
        assert!(line.contains("Unauthorized"), "{line}");
        assert!(!line.contains("not-alices-token"), "{line}");
    }

    let alice = [("BURNBOX_CUSTID", ALICE.0), ("BURNBOX_TOKEN", ALICE.1)];
    let mut shared = Vec::new();
    for secret in ["one", "two"] {
        let run = cli(
            &["share", "--url", url, "--json"],
            secret.as_bytes(),
            &alice,
        )
        .await;
        let receipt: serde_json::Value = serde_json::from_str(&run.ok()).expect("JSON");
        assert_eq!(receipt["custid"], ALICE.0);
        assert!(!run.stdout_text().contains(ALICE.1));
        shared.push(text_field(&receipt, "metadata_key"));
    }
    for transport in [vec!["--url", url], vec!["--grpc", &grpc]] {
        let mut args = vec!["recent", "--json"];
        args.extend(&transport);
        let run = cli(&args, b"", &alice).await;
        let recent: serde_json::Value = serde_json::from_str(&run.ok()).expect("JSON");
        let keys: Vec<String> = recent
            .as_array()
            .expect("a list")
            .iter()
            .map(|receipt| text_field(receipt, "metadata_key"))
            .collect();
        assert_eq!(keys, [shared[1].clone(), shared[0].clone()], "newest first");
        assert!(!run.stdout_text().contains(ALICE.1));
    }
    let plain = cli(&["recent", "--url", url], b"", &alice).await.ok();
    assert_eq!(plain.lines().count(), 2, "{plain}");
    assert!(
        plain
            .lines()
            .next()
            .is_some_and(|line| line.starts_with(&shared[1]))
    );
    // Without credentials: the server's 401.
    cli(&["recent", "--url", url], b"", &[]).await.failed(4);
    // Another customer's receipt: 403, the same exit code.
    let bob = [("BURNBOX_CUSTID", "bob"), ("BURNBOX_TOKEN", "bob-token-2")];
    cli(&["receipt", "--url", url, &shared[0]], b"", &bob)
        .await
        .failed(4);
}

async fn generate_receipt_and_burn(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.http_base.as_str();
    let out = cli(&["generate", "--url", url, "--length", "20"], b"", &[])
        .await
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (password, link) = (lines[0], lines[1]);
    assert_eq!(password.chars().count(), 20, "{out}");
    assert!(link.starts_with("https://burnbox.test/secret/"), "{out}");
    let revealed = cli(&["reveal", "--url", url, link], b"", &[]).await;
    assert_eq!(revealed.ok(), password);

    let json = cli(&["share", "--url", url, "--json"], b"to burn", &[]).await;
    let receipt: serde_json::Value = serde_json::from_str(&json.ok()).expect("JSON");
    let metadata_key = text_field(&receipt, "metadata_key");
    let link = text_field(&receipt, "link");
    let shown = cli(&["receipt", "--url", url, &metadata_key], b"", &[])
        .await
        .ok();
    assert!(shown.lines().any(|line| line == "state: new"), "{shown}");

    // A receipt link works as well as its key; --url says where the server is.
    let receipt_link = format!("https://burnbox.test/receipt/{metadata_key}");
    let burned = cli(&["burn", "--url", url, &receipt_link], b"", &[])
        .await
        .ok();
    assert!(
        burned.lines().any(|line| line == "state: burned"),
        "{burned}"
    );
    cli(&["reveal", "--url", url, &link], b"", &[])
        .await
        .failed(3);
    let private_link = format!("{url}/private/{metadata_key}");
    let after = cli(&["receipt", "--json", &private_link], b"", &[]).await;
    let after: serde_json::Value = serde_json::from_str(&after.ok()).expect("JSON");
    assert_eq!(after["state"], "burned");
    cli(&["burn", "--url", url, &metadata_key], b"", &[])
        .await
        .failed(3);
}

/// A secret made the web page's way (sealed client side, shared over the API, the key in the
/// fragment) is revealed by the CLI from the link alone, which also says where the server is.
async fn web_page_links_reveal(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sealed = burnbox_e2e::seal("made in the browser ✓");
    let (status, body) = rest_share(&server, &[("secret", &sealed.value)]).await;
    assert_eq!(status, 200, "{body}");
    let key = text_field(&body, "secret_key");
    let base = &server.http_base;

    // Without its fragment, the link cannot be read: refused before anything is revealed.
    let line = cli(&["reveal", &format!("{base}/secret/{key}")], b"", &[])
        .await
        .failed(1)
        .to_owned();
    assert!(line.contains("after #"), "{line}");
    let (status, _) = rest_get(&server, &format!("/secret/{key}/status")).await;
    assert_eq!(status, 200, "still there");

    let link = format!("{base}/secret/{key}#{}", sealed.key_fragment);
    let revealed = cli(&["reveal", &link], b"", &[]).await;
    assert_eq!(revealed.ok(), "made in the browser ✓");

    // The wrong key opens nothing (and says so).
    let sealed = burnbox_e2e::seal("x");
    let (_, body) = rest_share(&server, &[("secret", &sealed.value)]).await;
    let key = text_field(&body, "secret_key");
    let other = burnbox_e2e::seal("y").key_fragment;
    let line = cli(
        &["reveal", &format!("{base}/secret/{key}#{other}")],
        b"",
        &[],
    )
    .await
    .failed(1)
    .to_owned();
    assert!(line.contains("does not decrypt"), "{line}");
}

/// Settings from the config file, written by `configure` (0600), below the environment.
async fn config_file(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let home = tempfile::tempdir().expect("temp dir");
    let alice = [
        ("BURNBOX_URL", server.http_base.as_str()),
        ("BURNBOX_CUSTID", ALICE.0),
        ("BURNBOX_TOKEN", ALICE.1),
    ];
    let written = cli_in(home.path(), &["configure"], b"", &alice).await.ok();
    let path = std::path::PathBuf::from(written.trim_end());
    assert!(path.starts_with(home.path()), "{written}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Nothing in the environment now: all from the file.
    let run = cli_in(home.path(), &["share", "--json"], b"s", &[]).await;
    let receipt: serde_json::Value = serde_json::from_str(&run.ok()).expect("JSON");
    assert_eq!(receipt["custid"], ALICE.0);
    // The environment beats the file.
    cli_in(
        home.path(),
        &["share"],
        b"s",
        &[("BURNBOX_TOKEN", "not-alices-token")],
    )
    .await
    .failed(4);
}

/// Too many shares: exit 5, with the server's words and when to retry.
async fn rate_limited(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.rate_limit_create = 1).await;
    let url = server.http_base.as_str();
    // One share a minute: of a few in a row, all but the first of a minute are refused.
    let mut refused = None;
    for _ in 0..5 {
        let run = cli(&["share", "--url", url], b"s", &[]).await;
        if run.code != 0 {
            refused = Some(run);
            break;
        }
    }
    let run = refused.expect("a share was rate limited");
    let line = run.failed(5);
    assert!(
        line.contains("RateLimited") && line.contains("retry"),
        "{line}"
    );
}

on_both_stores!(
    rate_limited,
    pipe_share_reveal_then_gone,
    plain_share_ttl_and_json,
    passphrase_from_a_file,
    over_grpc,
    credentials_tokens_and_recent,
    generate_receipt_and_burn,
    web_page_links_reveal,
    config_file,
);

/// No server listening: exit 6 over either transport, saying what to check.
#[tokio::test]
async fn an_unreachable_server_is_exit_6() {
    // A port that was free a moment ago and is now closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let line = cli(&["share", "--url", &url], b"s", &[])
        .await
        .failed(6)
        .to_owned();
    assert!(line.contains("cannot reach"), "{line}");
    let address = format!("127.0.0.1:{port}");
    cli(&["reveal", "--grpc", &address, "abc"], b"", &[])
        .await
        .failed(6);
    // And with no server configured at all: usage.
    cli(&["share"], b"s", &[]).await.failed(2);
}

/// Arguments that are not links or keys are usage errors, never a panic or a request.
#[tokio::test]
async fn malformed_arguments_are_usage_errors() {
    for args in [
        vec!["reveal", "--url", "http://127.0.0.1:9", "not a key"],
        vec![
            "reveal",
            "--url",
            "http://127.0.0.1:9",
            "https://x.example/receipt/abc",
        ],
        vec!["burn", "--url", "http://127.0.0.1:9", "../../etc"],
        vec!["share", "--url", "not a url"],
        vec![
            "share",
            "--url",
            "http://127.0.0.1:9",
            "--passphrase-file",
            "/nonexistent",
        ],
        vec!["reveal"],
        vec!["frobnicate"],
        vec!["share", "--ttl"],
        vec!["share", "--passphrase-file", "a", "--passphrase-prompt"],
    ] {
        let run = cli(&args, b"s", &[]).await;
        let line = run.failed(2);
        assert!(!line.contains("panicked"), "{line}");
    }
}

/// `--help` documents the exit codes.
#[tokio::test]
async fn help_documents_the_exit_codes() {
    let help = cli(&["--help"], b"", &[]).await.ok();
    for code in [
        "0  ok",
        "2  usage",
        "3  not found",
        "4  unauthorized",
        "5  rate limited",
        "6  the server is unreachable",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}

/// The CLI stays light: none of the server's crates, poem or the Redis client in its build.
#[test]
fn no_server_dependencies() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--package",
            "burnbox-cli",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        for banned in [
            "burnbox-server",
            "burnbox-core",
            "burnbox-store",
            "poem",
            "redis",
        ] {
            assert_ne!(name, banned, "burnbox-cli depends on {banned}");
        }
    }
    assert!(tree.contains("burnbox-e2e"), "{tree}");
}

/// The CLI and the web page speak one end-to-end format: a link the CLI makes opens (and
/// decrypts) in a real browser, and a link the page makes is revealed by the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_cross_between_the_cli_and_the_web_page() {
    use burnbox_tests::browser::{Browser, start_page_server};

    let server = start_page_server(Backend::Memory, |_| {}).await;
    let url = server.http_base.as_str();
    let browser = Browser::launch().await;
    let tab = browser.tab().await;

    let from_terminal = "made in a terminal ✓\nsecond line\n";
    let link = the_link(&cli(&["share", "--url", url], from_terminal.as_bytes(), &[]).await);
    assert!(link.starts_with(&format!("{url}/secret/")), "{link}");
    tab.goto(&link).await;
    tab.wait_visible("#reveal").await;
    tab.click("#reveal").await;
    tab.wait_visible("#revealed").await;
    assert_eq!(tab.value("#secret-value").await, from_terminal);
    tab.assert_no_console_errors("the CLI's link in the page")
        .await;

    let from_page = "typed into the page";
    tab.goto(&format!("{url}/")).await;
    tab.wait_visible("#generate").await;
    tab.type_into("#secret", from_page).await;
    tab.click("#create").await;
    tab.wait_visible("#share-result").await;
    let link = tab.value("#share-link").await;
    assert_eq!(
        link.split_once('#').map(|(_, key)| key.len()),
        Some(43),
        "{link}"
    );
    let revealed = cli(&["reveal", &link], b"", &[]).await;
    assert_eq!(revealed.ok(), from_page);
    browser.close().await;
}
