//! A real Prometheus (Debian's `prometheus` package) as a child process: it scrapes a test
//! server's admin listener every second and evaluates rule files every second, and the tests ask
//! it questions through its HTTP API.

use std::path::Path;
use std::sync::Mutex;

use super::*;

/// Panics unless `tool` runs (`tool --version`), saying how to install it: the monitoring tests
/// check the real tools and are never skipped.
pub fn require_tool(tool: &str) {
    match Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`{tool} --version` failed ({status})"),
        Err(err) => panic!(
            "`{tool}` cannot be run ({err}): install it with `apt-get install prometheus` \
             (Debian's package ships both prometheus and promtool)"
        ),
    }
}

/// A running `prometheus` on a free port with its configuration and TSDB in a temporary
/// directory. Killed (and waited for) when dropped.
pub struct TestPrometheus {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Mutex<Child>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl TestPrometheus {
    /// Starts `prometheus` scraping `target` (`host:port`, path `/metrics`) as job `burnbox`,
    /// with `rule_files` loaded; scrapes and rule evaluations happen every second.
    pub fn start(target: &str, rule_files: &[&Path]) -> Self {
        require_tool("prometheus");
        let dir = tempfile::tempdir().expect("prometheus directory");
        let rules: Vec<String> = rule_files
            .iter()
            .map(|path| {
                let path = path
                    .canonicalize()
                    .unwrap_or_else(|err| panic!("rule file {}: {err}", path.display()));
                format!("  - '{}'\n", path.display())
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: burnbox\n    static_configs:\n      - targets: ['{target}']\n",
            rules.concat()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Self {
            base: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(child),
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        }
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Panics with the log if the process has exited (a bad configuration, a taken port).
    pub fn assert_running(&self) {
        let exited = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_wait()
            .expect("prometheus status");
        if let Some(status) = exited {
            panic!("prometheus exited ({status}); its log:\n{}", self.log());
        }
    }

    /// The `data` of `GET /api/v1/{path}`; `None` while Prometheus does not answer yet or is
    /// still starting. Panics on any other answer than `"status": "success"`.
    pub async fn api(&self, path: &str) -> Option<serde_json::Value> {
        self.assert_running();
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.base))
            .send()
            .await
            .ok()?;
        // Until its storage is open Prometheus answers every request 503 in plain text.
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return None;
        }
        Some(Self::data(path, response).await)
    }

    /// The result of the instant query `expr` (`POST /api/v1/query`); panics if Prometheus
    /// refuses it (a syntax error, an unknown function).
    pub async fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        self.assert_running();
        let response = self
            .http
            .post(format!("{}/api/v1/query", self.base))
            .form(&[("query", expr)])
            .send()
            .await
            .expect("prometheus answers queries");
        let data = Self::data(expr, response).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    async fn data(what: &str, response: reqwest::Response) -> serde_json::Value {
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        assert!(
            status.is_success() && body["status"] == "success",
            "prometheus refused {what}: {status} {body}"
        );
        body["data"].clone()
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}
