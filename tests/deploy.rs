//! The files of `deploy/` hold together: the compose file parses and agrees
//! with the Dockerfile and `haproxy.cfg`; every series the Grafana
//! dashboard and the Prometheus alerts name is one a live node exports; the
//! systemd unit has what a 100 000-connection node needs. (`haproxy.cfg`
//! itself runs in `tests/haproxy.rs`.)

mod common;

use common::process::{http_get, Proc};
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn yaml(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

/// `map[key]`, following a YAML merge key (`<<: *anchor`), which the
/// parser leaves to the reader.
fn field<'a>(map: &'a Yaml, key: &str) -> &'a Yaml {
    match &map[key] {
        Yaml::BadValue => &map["<<"][key],
        v => v,
    }
}

/// The keys of a mapping, merged ones included.
fn keys(map: &Yaml) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (k, v) in map.as_hash().into_iter().flatten() {
        match k.as_str() {
            Some("<<") => out.extend(keys(v)),
            Some(k) => {
                out.insert(k.to_string());
            }
            None => {}
        }
    }
    out
}

/// `presence_hub_…` names in a PromQL expression.
fn series(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("presence_hub_"))
        .map(str::to_string)
        .collect()
}

/// `${NAME}` references in a text.
fn env_refs(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_compose_file_parses_and_agrees_with_the_dockerfile_and_haproxy_cfg() {
    let compose = yaml("deploy/docker-compose.yml");
    let text = read("deploy/docker-compose.yml");
    assert!(
        text.contains("cannot be run in this project's CI"),
        "header says so"
    );
    let services = &compose["services"];
    let dockerfile = read("Dockerfile");
    // The image the Dockerfile builds listens on 0.0.0.0:8080.
    assert!(dockerfile.contains("PRESENCE_HUB_LISTEN=0.0.0.0:8080"));
    assert!(dockerfile.contains("EXPOSE 8080"));

    let redis = &services["redis"];
    let command: Vec<&str> = redis["command"]
        .as_vec()
        .expect("redis command")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        command.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "Redis with AOF: {command:?}"
    );

    let haproxy_cfg = read("deploy/haproxy.cfg");
    let haproxy = &services["haproxy"];
    let volumes: Vec<&str> = haproxy["volumes"]
        .as_vec()
        .expect("haproxy volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        volumes.iter().any(|v| v.starts_with("./haproxy.cfg:")),
        "{volumes:?}"
    );
    // Every variable haproxy.cfg reads is set, and every node it names is
    // a service built from the Dockerfile, on the port the image listens on.
    let env = haproxy["environment"]
        .as_hash()
        .expect("haproxy environment");
    for name in env_refs(&haproxy_cfg) {
        assert!(
            env.contains_key(&Yaml::String(name.clone())),
            "haproxy.cfg reads ${{{name}}}, compose does not set it"
        );
    }
    for i in 1..=3 {
        let target = env[&Yaml::String(format!("PRESENCE_HUB{i}"))]
            .as_str()
            .expect("node address");
        let (service, port) = target.split_once(':').expect("host:port");
        assert_eq!(port, "8080", "{target}");
        let hub = &services[service];
        let build = field(hub, "build");
        assert_eq!(build["dockerfile"].as_str(), Some("Dockerfile"));
        assert_eq!(build["context"].as_str(), Some(".."));
        let env = keys(&hub["environment"]);
        for key in [
            "PRESENCE_HUB_REDIS_URL",
            "PRESENCE_HUB_JWT_SECRET",
            "PRESENCE_HUB_TRUSTED_PROXIES",
            "PRESENCE_HUB_NODE_ID",
        ] {
            assert!(env.contains(key), "{service}: {key} in {env:?}");
        }
        assert_eq!(
            field(hub, "stop_signal").as_str(),
            Some("SIGTERM"),
            "{service} drains"
        );
    }
    // Every setting the compose file passes is a real flag.
    let help = std::process::Command::new(common::process::BIN)
        .arg("--help")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    for key in keys(&services["hub1"]["environment"]) {
        assert!(help.contains(&format!("[env: {key}")), "{key} is no flag");
    }
}

