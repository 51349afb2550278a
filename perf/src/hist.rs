//! Latency histograms in microseconds, and the summary figures the reports print.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency a histogram holds; slower samples are clamped to it.
const LATENCY_MAX_US: u64 = 60_000_000;
/// Three significant digits: 0.1% error, enough to compare p99 figures.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram with 1 µs resolution, up to one minute.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, LATENCY_MAX_US, SIGNIFICANT_DIGITS)
            .expect("constant bounds 1..60e6 with 3 significant digits are valid for hdrhistogram");
        LatencyHistogram { hist }
    }

    /// Adds one sample. Sub-microsecond samples count as 1 µs, samples beyond
    /// the range as the maximum, so no sample is ever dropped.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us.clamp(1, LATENCY_MAX_US));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Both histograms have the same bounds, so adding cannot fail.
        self.hist
            .add(&other.hist)
            .expect("histograms built by LatencyHistogram::new share their bounds");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// The underlying HdrHistogram (for percentile listings).
    pub fn hdr(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The percentiles the reports use; `None` when there is no sample.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: self.hist.len(),
            p50_us: self.hist.value_at_quantile(0.50),
            p99_us: self.hist.value_at_quantile(0.99),
            p999_us: self.hist.value_at_quantile(0.999),
            max_us: self.hist.max(),
            mean_us: self.hist.mean(),
        })
    }
}

/// Percentiles of one latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_has_no_summary() {
        assert_eq!(LatencyHistogram::new().summary(), None);
    }

    #[test]
    fn percentiles_follow_the_samples() {
        let mut h = LatencyHistogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary().expect("1000 samples were recorded");
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert_eq!(s.max_us, 1000);
    }

    #[test]
    fn out_of_range_samples_are_clamped_not_dropped() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(10));
        h.record(Duration::from_secs(3600));
        let s = h.summary().expect("two samples were recorded");
        assert_eq!(s.count, 2);
        assert_eq!(s.p50_us, 1);
        assert!(s.max_us >= LATENCY_MAX_US);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(Duration::from_micros(100));
        b.record(Duration::from_micros(300));
        a.merge(&b);
        assert_eq!(a.count(), 2);
    }
}
