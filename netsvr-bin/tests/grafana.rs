//! The Grafana dashboard (`docs/grafana/netsvr-dashboard.json`) against the metrics that
//! exist: its structure (a Prometheus datasource variable used by every panel, an `instance`
//! variable, unique panel ids, a query in every target), every `netsvr_*` name it mentions
//! declared in the source, every metric of `netsvr_core::metrics` on it, and the names and
//! types a real `netsvr` exports on `/metrics` matching how the dashboard queries them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::server::{Server, json_config};
use serde_json::Value;

const DASHBOARD: &str = "docs/grafana/netsvr-dashboard.json";
/// Suffixes of the series a Prometheus histogram family exports.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn dashboard() -> Value {
    let path = workspace().join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every `netsvr_[a-z0-9_]+` token in `text`.
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("netsvr_") {
        let start = from + at;
        let word_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        let mut end = start + "netsvr_".len();
        while end < bytes.len() && word_char(bytes[end]) {
            end += 1;
        }
        // Part of a longer identifier (`my_netsvr_x`) is not a metric name of ours.
        let glued =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !glued {
            out.insert(text[start..end].to_owned());
        }
        from = end;
    }
    out
}

/// Every string anywhere in `value`.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The metric names the dashboard mentions anywhere: queries, variables, descriptions.
fn mentioned_names(dash: &Value) -> BTreeSet<String> {
    let mut all = Vec::new();
    strings(dash, &mut all);
    all.iter().flat_map(|s| metric_tokens(s)).collect()
}

/// The metric names the dashboard queries: every panel target's `expr` and every
/// templating variable's query.
fn queried_names(dash: &Value) -> BTreeSet<String> {
    let mut queries = Vec::new();
    for panel in dash["panels"].as_array().into_iter().flatten() {
        let nested = panel["panels"].as_array().into_iter().flatten();
        for panel in std::iter::once(panel).chain(nested) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                strings(&target["expr"], &mut queries);
            }
        }
    }
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        strings(&var["query"], &mut queries);
        strings(&var["definition"], &mut queries);
    }
    queries.iter().flat_map(|s| metric_tokens(s)).collect()
}

/// The `.rs` files under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What the source declares: every `"netsvr_…"` string literal of netsvr-core and
/// netsvr-bin, and which of them are histograms (named by a `histogram!` call or its
/// `describe_histogram!`, through a constant or the literal itself).
struct Declared {
    names: BTreeSet<String>,
    histograms: BTreeSet<String>,
    /// The constants of `netsvr_core::metrics`: name → value.
    core: BTreeMap<String, String>,
}

fn declared() -> Declared {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("netsvr-core/src"), &mut files);
    rust_files(&root.join("netsvr-bin/src"), &mut files);
    let mut names = BTreeSet::new();
    let mut consts = BTreeMap::new();
    let mut texts = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for token in metric_tokens(&text) {
            if text.contains(&format!("\"{token}\"")) {
                names.insert(token);
            }
        }
        // `const IDENT: &str = "netsvr_…";`
        for line in text.lines() {
            let Some((head, tail)) = line.split_once(": &str = \"") else {
                continue;
            };
            let Some(value) = tail.strip_suffix("\";") else {
                continue;
            };
            if value.starts_with("netsvr_")
                && let Some(ident) = head.trim().rsplit(' ').next()
            {
                consts.insert(ident.to_owned(), (value.to_owned(), file.clone()));
            }
        }
        texts.push(text);
    }
    let mut histograms = BTreeSet::new();
    for text in &texts {
        let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for marker in ["histogram!(", "describe_histogram!("] {
            for (at, _) in flat.match_indices(marker) {
                let arg = &flat[at + marker.len()..];
                let arg = &arg[..arg.find([',', ')']).unwrap_or(arg.len())];
                let name = match arg.strip_prefix('"') {
                    Some(literal) => literal.trim_end_matches('"').to_owned(),
                    None => {
                        let ident = arg.rsplit("::").next().unwrap_or(arg);
                        match consts.get(ident) {
                            Some((value, _)) => value.clone(),
                            None => continue,
                        }
                    }
                };
                histograms.insert(name);
            }
        }
    }
    let core_file = root.join("netsvr-core/src/metrics.rs");
    let core = consts
        .into_iter()
        .filter(|(_, (_, file))| *file == core_file)
        .map(|(ident, (value, _))| (ident, value))
        .collect();
    Declared {
        names,
        histograms,
        core,
    }
}

