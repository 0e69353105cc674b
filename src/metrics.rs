//! Prometheus metrics in the text exposition format: SCIM requests by resource, method and
//! status; sync runs by outcome with their durations; the store file's size.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    syncs: Mutex<BTreeMap<String, (u64, f64)>>,
}

impl Metrics {
    /// Counts one SCIM request. Methods outside HTTP's standard set count as `other`, so a
    /// client cannot add a label value per request.
    pub fn record_request(&self, resource: &'static str, method: &str, status: u16) {
        const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
        let method = METHODS.into_iter().find(|known| *known == method).unwrap_or("other");
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((resource, method.to_string(), status)).or_default() += 1;
        }
    }

    pub fn record_sync(&self, outcome: &str, seconds: f64) {
        if let Ok(mut syncs) = self.syncs.lock() {
            let entry = syncs.entry(outcome.to_string()).or_default();
            entry.0 += 1;
            entry.1 += seconds;
        }
    }

    /// Renders every metric; `store_bytes` is read by the caller at scrape time.
    pub fn render(&self, store_bytes: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP idpsync_scim_requests_total SCIM requests by resource, method and status.\n");
        out.push_str("# TYPE idpsync_scim_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((resource, method, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "idpsync_scim_requests_total{{resource=\"{resource}\",method=\"{method}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP idpsync_sync_runs_total Sync runs by outcome.\n");
        out.push_str("# TYPE idpsync_sync_runs_total counter\n");
        out.push_str("# HELP idpsync_sync_duration_seconds_sum Total time spent in sync runs by outcome.\n");
        out.push_str("# TYPE idpsync_sync_duration_seconds_sum counter\n");
        if let Ok(syncs) = self.syncs.lock() {
            for (outcome, (count, seconds)) in syncs.iter() {
                let _ = writeln!(out, "idpsync_sync_runs_total{{outcome=\"{outcome}\"}} {count}");
                let _ = writeln!(out, "idpsync_sync_duration_seconds_sum{{outcome=\"{outcome}\"}} {seconds:.6}");
            }
        }
        out.push_str("# HELP idpsync_store_size_bytes Size of the store file.\n");
        out.push_str("# TYPE idpsync_store_size_bytes gauge\n");
        let _ = writeln!(out, "idpsync_store_size_bytes {store_bytes}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_requests_and_syncs() {
        let metrics = Metrics::default();
        metrics.record_request("Users", "GET", 200);
        metrics.record_request("Users", "GET", 200);
        metrics.record_sync("succeeded", 0.5);
        metrics.record_request("health", "ZZ1", 405);
        metrics.record_request("health", "ZZ2", 405);
        let text = metrics.render(4096);
        assert!(text.contains("idpsync_scim_requests_total{resource=\"Users\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("idpsync_scim_requests_total{resource=\"health\",method=\"other\",status=\"405\"} 2"), "{text}");
        assert!(!text.contains("ZZ1"));
        assert!(text.contains("idpsync_sync_runs_total{outcome=\"succeeded\"} 1"));
        assert!(text.contains("idpsync_store_size_bytes 4096"));
    }
}
