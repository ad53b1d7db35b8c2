#!/usr/bin/env bash
# Renders the Kubernetes manifests (k8s/base and every k8s/overlays/*) with `kubectl kustomize`
# and validates the output offline:
#   1. kubernetes-validate --strict (JSON schemas shipped in the PyPI package) against each
#      Kubernetes version in K8S_VERSIONS: unknown fields, wrong types, and kinds or API versions
#      the version does not have all fail;
#   2. cross-references inside each rendering: Service, PodDisruptionBudget, HPA and
#      NetworkPolicy targets select or name an existing workload, Service target ports exist on
#      the selected pods, referenced ConfigMaps exist (Secrets may be external: listed).
# Exits non-zero on any problem. Needs python3 and kubectl (both installed with apt-get when
# missing). Works from any directory; K8S_VERSIONS="1.33.0 ..." overrides the versions checked.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The oldest Kubernetes the manifests support (preStop sleep needs 1.30) and a recent one.
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.35.0"}
KUBERNETES_VALIDATE_VERSION=1.37.0

step() { printf '\n=== %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
if ! command -v kubectl >/dev/null 2>&1; then
  step "installing kubectl"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubectl \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubernetes-client \
    || { echo "FAIL: cannot install kubectl (tried kubectl, kubernetes-client)"; exit 1; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into a throwaway venv"
if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
  # Debian's python3 ships venv separately.
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv
  rm -rf "$work/venv"
  python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"

targets=(k8s/base)
for overlay in k8s/overlays/*/; do targets+=("${overlay%/}"); done

step "rendering with $(kubectl version --client 2>/dev/null | paste -sd ' ')"
rendered=()
for target in "${targets[@]}"; do
  # k8s/overlays/dev -> overlays-dev.yaml: the file name is what the reports below show.
  out="$work/$(echo "${target#k8s/}" | tr '/' '-').yaml"
  if ! kubectl kustomize "$target" > "$out"; then
    # Debian's kubernetes-client package (kubectl 1.20, kustomize v2) is too old for these files.
    echo "FAIL: $target does not render (it needs kubectl 1.27 or later, with kustomize v5)"
    exit 1
  fi
  count=$(grep -c '^kind: ' "$out" || true)
  echo "rendered $target: $count resources"
  rendered+=("$out")
done

for version in $K8S_VERSIONS; do
  step "kubernetes-validate --strict, Kubernetes $version"
  for out in "${rendered[@]}"; do
    name=$(basename "$out" .yaml)
    # Exit status alone is not enough: a kind or API version unknown to $version is only a
    # WARN with status 0, and every resource here must be a built-in one.
    if ! report=$("$work/venv/bin/kubernetes-validate" --strict -k "$version" "$out" 2>&1) \
      || grep -qv '^INFO ' <<<"$report" \
      || ! grep -q '^INFO .* passed ' <<<"$report"; then
      grep -v '^INFO ' <<<"$report" || printf '%s\n' "$report"
      echo "FAIL: $name does not validate against Kubernetes $version"
      exit 1
    fi
    echo "ok $name: $(grep -c ' passed ' <<<"$report") resources valid against $version"
  done
done

step "cross-references (selectors, ports, config references)"
"$work/venv/bin/python" - "${rendered[@]}" <<'PY'
import sys

import yaml

failed = set()


def fail(name, message):
    failed.add(name)
    print(f"FAIL {name}: {message}")


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1].removesuffix(".yaml")
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    workloads = by_kind.get("Deployment", {})
    pods = {w: d["spec"]["template"] for w, d in workloads.items()}
    checked = 0

    for w, d in workloads.items():
        sel = d["spec"]["selector"]["matchLabels"]
        if not matches(sel, pods[w]["metadata"].get("labels", {})):
            fail(name, f"Deployment {w}: selector does not match its pod template")
        checked += 1

    def selected(selector):
        return [w for w, t in pods.items() if matches(selector, t["metadata"].get("labels", {}))]

    for s, d in by_kind.get("Service", {}).items():
        chosen = selected(d["spec"].get("selector", {}))
        if not chosen:
            fail(name, f"Service {s}: selects no pods")
            continue
        for port in d["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for w in chosen:
                offered = [
                    (p.get("name"), p["containerPort"])
                    for c in pods[w]["spec"]["containers"]
                    for p in c.get("ports", [])
                ]
                if not any(target in pair for pair in offered):
                    fail(name, f"Service {s}: port {port['name']} targets {target}, not on {w}")
        checked += 1

    for p, d in by_kind.get("PodDisruptionBudget", {}).items():
        if not selected(d["spec"]["selector"]["matchLabels"]):
            fail(name, f"PodDisruptionBudget {p}: selects no pods")
        checked += 1

    for n, d in by_kind.get("NetworkPolicy", {}).items():
        if not selected(d["spec"]["podSelector"].get("matchLabels", {})):
            fail(name, f"NetworkPolicy {n}: selects no pods")
        for rule in d["spec"].get("ingress", []) + d["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    sel = peer["podSelector"].get("matchLabels", {})
                    # Same-namespace peers must exist, except the opt-in monitoring label.
                    if not any(k.endswith("/monitoring") for k in sel) and not selected(sel):
                        fail(name, f"NetworkPolicy {n}: peer {sel} selects no pods")
        checked += 1

    for h, d in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = d["spec"]["scaleTargetRef"]
        if ref["name"] not in by_kind.get(ref["kind"], {}):
            fail(name, f"HorizontalPodAutoscaler {h}: no {ref['kind']} {ref['name']}")
        checked += 1

    external = set()
    for w, t in pods.items():
        spec = t["spec"]
        sa = spec.get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", {}):
            fail(name, f"Deployment {w}: no ServiceAccount {sa}")
        refs = []
        for c in spec["containers"]:
            for e in c.get("envFrom", []):
                if "configMapRef" in e:
                    refs.append(("ConfigMap", e["configMapRef"]["name"], False))
                if "secretRef" in e:
                    refs.append(("Secret", e["secretRef"]["name"], False))
            for e in c.get("env", []):
                src = e.get("valueFrom", {})
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if key in src:
                        refs.append((kind, src[key]["name"], src[key].get("optional", False)))
        for v in spec.get("volumes", []):
            if "secret" in v:
                secret = v["secret"]
                refs.append(("Secret", secret["secretName"], secret.get("optional", False)))
            if "configMap" in v:
                refs.append(("ConfigMap", v["configMap"]["name"], False))
        for kind, ref, _optional in refs:
            if ref in by_kind.get(kind, {}):
                continue
            if kind == "Secret":
                external.add(ref)
            else:
                fail(name, f"Deployment {w}: no {kind} {ref}")
        checked += 1

    if name not in failed:
        note = ""
        if external:
            note = f"; expects Secret(s) created by hand: {', '.join(sorted(external))}"
        print(f"ok {name}: {checked} objects cross-checked{note}")

sys.exit(1 if failed else 0)
PY

step "k8s manifests OK: ${targets[*]} rendered and valid against Kubernetes ${K8S_VERSIONS// /, }"
