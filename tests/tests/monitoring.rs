//! The monitoring kit in `k8s/monitoring/` held to the real thing: the alert rules pass
//! `promtool check rules` and their own `promtool test rules` cases (each alert fired by one and
//! quiet in another), the PrometheusRule carries the plain file's groups, every metric a rule or
//! a dashboard query names is served by a live burnbox's `/metrics`, and a real `prometheus`
//! scraping that burnbox loads every rule healthy and answers every dashboard query with series.
//!
//! promtool and prometheus come from Debian's `prometheus` package; a missing one fails the test
//! with the install command, it is never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use burnbox_tests::{
    Backend, TestPrometheus, TestServer, eventually, grpc_share_request, require_tool, rest_reveal,
    rest_share,
};
use reqwest::StatusCode;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// Grafana's variables as the live check fills them in: `$__rate_interval` is at least four
/// scrape intervals (here 1 s), `$__range` the dashboard's time range.
const VARIABLES: [(&str, &str); 2] = [("$__rate_interval", "5s"), ("$__range", "1h")];

/// How long a freshly started Prometheus may take to scrape, evaluate or answer: a bound that
/// only turns a hang into a failure.
const PROMETHEUS_BOUND: Duration = Duration::from_secs(60);

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/monitoring")
}

fn read(name: &str) -> String {
    let path = monitoring_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn yaml(name: &str) -> Yaml {
    serde_yaml::from_str(&read(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn dashboard() -> Json {
    serde_json::from_str(&read("grafana-dashboard.json"))
        .unwrap_or_else(|err| panic!("grafana-dashboard.json: {err}"))
}

/// Every alerting rule of the plain rules file: (group, alert name, rule).
fn alerts() -> Vec<(String, String, Yaml)> {
    let rules = yaml("burnbox-rules.yaml");
    let mut alerts = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        let group_name = group["name"].as_str().expect("group name");
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("only alerting rules");
            alerts.push((group_name.to_owned(), name.to_owned(), rule.clone()));
        }
    }
    alerts
}

/// Every panel of the dashboard that has queries (rows' nested panels included), with its
/// queries' `expr`s.
fn dashboard_queries(dashboard: &Json) -> Vec<(String, Vec<Json>)> {
    fn walk(panels: &Json, found: &mut Vec<(String, Vec<Json>)>) {
        for panel in panels.as_array().into_iter().flatten() {
            walk(&panel["panels"], found);
            if panel["type"] != "row" {
                let title = panel["title"].as_str().expect("panel title").to_owned();
                let targets = panel["targets"].as_array().cloned().unwrap_or_default();
                found.push((title, targets));
            }
        }
    }
    let mut found = Vec::new();
    walk(&dashboard["panels"], &mut found);
    found
}

/// Every PromQL expression of the rules and the dashboard, with where it comes from.
fn all_expressions() -> Vec<(String, String)> {
    let mut expressions: Vec<(String, String)> = alerts()
        .into_iter()
        .map(|(_, name, rule)| {
            let expr = rule["expr"].as_str().expect("expr").to_owned();
            (format!("alert {name}"), expr)
        })
        .collect();
    for (title, targets) in dashboard_queries(&dashboard()) {
        for target in targets {
            let expr = target["expr"].as_str().expect("expr").to_owned();
            expressions.push((format!("panel {title:?}"), expr));
        }
    }
    expressions
}

/// The metric names starting with `burnbox_` in a PromQL expression: identifiers outside
/// string literals (label values are never names).
fn burnbox_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            // Backquoted strings have no escapes; the others do.
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c != '`' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = start + c.len_utf8();
            while let Some(&(at, d)) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_' || d == ':') {
                    break;
                }
                end = at + d.len_utf8();
                chars.next();
            }
            let word = &expr[start..end];
            if word.starts_with("burnbox_") {
                names.insert(word.to_owned());
            }
        }
    }
    names
}