/// The family a series name belongs to: `netsvr_x_seconds_bucket` → `netsvr_x_seconds`
/// when that is a histogram.
fn family<'a>(name: &'a str, histograms: &BTreeSet<String>) -> (&'a str, Option<&'static str>) {
    for suffix in HISTOGRAM_SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix)
            && histograms.contains(base)
        {
            return (base, Some(suffix));
        }
    }
    (name, None)
}

/// Problems with how the dashboard names metrics, given what the source declares.
fn name_problems(dash: &Value, declared: &Declared) -> Vec<String> {
    let mut problems = Vec::new();
    for name in mentioned_names(dash) {
        let (base, _) = family(&name, &declared.histograms);
        if !declared.names.contains(base) {
            problems.push(format!(
                "{name}: no metric of that name is declared in netsvr-core or netsvr-bin"
            ));
        }
    }
    let mut families = BTreeSet::new();
    for name in &queried_names(dash) {
        let (base, suffix) = family(name, &declared.histograms);
        families.insert(base.to_owned());
        if declared.histograms.contains(base) && suffix.is_none() {
            problems.push(format!(
                "{name} is a histogram: query {name}_bucket (or _sum / _count)"
            ));
        }
    }
    for (ident, name) in &declared.core {
        if !families.contains(name) {
            problems.push(format!(
                "netsvr_core::metrics::{ident} ({name}) is on no panel of the dashboard"
            ));
        }
    }
    problems
}