#[tokio::test]
async fn every_series_of_the_dashboard_and_the_alerts_is_exported_by_a_node() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana-dashboard.json")).expect("valid JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    let alerts = yaml("deploy/prometheus-alerts.yml");
    let mut names = Vec::new();
    for group in alerts["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            names.push(rule["alert"].as_str().expect("alert name").to_string());
            exprs.push(rule["expr"].as_str().expect("expr").to_string());
        }
    }
    // The alerts the README's operations section recommends.
    for wanted in [
        "PresenceHubNodeNotReady",
        "PresenceHubBackplaneReconnectStorm",
        "PresenceHubOutboxOverflows",
        "PresenceHubCommandTimeouts",
    ] {
        assert!(names.iter().any(|n| n == wanted), "no {wanted} alert");
    }

    // A live node, with some traffic so every labelled series exists.
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let mut a1 = Client::connect(&node.ws_url()).await;
    a1.send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1"}}))
        .await;
    a1.recv_type("state").await;
    let mut sup = Client::connect(&node.ws_url()).await;
    sup.send(json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"}))
        .await;
    sup.recv_type("welcome").await;
    sup.subscribe(json!({"all": true})).await;
    sup.ok(json!({"type": "command", "action": "pause", "agent_id": "a1", "reason": "lunch"}))
        .await;
    let (code, text) = http_get(&node.addr, "/metrics").await;
    assert_eq!(code, 200);
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut checked = BTreeSet::new();
    for expr in &exprs {
        for name in series(expr) {
            assert!(
                exported.contains(name.as_str()),
                "{name} (in {expr}) is not exported; /metrics has {exported:?}"
            );
            checked.insert(name);
        }
    }
    assert!(checked.len() >= 12, "{checked:?}");
    // presence_hub_ready is 1 on a ready node.
    assert!(text.lines().any(|l| l == "presence_hub_ready 1"), "{text}");
}

#[test]
fn the_systemd_unit_runs_unprivileged_with_room_for_100000_connections_and_time_to_drain() {
    let unit = read("deploy/presence-hub.service");
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}="))
            .trim()
            .to_string()
    };
    assert_ne!(value("User"), "root");
    let nofile: u64 = value("LimitNOFILE").parse().expect("a number");
    assert!(nofile >= 100_000 + 256, "LimitNOFILE={nofile}");
    assert!(value("EnvironmentFile").contains("presence-hub"));
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert!(value("Restart").starts_with("on-"));
    // Longer than the default --drain-timeout-ms (10 s).
    let stop: u64 = value("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("seconds");
    assert!(stop > 10, "TimeoutStopSec={stop}s");
}

/// What the image build reads must be in its context: every workspace
/// member (cargo reads each manifest even to build only the hub) and every
/// file outside `src/` that the hub embeds with `include_str!`. Without a
/// Docker engine here, this is the check that `docker build` would not
/// stop at a missing file.
#[test]
fn the_dockerfile_copies_everything_the_build_reads() {
    let dockerfile = read("Dockerfile");
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len().saturating_sub(1)].to_vec()
        })
        .collect();
    let is_copied = |path: &str| {
        copied
            .iter()
            .any(|c| path == *c || path.starts_with(&format!("{}/", c.trim_end_matches('/'))))
    };
    let manifest = read("Cargo.toml");
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("workspace members");
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        if member.is_empty() || member == "." {
            continue;
        }
        for path in [
            format!("{member}/Cargo.toml"),
            format!("{member}/src/main.rs"),
        ] {
            assert!(is_copied(&path), "the Dockerfile does not copy {path}");
        }
    }
    let mut embedded = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for arg in text.split("include_str!(\"").skip(1) {
                    let file = arg.split('"').next().unwrap_or_default();
                    let full = path.parent().expect("parent").join(file);
                    let full = full.canonicalize().unwrap_or(full);
                    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .canonicalize()
                        .expect("root");
                    if let Ok(rel) = full.strip_prefix(&root) {
                        embedded.push(rel.to_string_lossy().into_owned());
                    }
                }
            }
        }
    }
    assert!(
        embedded.iter().any(|p| p.starts_with("clients/")),
        "the scan finds the embedded client library: {embedded:?}"
    );
    for path in &embedded {
        assert!(is_copied(path), "the Dockerfile does not copy {path}");
    }
}

