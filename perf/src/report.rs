//! The machine-readable last line of a report: `key=value` pairs separated by
//! single spaces, in a fixed order, so scripts can parse it with `split`.

use std::fmt::Write as _;

/// Builder of one `key=value key=value ...` line.
#[derive(Debug, Default, Clone)]
pub struct SummaryLine {
    text: String,
}

impl SummaryLine {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        debug_assert!(
            !key.is_empty() && !key.contains([' ', '=']),
            "summary keys are single words: {key:?}"
        );
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
    }

    /// Adds an integer value.
    pub fn int(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    /// Adds a real value printed with `decimals` digits after the point.
    pub fn real(mut self, key: &str, value: f64, decimals: usize) -> Self {
        self.key(key);
        let _ = write!(self.text, "{value:.decimals$}");
        self
    }

    /// The finished line, without a newline.
    pub fn finish(self) -> String {
        self.text
    }
}

/// `numerator / denominator`, or `None` when the denominator is zero or not finite
/// (a ratio against a failed baseline means nothing).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator.is_finite() && denominator > 0.0 && numerator.is_finite() {
        Some(numerator / denominator)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_in_order() {
        let line = SummaryLine::new()
            .int("a_us", 12)
            .real("ratio", 1.0 / 3.0, 2)
            .real("mb", 2.0, 1)
            .finish();
        assert_eq!(line, "a_us=12 ratio=0.33 mb=2.0");
    }

    #[test]
    fn ratio_refuses_zero_denominator() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
    }
}