/// Problems with the dashboard's structure.
fn structure_problems(dash: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let vars = dash["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).cloned();
    match var("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        other => problems.push(format!(
            "templating needs a `datasource` variable of type datasource, query prometheus: {other:?}"
        )),
    }
    match var("instance") {
        Some(v) if v["type"] == "query" && v["datasource"]["uid"] == "${datasource}" => {}
        other => problems.push(format!(
            "templating needs an `instance` query variable on ${{datasource}}: {other:?}"
        )),
    }
    let uses_variable = |ds: &Value| ds["type"] == "prometheus" && ds["uid"] == "${datasource}";
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    let mut rows = 0;
    let mut all = Vec::new();
    for panel in dash["panels"].as_array().cloned().unwrap_or_default() {
        all.push(panel.clone());
        all.extend(panel["panels"].as_array().cloned().unwrap_or_default());
    }
    for panel in &all {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        match panel["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("panel id {id} is used twice ({title})")),
            None => problems.push(format!("panel `{title}` has no numeric id")),
        }
        if panel["gridPos"]["w"].as_u64().is_none() || panel["gridPos"]["h"].as_u64().is_none() {
            problems.push(format!("panel `{title}` has no gridPos"));
        }
        if panel["type"] == "row" {
            rows += 1;
            continue;
        }
        if !uses_variable(&panel["datasource"]) {
            problems.push(format!("panel `{title}` does not use ${{datasource}}"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel `{title}` has no targets"));
        }
        for target in &targets {
            let expr = target["expr"].as_str().unwrap_or("");
            if !expr.contains("netsvr_") {
                problems.push(format!("a target of `{title}` queries no netsvr metric"));
            }
            if !uses_variable(&target["datasource"]) {
                problems.push(format!(
                    "a target of `{title}` does not use ${{datasource}}"
                ));
            }
            if !expr.contains("$instance") {
                problems.push(format!("`{expr}` ({title}) ignores $instance"));
            }
            if expr.contains("_bucket") && !expr.contains("histogram_quantile(") {
                problems.push(format!("`{expr}` reads buckets outside histogram_quantile"));
            }
            queries += 1;
        }
    }
    if rows < 7 || queries < 20 {
        problems.push(format!("only {rows} rows and {queries} queries"));
    }
    problems
}

#[test]
fn dashboard_structure_and_names_match_the_source() {
    let dash = dashboard();
    let declared = declared();
    // The scan itself must find what is known to be there, or the check proves nothing.
    assert!(declared.core.len() >= 25, "found only {:?}", declared.core);
    for histogram in [
        "netsvr_handshake_seconds",
        "netsvr_fanout_seconds",
        "netsvr_sink_delivery_seconds",
        "netsvr_broker_lag_seconds",
    ] {
        assert!(
            declared.histograms.contains(histogram),
            "{histogram} not seen as a histogram"
        );
    }
    assert!(declared.names.contains("netsvr_tokio_alive_tasks"));
    let mut problems = structure_problems(&dash);
    problems.extend(name_problems(&dash, &declared));
    assert!(problems.is_empty(), "{DASHBOARD}:\n{}", problems.join("\n"));
}

#[test]
fn a_misspelt_or_bare_histogram_name_is_caught() {
    let declared = declared();
    let text = serde_json::to_string(&dashboard()).unwrap();
    let broken: Value =
        serde_json::from_str(&text.replacen("netsvr_drops_total", "netsvr_drop_total", 1)).unwrap();
    let problems = name_problems(&broken, &declared);
    assert!(
        problems.iter().any(|p| p.starts_with("netsvr_drop_total:")),
        "{problems:?}"
    );
    let bare: Value = serde_json::from_str(&text.replacen(
        "netsvr_handshake_seconds_bucket",
        "netsvr_handshake_seconds",
        1,
    ))
    .unwrap();
    // The same name in a description is no query: not a problem there.
    assert!(
        name_problems(&dashboard(), &declared).is_empty(),
        "the dashboard itself is wrong"
    );
    assert!(
        name_problems(&bare, &declared)
            .iter()
            .any(|p| p.contains("is a histogram")),
    );
    let unhooked: Value =
        serde_json::from_str(&text.replace("${datasource}", "prometheus-main")).unwrap();
    assert!(!structure_problems(&unhooked).is_empty());
}

/// `# TYPE name type` lines of a Prometheus exposition.
fn scraped_types(page: &str) -> BTreeMap<String, String> {
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_names_match_a_running_netsvr() {
    // An HTTP OnMessage callback to a closed loopback port: a buffered sink (`http`) whose
    // metrics families are then exported too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/message", closed.local_addr().unwrap());
    drop(closed);
    let extra = format!("[http]\non_message_url = \"{url}\"\nretry_max = \"1s\"\n");
    let config = common::temp_file("grafana.toml", &json_config(&extra));
    let server = Server::start(&config).await;
    let mut ws = common::connect(server.ws).await;
    common::send(&mut ws, "hello").await;
    common::send(&mut ws, "~6YOt5rW35piO~").await;
    // The message is counted once the connection task has read it.
    let mut page = String::new();
    for _ in 0..50 {
        let (code, body) = common::http_get(server.admin, "/metrics", None).await;
        assert_eq!(code, 200, "{body}");
        page = body;
        if page.contains("\nnetsvr_messages_in_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("\nnetsvr_messages_in_total 1"),
        "the message was not counted:\n{page}"
    );
    let scraped = scraped_types(&page);
    let declared = declared();
    let used = queried_names(&dashboard());
    let mut problems = Vec::new();
    // Every family exported by a default netsvr is on the dashboard, under its exact name.
    for (name, kind) in scraped.iter().filter(|(n, _)| n.starts_with("netsvr_")) {
        let on_dashboard = match kind.as_str() {
            "histogram" => HISTOGRAM_SUFFIXES
                .iter()
                .any(|s| used.contains(&format!("{name}{s}"))),
            _ => used.contains(name),
        };
        if !on_dashboard {
            problems.push(format!("{name} ({kind}) is exported but on no panel"));
        }
        if !declared.names.contains(name) {
            problems.push(format!("{name} is exported but no source literal names it"));
        }
    }
    // Every name the dashboard queries that this node exports has the type the query assumes.
    for name in &used {
        let (base, suffix) = family(name, &declared.histograms);
        let Some(kind) = scraped.get(base) else {
            continue;
        };
        let histogram = kind == "histogram";
        if histogram != suffix.is_some() {
            problems.push(format!(
                "the dashboard queries {name}, but /metrics has {base} as a {kind}"
            ));
        }
        if histogram && !page.contains(&format!("\n{base}_bucket{{")) {
            problems.push(format!("{base} is a histogram without buckets on /metrics"));
        }
    }
    // What this node exports: the core families, the buffered sink's, the runtime gauge.
    for expected in [
        "netsvr_connections",
        "netsvr_messages_in_total",
        "netsvr_drops_total",
        "netsvr_handshake_seconds",
        "netsvr_fanout_seconds",
        "netsvr_sink_queue_depth",
        "netsvr_sink_delivered_total",
        "netsvr_sink_delivery_seconds",
        "netsvr_tokio_alive_tasks",
    ] {
        if !scraped.contains_key(expected) {
            problems.push(format!("{expected} is not on /metrics"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n/metrics:\n{page}",
        problems.join("\n")
    );
    drop(ws);
    drop(server);
}