/// `/metrics` is on a private port everywhere the deploy files run the hub
/// (README "Web security"): the image sets `--metrics-listen`, the compose
/// file states the same port and publishes it nowhere, and the Prometheus
/// example scrapes every node there.
#[test]
fn metrics_are_scraped_on_the_private_port_that_the_image_and_compose_set() {
    let dockerfile = read("Dockerfile");
    let port = dockerfile
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("PRESENCE_HUB_METRICS_LISTEN=0.0.0.0:")
                .map(|rest| rest.trim_end_matches(['\\', ' ']).to_string())
        })
        .expect("the image sets PRESENCE_HUB_METRICS_LISTEN");
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.starts_with("EXPOSE") && l.contains(&port)),
        "the metrics port is not EXPOSEd (`docker run -P` would publish it)"
    );
    let compose = yaml("deploy/docker-compose.yml");
    let services = compose["services"].as_hash().expect("services");
    let mut hubs = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("a service name");
        for published in field(service, "ports").as_vec().into_iter().flatten() {
            let published = published.as_str().unwrap_or_default();
            assert!(
                !published.ends_with(&format!(":{port}")),
                "{name} publishes the metrics port: {published}"
            );
        }
        let env = field(service, "environment");
        let Some(listen) = field(env, "PRESENCE_HUB_METRICS_LISTEN").as_str() else {
            continue;
        };
        assert_eq!(listen, format!("0.0.0.0:{port}"), "{name}");
        hubs.push(name.to_string());
    }
    assert_eq!(hubs, ["hub1", "hub2", "hub3"]);
    let alerts = read("deploy/prometheus-alerts.yml");
    for hub in &hubs {
        assert!(
            alerts.contains(&format!("{hub}:{port}")),
            "the scrape example does not name {hub}:{port}"
        );
    }
}