/// A scrape of `/metrics`: the families declared by `# TYPE` lines and the names of the
/// samples.
struct Scrape {
    families: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut families = BTreeMap::new();
        let mut samples = BTreeSet::new();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let mut words = declaration.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    families.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_owned());
            }
        }
        Self { families, samples }
    }

    /// The family a sample name belongs to: itself, or a histogram's (`_bucket`, `_sum`,
    /// `_count`), a summary's (`_sum`, `_count`) or an OpenMetrics counter's (`_total`) once the
    /// suffix is taken off; a suffix is only taken off when the family is of that type.
    fn family_of(&self, name: &str) -> Option<&str> {
        if let Some((family, _)) = self.families.get_key_value(name) {
            return Some(family);
        }
        let suffixes: [(&str, &[&str]); 4] = [
            ("_bucket", &["histogram"]),
            ("_sum", &["histogram", "summary"]),
            ("_count", &["histogram", "summary"]),
            ("_total", &["counter"]),
        ];
        suffixes.iter().find_map(|(suffix, kinds)| {
            let base = name.strip_suffix(suffix)?;
            let (family, kind) = self.families.get_key_value(base)?;
            kinds.contains(&kind.as_str()).then_some(family.as_str())
        })
    }

    /// Whether `name` is served: a family declares it and samples of that name are there.
    fn serves(&self, name: &str) -> bool {
        self.family_of(name).is_some() && self.samples.contains(name)
    }
}

