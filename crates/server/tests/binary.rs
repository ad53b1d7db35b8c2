//! The real `burnbox` binary: configuration errors exit 2 with one line naming the setting, and
//! SIGTERM stops a running server with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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

#[test]
fn invalid_configuration_exits_2_naming_the_setting() {
    assert_config_error(
        burnbox().env("BURNBOX_REDIS_URL", "redis://127.0.0.1:1/"),
        "BURNBOX_MASTER_KEY",
    );
    assert_config_error(
        burnbox().env("BURNBOX_MASTER_KEY", "too-short"),
        "BURNBOX_MASTER_KEY",
    );
    assert_config_error(
        burnbox().env("BURNBOX_MAX_SECRET_BYTES", "lots"),
        "BURNBOX_MAX_SECRET_BYTES",
    );
    assert_config_error(
        burnbox().env("BURNBOX_MAX_SECRET_BYTES", "0"),
        "BURNBOX_MAX_SECRET_BYTES",
    );
    assert_config_error(
        burnbox().env("BURNBOX_DEFAULT_TTL", "10"),
        "BURNBOX_DEFAULT_TTL",
    );
    assert_config_error(burnbox().env("BURNBOX_MAX_TTL", "30"), "BURNBOX_MAX_TTL");
    assert_config_error(
        burnbox().env("BURNBOX_HTTP_ADDR", "not an address"),
        "BURNBOX_HTTP_ADDR",
    );
    assert_config_error(
        burnbox().env("BURNBOX_LOG_FORMAT", "xml"),
        "BURNBOX_LOG_FORMAT",
    );
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
    let mut child = burnbox()
        .env("BURNBOX_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start burnbox");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("burnbox listening"))
        .expect("the server logs that it listens");
    assert!(listening.contains("\"http\":\"127.0.0.1:"), "{listening}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "burnbox did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}
