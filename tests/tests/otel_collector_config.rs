//! The example OpenTelemetry Collector config (`k8s/otel-collector.yaml`) is valid YAML whose
//! pipelines hold together: traces and metrics are received over OTLP on the ports burnbox sends
//! to, every component a pipeline names is configured and every configured one is used, and the
//! memory limiter comes first.

use serde_yaml::Value;

const CONFIG: &str = include_str!("../../k8s/otel-collector.yaml");
const NETWORK_POLICY: &str = include_str!("../../k8s/base/networkpolicy.yaml");
const PRODUCTION: &str = include_str!("../../k8s/overlays/production/kustomization.yaml");

fn config() -> Value {
    serde_yaml::from_str(CONFIG).expect("k8s/otel-collector.yaml is YAML")
}

/// The names in the list at `value` (a pipeline's receivers, processors or exporters).
fn names(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|list| {
            list.iter()
                .map(|name| name.as_str().expect("a component name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The names configured in the top-level `section`.
fn configured(config: &Value, section: &str) -> Vec<String> {
    config[section]
        .as_mapping()
        .map(|components| {
            components
                .keys()
                .map(|name| name.as_str().expect("a component name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The port of a `host:port` endpoint.
fn port(endpoint: &Value) -> u16 {
    endpoint
        .as_str()
        .and_then(|endpoint| endpoint.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint:?}"))
}

#[test]
fn pipelines_use_exactly_the_configured_components() {
    let config = config();
    let pipelines = config["service"]["pipelines"]
        .as_mapping()
        .expect("service.pipelines");
    let pipeline_names: Vec<&str> = pipelines.keys().filter_map(Value::as_str).collect();
    assert!(
        pipeline_names.contains(&"traces") && pipeline_names.contains(&"metrics"),
        "{pipeline_names:?}"
    );
    for section in ["receivers", "processors", "exporters"] {
        let defined = configured(&config, section);
        let mut used = Vec::new();
        for (name, pipeline) in pipelines {
            let listed = names(&pipeline[section]);
            assert!(
                section == "processors" || !listed.is_empty(),
                "{name:?} has no {section}"
            );
            for component in &listed {
                assert!(
                    defined.contains(component),
                    "{name:?} names {component}, which {section} does not configure"
                );
            }
            used.extend(listed);
        }
        for component in defined {
            assert!(used.contains(&component), "{section}.{component} is unused");
        }
    }
    for (name, pipeline) in pipelines {
        assert!(
            names(&pipeline["receivers"]).contains(&"otlp".to_owned()),
            "{name:?} does not receive OTLP"
        );
        assert_eq!(
            names(&pipeline["processors"]).first().map(String::as_str),
            Some("memory_limiter"),
            "{name:?}"
        );
    }
    let extensions = configured(&config, "extensions");
    for extension in names(&config["service"]["extensions"]) {
        assert!(
            extensions.contains(&extension),
            "{extension} is not configured"
        );
    }
}

#[test]
fn otlp_is_received_on_the_ports_burnbox_sends_to() {
    let config = config();
    let protocols = &config["receivers"]["otlp"]["protocols"];
    let grpc = port(&protocols["grpc"]["endpoint"]);
    let http = port(&protocols["http"]["endpoint"]);
    assert_eq!((grpc, http), (4317, 4318));
    // The NetworkPolicy lets burnbox out to both.
    for allowed in [grpc, http] {
        assert!(
            NETWORK_POLICY.contains(&format!("port: {allowed}")),
            "the NetworkPolicy does not allow port {allowed}"
        );
    }
    // The production overlay sends to one of them.
    let endpoint = PRODUCTION
        .lines()
        .find_map(|line| line.trim().strip_prefix("- OTEL_EXPORTER_OTLP_ENDPOINT="))
        .expect("the production overlay sets OTEL_EXPORTER_OTLP_ENDPOINT");
    let sent_to = port(&Value::String(endpoint.to_owned()));
    assert!([grpc, http].contains(&sent_to), "{endpoint}");
}
