//! Results as a human table and as JSON.

use serde_json::{json, Value};
use std::path::Path;

/// One run's report: `{"scenario", "params", "hub", "results"}`.
pub fn make(scenario: &str, params: Value, hub: Value, results: Value) -> Value {
    json!({"scenario": scenario, "params": params, "hub": hub, "results": results})
}

/// Prints a report as a table and writes it as JSON (when asked).
pub fn emit(report: &Value, json_path: Option<&Path>) -> Result<(), String> {
    println!(
        "scenario: {}",
        report["scenario"].as_str().unwrap_or_default()
    );
    for part in ["params", "hub", "results"] {
        print_object(part, &report[part]);
    }
    write_json(report, json_path)
}

/// Writes a JSON report, pretty-printed (nothing without a path).
pub fn write_json(report: &Value, json_path: Option<&Path>) -> Result<(), String> {
    if let Some(path) = json_path {
        std::fs::write(
            path,
            serde_json::to_string_pretty(report).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_object(title: &str, value: &Value) {
    println!("  {title}:");
    if let Value::Object(map) = value {
        for (k, v) in map {
            match v {
                Value::Object(inner) => println!("    {k:<28} {}", pairs(inner)),
                // Rows (`tenants`' nodes): one line each.
                Value::Array(rows) if rows.iter().all(Value::is_object) => {
                    for (i, row) in rows.iter().enumerate() {
                        if let Value::Object(inner) = row {
                            println!("    {:<28} {}", format!("{k}[{i}]"), pairs(inner));
                        }
                    }
                }
                other => println!("    {k:<28} {other}"),
            }
        }
    }
}

/// `key=value` pairs of an object, on one line.
fn pairs(map: &serde_json::Map<String, Value>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("  ")
}

/// An empty latency histogram (µs, three significant figures).
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    // Three significant figures are always valid: this cannot fail.
    hdrhistogram::Histogram::new(3).expect("histogram")
}

/// Waits for every receiver task and merges the histograms they return.
pub async fn merged(
    tasks: Vec<tokio::task::JoinHandle<hdrhistogram::Histogram<u64>>>,
) -> hdrhistogram::Histogram<u64> {
    let mut all = histogram();
    for task in tasks {
        if let Ok(h) = task.await {
            let _ = all.add(h);
        }
    }
    all
}

/// `{p50, p99, p999, max}` in milliseconds from a histogram of µs.
pub fn latency_ms(h: &hdrhistogram::Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "samples": h.len(),
    })
}