/// The words of `haproxy.cfg`'s lines, comments dropped.
fn haproxy_lines(cfg: &str) -> Vec<Vec<String>> {
    cfg.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Under Compose a node that is recreated comes back on a new address:
/// HAProxy must resolve the node names again while it runs (a `resolvers`
/// section on every server), and must start while a name does not resolve
/// yet (`init-addr` ending in `none`), or it would check an old address
/// until restarted.
#[test]
fn haproxy_cfg_resolves_the_node_names_again_while_it_runs() {
    let cfg = read("deploy/haproxy.cfg");
    let lines = haproxy_lines(&cfg);
    // The `resolvers NAME` section and what it reads.
    let mut sections = Vec::new();
    let mut current: Option<(String, Vec<Vec<String>>)> = None;
    for words in &lines {
        let starts = matches!(
            words[0].as_str(),
            "global" | "defaults" | "frontend" | "backend" | "listen" | "resolvers"
        );
        if starts {
            sections.extend(current.take());
            current = Some((words.join(" "), Vec::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push(words.clone());
        }
    }
    sections.extend(current);
    let body = |name: &str| -> &Vec<Vec<String>> {
        &sections
            .iter()
            .find(|(head, _)| head == name)
            .unwrap_or_else(|| panic!("no `{name}` section"))
            .1
    };
    let hubs = body("backend hubs");
    let options: Vec<String> = hubs
        .iter()
        .filter(|w| w[0] == "default-server")
        .flat_map(|w| w[1..].to_vec())
        .collect();
    let servers: Vec<&Vec<String>> = hubs.iter().filter(|w| w[0] == "server").collect();
    assert_eq!(servers.len(), 3, "{servers:?}");
    for server in servers {
        let mut all = options.clone();
        all.extend(server[3..].iter().cloned());
        let after = |key: &str| {
            all.windows(2)
                .find(|w| w[0] == key)
                .map(|w| w[1].clone())
                .unwrap_or_else(|| panic!("{server:?}: no `{key}` in {all:?}"))
        };
        let resolvers = after("resolvers");
        let init_addr = after("init-addr");
        assert!(
            init_addr.split(',').next_back() == Some("none"),
            "{server:?}: init-addr {init_addr} stops HAProxy when a name does not resolve"
        );
        let dns = body(&format!("resolvers {resolvers}"));
        assert!(
            dns.iter()
                .any(|w| w[0] == "parse-resolv-conf" || w[0] == "nameserver"),
            "resolvers {resolvers} has no nameserver: {dns:?}"
        );
    }
}

/// `haproxy -c` accepts the file with the environment the compose file
/// gives it (node names that do not resolve here: HAProxy must still
/// start) and with the README's addresses.
#[test]
#[cfg_attr(ph_no_haproxy, ignore = "needs haproxy (apt-get install haproxy)")]
fn haproxy_accepts_the_cfg_as_compose_and_the_readme_run_it() {
    if !common::haproxy::available() {
        missing("haproxy -c", "needs haproxy (apt-get install haproxy)");
    }
    let compose = yaml("deploy/docker-compose.yml");
    let env: Vec<(String, String)> = compose["services"]["haproxy"]["environment"]
        .as_hash()
        .expect("haproxy environment")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("name").to_string(),
                v.as_str().expect("a string value").to_string(),
            )
        })
        .collect();
    // The README's cluster by hand: the `NAME=value` words of the command
    // that runs HAProxy, continuation lines included.
    let readme = read("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let run = lines
        .iter()
        .position(|l| l.contains("haproxy -db -f deploy/haproxy.cfg"))
        .expect("the README runs HAProxy by hand");
    let first = (0..run)
        .rev()
        .take_while(|&i| lines[i].trim_end().ends_with('\\'))
        .last()
        .unwrap_or(run);
    let by_hand: Vec<(String, String)> = lines[first..=run]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| k.starts_with("PRESENCE_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(by_hand.len(), 6, "{by_hand:?}");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
    for (setup, env) in [("compose", env), ("by hand", by_hand)] {
        let out = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .envs(env)
            .output()
            .expect("haproxy -c");
        assert!(
            out.status.success(),
            "{setup}: haproxy -c refuses deploy/haproxy.cfg:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The unit's header commands run as written on a fresh machine: the
/// directory of `EnvironmentFile=` does not exist there, so it is created
/// (`install -d`) before the file is put in it (or the file's `install`
/// creates it with `-D`).
#[test]
fn the_systemd_units_header_creates_the_env_files_directory_before_the_file() {
    let unit = read("deploy/presence-hub.service");
    let env_file = unit
        .lines()
        .find_map(|l| l.strip_prefix("EnvironmentFile="))
        .expect("EnvironmentFile=")
        .trim_start_matches('-')
        .trim();
    let dir = Path::new(env_file)
        .parent()
        .expect("a directory")
        .to_string_lossy()
        .into_owned();
    // The commands: the header's comment lines indented as code.
    let commands: Vec<Vec<&str>> = unit
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect()
        })
        .collect();
    let writes = commands
        .iter()
        .position(|c| c.first() == Some(&"install") && c.last() == Some(&env_file))
        .unwrap_or_else(|| panic!("the header does not install {env_file}: {commands:?}"));
    let creates = commands[..writes].iter().any(|c| {
        c.first() == Some(&"install") && c.contains(&"-d") && c.last() == Some(&dir.as_str())
    });
    assert!(
        creates || commands[writes].contains(&"-D"),
        "{:?} fails where {dir} does not exist: nothing creates it first",
        commands[writes]
    );
}

// ---- deploy/kubernetes/ ------------------------------------------------

const KUBE_DIR: &str = "deploy/kubernetes";

/// Kubernetes versions the manifests are validated against: the oldest
/// they support (the preStop `sleep` action is on by default from 1.30)
/// and the newest the pinned validator knows.
const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// Kinds that are not part of Kubernetes itself: kubernetes-validate has
/// no schema for them and says so with a warning, which is accepted for
/// these only; `tests/kubernetes/validate-crds.mjs` validates them instead.
const KUBE_CRDS: [(&str, &str); 1] = [("ServiceMonitor", "monitoring.coreos.com/v1")];

/// A YAML document as JSON (for the CRD validator).
fn yaml_to_json(y: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    match y {
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().expect("a string key").to_string(),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => Value::from(r.parse::<f64>().expect("a number")),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Null => Value::Null,
        other => panic!("no JSON for {other:?}"),
    }
}

/// The manifests (every `.yaml` of the directory but kustomize's own
/// file), by file name, each with its documents.
fn kube_manifests() -> Vec<(String, Vec<Yaml>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(KUBE_DIR);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|name| {
            let path = format!("{KUBE_DIR}/{name}");
            let docs =
                YamlLoader::load_from_str(&read(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            (name, docs)
        })
        .collect()
}

/// The one document of `kind` among the manifests.
fn kube_object(manifests: &[(String, Vec<Yaml>)], kind: &str) -> Yaml {
    let found: Vec<&Yaml> = manifests
        .iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in {KUBE_DIR}");
    found[0].clone()
}

/// `map` as string pairs (labels, selectors).
fn string_map(map: &Yaml) -> BTreeSet<(String, String)> {
    map.as_hash()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = match v {
                Yaml::Integer(i) => i.to_string(),
                v => v.as_str().expect("a string value").to_string(),
            };
            (k.as_str().expect("a key").to_string(), v)
        })
        .collect()
}

/// The version `.ci/run` installs (`kubernetes-validate==X`).
fn pinned_kubeval_version() -> String {
    read(".ci/run")
        .split("kubernetes-validate==")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect(".ci/run pins kubernetes-validate==VERSION")
        .to_string()
}

/// Every manifest passes `kubernetes-validate --strict` (the schemas of
/// Kubernetes itself, bundled with it: no network) for each version of
/// [`KUBE_VERSIONS`]; an unknown field, a wrong type or an `apiVersion`
/// the version lacks fails. A kind it has no schema for is only a warning
/// there, so this test fails on it too, but for the CRDs of [`KUBE_CRDS`],
/// which `tests/kubernetes/validate-crds.mjs` validates against the
/// schemas generated from the CRDs (it checks types, patterns and required
/// fields; unknown fields of the ones used are caught by
/// [`kubernetes_manifests_agree_with_the_hub_and_with_each_other`]).
#[test]
#[cfg_attr(
    ph_no_kubeval,
    ignore = "needs kubernetes-validate (pip install kubernetes-validate), node and npm ci --prefix tests/kubernetes"
)]
fn kubernetes_manifests_pass_the_schema_validators() {
    let crd_models = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kubernetes/node_modules/@kubernetes-models/prometheus-operator");
    let version = std::process::Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    let (Ok(version), true) = (version, crd_models.is_dir()) else {
        missing(
            "kubernetes validators",
            "needs kubernetes-validate (pip install kubernetes-validate) and \
             npm ci --prefix tests/kubernetes",
        );
    };
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let pinned = pinned_kubeval_version();
    assert!(
        version.split_whitespace().any(|w| w == pinned),
        "kubernetes-validate {version:?}, .ci/run pins {pinned}"
    );
    let manifests = kube_manifests();
    let files: Vec<String> = manifests.iter().map(|(name, _)| name.clone()).collect();
    let documents = manifests.iter().map(|(_, docs)| docs.len()).sum::<usize>();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(KUBE_DIR);
    for kube in KUBE_VERSIONS {
        let out = std::process::Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", kube])
            .args(&files)
            .current_dir(&dir)
            .output()
            .expect("kubernetes-validate runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "Kubernetes {kube}:\n{text}");
        let mut passed = 0;
        for line in text.lines() {
            if line.contains(" passed for resource ") {
                passed += 1;
            } else if line.contains("Couldn't find schema for kind") {
                assert!(
                    KUBE_CRDS.iter().any(|(kind, api)| line
                        .contains(&format!("kind {kind} with api version {api} "))),
                    "Kubernetes {kube}: no schema, so not validated: {line}"
                );
                passed += 1;
            } else {
                assert!(
                    !line.starts_with("ERROR") && !line.starts_with("WARN"),
                    "Kubernetes {kube}: {line}"
                );
            }
        }
        assert_eq!(passed, documents, "every document checked:\n{text}");
    }

    // The CRDs' documents, through their own schemas.
    let crds: Vec<serde_json::Value> = manifests
        .iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| {
            KUBE_CRDS.iter().any(|(kind, api)| {
                d["kind"].as_str() == Some(kind) && d["apiVersion"].as_str() == Some(api)
            })
        })
        .map(yaml_to_json)
        .collect();
    assert!(
        !crds.is_empty(),
        "the ServiceMonitor is among the manifests"
    );
    let mut node = std::process::Command::new("node")
        .arg("validate-crds.mjs")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing("kubernetes validators", &format!("node: {e}")));
    {
        use std::io::Write;
        let mut stdin = node.stdin.take().expect("stdin");
        stdin
            .write_all(
                serde_json::Value::Array(crds.clone())
                    .to_string()
                    .as_bytes(),
            )
            .expect("write");
    }
    let out = node.wait_with_output().expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "validate-crds.mjs:\n{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("OK ")).count(),
        crds.len(),
        "{text}"
    );
}