fn run(tool: &str, args: &[&str]) -> String {
    require_tool(tool);
    let output = Command::new(tool)
        .args(args)
        .current_dir(monitoring_dir())
        .output()
        .unwrap_or_else(|err| panic!("{tool} runs: {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{text}",
        args.join(" "),
        output.status
    );
    text
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let checked = run("promtool", &["check", "rules", "burnbox-rules.yaml"]);
    let count = alerts().len();
    assert!(
        checked.contains(&format!("SUCCESS: {count} rules found")),
        "{checked}"
    );
    let tested = run("promtool", &["test", "rules", "burnbox-rules.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// One source of truth: the PrometheusRule's `spec.groups` are the plain file's `groups`.
#[test]
fn prometheus_rule_carries_the_plain_files_groups() {
    let plain = yaml("burnbox-rules.yaml");
    let operator = yaml("prometheus-rule.yaml");
    assert_eq!(operator["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(operator["kind"], "PrometheusRule");
    assert!(operator["metadata"]["name"].is_string());
    assert!(plain["groups"].is_sequence());
    assert_eq!(
        operator["spec"]["groups"], plain["groups"],
        "prometheus-rule.yaml's spec.groups differ from burnbox-rules.yaml's groups"
    );
}

/// Each alert has a unit test that fires it and one where it stays quiet, its annotations,
/// and a runbook line in the README under the anchor its `runbook_url` names.
#[test]
fn every_alert_is_tested_both_ways_and_has_a_runbook_line() {
    let readme = include_str!("../../README.md");
    let tests = yaml("burnbox-rules.test.yaml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_sequence().expect("tests") {
        for case in group["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_owned();
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                firing.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    let names: BTreeSet<String> = alerts().into_iter().map(|(_, name, _)| name).collect();
    let mut problems = Vec::new();
    for (_, name, rule) in alerts() {
        if !firing.contains(&name) {
            problems.push(format!("{name}: no unit test fires it"));
        }
        if !quiet.contains(&name) {
            problems.push(format!("{name}: no unit test shows it quiet"));
        }
        for annotation in ["summary", "description", "runbook_url"] {
            if rule["annotations"][annotation]
                .as_str()
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{name}: no {annotation}"));
            }
        }
        let anchor = format!("runbook-{}", name.to_lowercase());
        if rule["annotations"]["runbook_url"].as_str() != Some(&format!("README.md#{anchor}")) {
            problems.push(format!("{name}: runbook_url is not README.md#{anchor}"));
        }
        if !readme.contains(&format!("<a id=\"{anchor}\"></a>**{name}**")) {
            problems.push(format!("{name}: no runbook line in README.md (#{anchor})"));
        }
        if rule["labels"]["severity"].as_str().is_none() {
            problems.push(format!("{name}: no severity label"));
        }
    }
    for name in firing.union(&quiet) {
        if !names.contains(name) {
            problems.push(format!("the unit tests test {name}, which no rule defines"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The dashboard parses, picks its Prometheus through a datasource variable, shows exemplars on
/// every latency panel, and uses no variable the live check would not know.
#[test]
fn dashboard_is_well_formed() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    let panels = dashboard_queries(&dashboard);
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut problems = Vec::new();
    for (title, targets) in &panels {
        if targets.is_empty() {
            problems.push(format!("{title}: no query"));
        }
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            if target["datasource"]["uid"] != "${datasource}" {
                problems.push(format!("{title}: a query not on ${{datasource}}"));
            }
            if expr.contains("_bucket") && target["exemplar"] != true {
                problems.push(format!("{title}: a latency query without exemplars"));
            }
            let mut rest = expr.to_owned();
            for (variable, _) in VARIABLES {
                rest = rest.replace(variable, "");
            }
            if rest.contains('$') {
                problems.push(format!("{title}: an unknown variable in {expr}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_tokenizer_finds_names_and_histogram_families() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(burnbox_a_seconds_bucket{x="burnbox_not_a_name"}[$__rate_interval]))) / burnbox_b_total"#;
    let names: Vec<String> = burnbox_names(expr).into_iter().collect();
    assert_eq!(names, ["burnbox_a_seconds_bucket", "burnbox_b_total"]);
    let scrape = Scrape::parse(
        "# TYPE burnbox_a_seconds histogram\nburnbox_a_seconds_bucket{le=\"+Inf\"} 1\n\
         burnbox_a_seconds_count 1\n# TYPE burnbox_b_count counter\nburnbox_b_count 2\n",
    );
    assert_eq!(
        scrape.family_of("burnbox_a_seconds_bucket"),
        Some("burnbox_a_seconds")
    );
    assert_eq!(scrape.family_of("burnbox_b_count"), Some("burnbox_b_count"));
    assert_eq!(scrape.family_of("burnbox_b"), None);
    assert!(scrape.serves("burnbox_a_seconds_count"));
    assert!(!scrape.serves("burnbox_a_seconds_sum"), "no such samples");
}

/// Requests that make every metric family appear: shares and reveals on both transports, an
/// unknown key (404), a wrong passphrase (422), reveals past the rate limit (429), and shares
/// until the 1 MiB memory store is full (503).
async fn make_traffic(server: &TestServer) {
    let (status, shared) = rest_share(server, &[("secret", "watched")]).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let key = shared["secret_key"].as_str().expect("key");
    assert_eq!(rest_reveal(server, key, None).await.0, StatusCode::OK);
    let (status, guarded) =
        rest_share(server, &[("secret", "guarded"), ("passphrase", "right")]).await;
    assert_eq!(status, StatusCode::OK, "{guarded}");
    let guarded = guarded["secret_key"].as_str().expect("key");
    assert_eq!(
        rest_reveal(server, guarded, Some("wrong")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    server
        .grpc()
        .await
        .share_secret(grpc_share_request("over gRPC"))
        .await
        .expect("gRPC share");
    let mut refused = false;
    for _ in 0..20 {
        let status = rest_reveal(server, "nosuchkey", None).await.0;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert!(refused, "no reveal was rate limited");
    assert_eq!(fill_store(server).await, StatusCode::SERVICE_UNAVAILABLE);
}

/// Shares 64 KiB secrets until one is refused; the refusal's status.
async fn fill_store(server: &TestServer) -> StatusCode {
    let value = "s".repeat(64 * 1024);
    for _ in 0..64 {
        let (status, _) = rest_share(server, &[("secret", &value)]).await;
        if status != StatusCode::OK {
            return status;
        }
    }
    panic!("64 secrets of 64 KiB fit in a 1 MiB store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_loads_the_rules_and_answers_the_dashboard() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.memory_store_mib = 1;
        config.rate_limit_reveal = 5;
    })
    .await;
    make_traffic(&server).await;

    // Every name a rule or a panel uses is served.
    let scrape = Scrape::parse(&server.metrics_text().await);
    let mut missing = Vec::new();
    for (origin, expr) in all_expressions() {
        for name in burnbox_names(&expr) {
            if scrape.serves(&name) {
                continue;
            }
            missing.push(format!("{origin}: {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in /metrics:\n{}\nserved families: {:?}",
        missing.join("\n"),
        scrape.families.keys().collect::<Vec<_>>()
    );

    let target = server
        .admin_base
        .strip_prefix("http://")
        .expect("admin base URL");
    let rules = monitoring_dir().join("burnbox-rules.yaml");
    let prometheus = TestPrometheus::start(target, &[&rules]);
    let prometheus = &prometheus;

    eventually(PROMETHEUS_BOUND, "the burnbox target up", || async move {
        let targets = prometheus.api("targets").await?;
        let active = targets["activeTargets"].as_array()?;
        active
            .iter()
            .any(|t| {
                t["health"] == "up"
                    && t["scrapeUrl"]
                        .as_str()
                        .is_some_and(|url| url.contains(target))
            })
            .then_some(())
    })
    .await;

    // Every rule loaded, in its group, and evaluated without error.
    let groups = eventually(PROMETHEUS_BOUND, "every rule evaluated", || async move {
        let data = prometheus.api("rules?type=alert").await?;
        let groups = data["groups"].as_array()?.clone();
        let evaluated = groups
            .iter()
            .flat_map(|group| group["rules"].as_array().into_iter().flatten())
            .all(|rule| rule["health"] != "unknown");
        (evaluated && !groups.is_empty()).then_some(groups)
    })
    .await;
    let mut loaded = BTreeSet::new();
    for group in &groups {
        for rule in group["rules"].as_array().expect("rules") {
            assert_eq!(rule["health"], "ok", "{rule}");
            assert!(
                rule["lastError"].as_str().is_none_or(str::is_empty),
                "{rule}"
            );
            let name = rule["name"].as_str().expect("name");
            loaded.insert((
                group["name"].as_str().expect("group").to_owned(),
                name.to_owned(),
            ));
        }
    }
    let expected: BTreeSet<(String, String)> = alerts()
        .into_iter()
        .map(|(group, name, _)| (group, name))
        .collect();
    assert_eq!(loaded, expected);

    // Every panel's query returns series (a rate needs two scrapes: waited for).
    for (title, targets) in dashboard_queries(&dashboard()) {
        for target in targets {
            let mut expr = target["expr"].as_str().expect("expr").to_owned();
            for (variable, value) in VARIABLES {
                expr = expr.replace(variable, value);
            }
            let expr = &expr;
            eventually(
                PROMETHEUS_BOUND,
                &format!("series for panel {title:?}: {expr}"),
                || async move { Some(prometheus.query(expr).await).filter(|r| !r.is_empty()) },
            )
            .await;
        }
    }

    // A rule over burnbox's real samples: a share refused as full while Prometheus watches
    // makes BurnboxStoreFull pending (it fires after its `for`).
    assert_eq!(fill_store(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    eventually(
        PROMETHEUS_BOUND,
        "BurnboxStoreFull pending",
        || async move {
            let alerts = prometheus.api("alerts").await?;
            alerts["alerts"]
                .as_array()?
                .iter()
                .any(|alert| alert["labels"]["alertname"] == "BurnboxStoreFull")
                .then_some(())
        },
    )
    .await;
    server.shutdown().await;
}