/// The hub's `--help`.
fn help_text() -> String {
    let out = std::process::Command::new(common::process::BIN)
        .arg("--help")
        .output()
        .expect("--help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `[default: N]` that `--help` gives `flag`.
fn help_default(help: &str, flag: &str) -> String {
    let at = help
        .find(&format!("{flag} <"))
        .unwrap_or_else(|| panic!("{flag} is no flag"));
    help[at..]
        .split("[default: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("{flag} has no default"))
        .to_string()
}

/// `"384Mi"` in bytes.
fn quantity_bytes(q: &str) -> u64 {
    let units = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().expect("a number") * factor;
        }
    }
    q.parse().expect("bytes")
}

/// What no schema can check: the manifests agree with the hub and with
/// each other. The container's flags are real (the node starts with them),
/// the probes' paths answer 200 on the port they name, `/metrics` answers
/// on the port Prometheus is pointed at (and not on the one the Ingress
/// routes to), the grace period covers preStop and the drain, the
/// selectors select the pods, the Secret holds the keys the pods read,
/// and the memory request holds `--max-connections` connections.
#[tokio::test]
async fn kubernetes_manifests_agree_with_the_hub_and_with_each_other() {
    let manifests = kube_manifests();
    let help = help_text();
    let deployment = kube_object(&manifests, "Deployment");
    let pod = &deployment["spec"]["template"];
    let pod_labels = string_map(&pod["metadata"]["labels"]);
    let selects_pods = |what: &str, selector: &Yaml| {
        let selector = string_map(selector);
        assert!(
            !selector.is_empty() && selector.is_subset(&pod_labels),
            "{what} {selector:?} does not select the pods {pod_labels:?}"
        );
    };
    selects_pods(
        "the Deployment's selector",
        &deployment["spec"]["selector"]["matchLabels"],
    );
    let containers = pod["spec"]["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let hub = &containers[0];

    // Flags and environment.
    let args: Vec<&str> = hub["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string"))
        .collect();
    let arg = |flag: &str| -> Option<String> {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{flag}=")))
            .map(str::to_string)
    };
    for a in &args {
        let flag = a.split('=').next().unwrap_or_default();
        assert!(
            flag.starts_with("--") && help.contains(&format!("  {flag} ")),
            "{a}: {flag} is no flag of presence-hub"
        );
    }
    let env = hub["env"].as_vec().expect("env");
    let secret = kube_object(&manifests, "Secret");
    let secret_name = secret["metadata"]["name"].as_str().expect("name");
    for var in env {
        let name = var["name"].as_str().expect("name");
        assert!(help.contains(&format!("[env: {name}")), "{name} is no flag");
        let key_ref = &var["valueFrom"]["secretKeyRef"];
        if let Some(key) = key_ref["key"].as_str() {
            assert_eq!(key_ref["name"].as_str(), Some(secret_name), "{name}");
            assert!(
                !secret["stringData"][key].is_badvalue(),
                "{name}: the Secret has no {key}"
            );
        }
    }

    // Ports: by name, and what serves them.
    let port_of = |name: &str| -> i64 {
        hub["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("no container port {name}"))
    };
    let port_in = |addr: String| -> i64 {
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("host:port")
    };
    let listen = port_in(arg("--listen").expect("--listen"));
    let metrics = port_in(arg("--metrics-listen").expect("--metrics-listen"));
    assert_eq!(port_of("http"), listen, "the http port is --listen's");
    assert_eq!(
        port_of("metrics"),
        metrics,
        "the metrics port is --metrics-listen's"
    );
    let probe = |which: &str| -> (String, i64) {
        let get = &hub[which]["httpGet"];
        let port = match &get["port"] {
            Yaml::String(name) => port_of(name),
            Yaml::Integer(n) => *n,
            other => panic!("{which}: port {other:?}"),
        };
        (get["path"].as_str().expect("path").to_string(), port)
    };
    let (ready_path, ready_port) = probe("readinessProbe");
    let (live_path, live_port) = probe("livenessProbe");
    assert_eq!(
        ready_path, "/readyz",
        "readiness is /readyz (not draining, Redis reachable)"
    );
    assert_eq!(
        live_path, "/healthz",
        "liveness is /healthz (not /readyz: Redis outages)"
    );
    assert_eq!((ready_port, live_port), (listen, listen));
    let annotations = &pod["metadata"]["annotations"];
    let scrape_path = annotations["prometheus.io/path"].as_str().expect("path");
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(metrics.to_string().as_str())
    );

    // The node starts with these very flags (addresses moved to loopback)
    // and serves what the probes and Prometheus ask for.
    let metrics_addr = format!("127.0.0.1:{}", common::redis::free_port());
    let local: Vec<String> = args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("--listen", _)) => "--listen=127.0.0.1:0".to_string(),
            Some(("--metrics-listen", _)) => format!("--metrics-listen={metrics_addr}"),
            _ => a.to_string(),
        })
        .collect();
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    let node = Proc::start(&local, &[("PRESENCE_HUB_JWT_SECRET", SECRET)]).await;
    assert_eq!(
        http_get(&node.addr, &ready_path).await.0,
        200,
        "{ready_path}"
    );
    assert_eq!(http_get(&node.addr, &live_path).await.0, 200, "{live_path}");
    assert_eq!(
        http_get(&metrics_addr, scrape_path).await.0,
        200,
        "{scrape_path}"
    );
    assert_eq!(
        http_get(&node.addr, scrape_path).await.0,
        404,
        "the port the Ingress reaches does not serve /metrics"
    );

    // Grace: preStop, then the whole drain, before SIGKILL.
    let pre_stop = pod["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("preStop sleep seconds");
    let drain_ms: i64 = arg("--drain-timeout-ms")
        .unwrap_or_else(|| help_default(&help, "--drain-timeout-ms"))
        .parse()
        .expect("ms");
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace * 1000 >= pre_stop * 1000 + drain_ms,
        "terminationGracePeriodSeconds {grace} < preStop {pre_stop} s + drain {drain_ms} ms"
    );

    // Memory: --max-connections idle connections at ≈ 8 KiB each (README
    // "Sizing", BENCHMARKS.md) fit in the request.
    let max_connections: u64 = arg("--max-connections")
        .unwrap_or_else(|| help_default(&help, "--max-connections"))
        .parse()
        .expect("a number");
    let request = quantity_bytes(
        hub["resources"]["requests"]["memory"]
            .as_str()
            .expect("a memory request"),
    );
    assert!(
        request >= max_connections * 8 * 1024,
        "{request} B of memory for {max_connections} connections"
    );

    // The Service selects the pods and names their ports; the Ingress
    // routes to its http port only; the ServiceMonitor scrapes its metrics
    // port; the PodDisruptionBudget covers the pods.
    let service = kube_object(&manifests, "Service");
    selects_pods("the Service", &service["spec"]["selector"]);
    let service_port = |name: &str| -> i64 {
        let port = service["spec"]["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("the Service has no port {name}"));
        match &port["targetPort"] {
            Yaml::String(target) => port_of(target),
            Yaml::Integer(n) => *n,
            other => panic!("targetPort {other:?}"),
        }
    };
    let service_name = service["metadata"]["name"].as_str().expect("name");
    let ingress = kube_object(&manifests, "Ingress");
    for rule in ingress["spec"]["rules"].as_vec().expect("rules") {
        for path in rule["http"]["paths"].as_vec().expect("paths") {
            let backend = &path["backend"]["service"];
            assert_eq!(backend["name"].as_str(), Some(service_name));
            let port = backend["port"]["name"].as_str().expect("a port name");
            assert_eq!(service_port(port), listen, "the Ingress routes to --listen");
        }
    }
    let annotations = string_map(&ingress["metadata"]["annotations"]);
    for timeout in ["proxy-read-timeout", "proxy-send-timeout"] {
        let (_, seconds) = annotations
            .iter()
            .find(|(k, _)| *k == format!("nginx.ingress.kubernetes.io/{timeout}"))
            .unwrap_or_else(|| panic!("no {timeout}"));
        let heartbeat: i64 = help_default(&help, "--heartbeat-interval-ms")
            .parse()
            .expect("ms");
        assert!(
            seconds.parse::<i64>().expect("seconds") * 1000 > 2 * heartbeat,
            "{timeout} {seconds} s would cut idle WebSockets"
        );
    }
    let monitor = kube_object(&manifests, "ServiceMonitor");
    let service_labels = string_map(&service["metadata"]["labels"]);
    let monitor_selector = string_map(&monitor["spec"]["selector"]["matchLabels"]);
    assert!(
        !monitor_selector.is_empty() && monitor_selector.is_subset(&service_labels),
        "the ServiceMonitor {monitor_selector:?} does not select the Service {service_labels:?}"
    );
    for endpoint in monitor["spec"]["endpoints"].as_vec().expect("endpoints") {
        let port = endpoint["port"].as_str().expect("a port name");
        assert_eq!(service_port(port), metrics, "scraped on --metrics-listen");
        assert_eq!(endpoint["path"].as_str(), Some(scrape_path));
    }
    let pdb = kube_object(&manifests, "PodDisruptionBudget");
    selects_pods(
        "the PodDisruptionBudget",
        &pdb["spec"]["selector"]["matchLabels"],
    );

    // kustomization.yaml applies every manifest but the two applied apart
    // (their headers say why: placeholders, an optional CRD).
    let kustomization = yaml(&format!("{KUBE_DIR}/kustomization.yaml"));
    let resources: BTreeSet<&str> = kustomization["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file"))
        .collect();
    for (name, _) in &manifests {
        let apart = ["secret.yaml", "servicemonitor.yaml"].contains(&name.as_str());
        assert_eq!(
            resources.contains(name.as_str()),
            !apart,
            "{name} in kustomization.yaml"
        );
        if apart {
            assert!(read(&format!("{KUBE_DIR}/{name}")).contains("Not in kustomization.yaml"));
        }
    }
    assert_eq!(resources.len(), manifests.len() - 2, "{resources:?}");
}
