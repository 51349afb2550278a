//! Plain-text tables with aligned columns, for human-readable reports.

use std::fmt::Write as _;

/// Text shown in a cell that has no value for its row.
pub const NOT_APPLICABLE: &str = "-";

/// A table: one header row, then rows of the same width.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new(headers: &[&str]) -> Self {
        assert!(!headers.is_empty(), "a table needs at least one column");
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn push_row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.headers.len(),
            "row width must match the header width"
        );
        self.rows.push(cells);
    }

    /// The table as text: the first column left-aligned (it names the row),
    /// the others right-aligned (they hold numbers), two spaces between.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                if i == 0 {
                    let _ = write!(text, "{cell:<w$}");
                } else {
                    let _ = write!(text, "{cell:>w$}");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule);
        for row in &self.rows {
            line(row);
        }
        out
    }
}

/// Formats an optional number with `decimals` digits, or [`NOT_APPLICABLE`].
pub fn cell_f64(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}"),
        None => NOT_APPLICABLE.to_owned(),
    }
}

/// Formats an optional integer, or [`NOT_APPLICABLE`].
pub fn cell_u64(value: Option<u64>) -> String {
    match value {
        Some(v) => v.to_string(),
        None => NOT_APPLICABLE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut t = Table::new(&["name", "value"]);
        t.push_row(vec!["a".into(), "1".into()]);
        t.push_row(vec!["longer".into(), "12345".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name    value");
        assert_eq!(lines[1], "------  -----");
        assert_eq!(lines[2], "a           1");
        assert_eq!(lines[3], "longer  12345");
    }

    #[test]
    #[should_panic(expected = "row width")]
    fn ragged_rows_are_refused() {
        let mut t = Table::new(&["a", "b"]);
        t.push_row(vec!["only one".into()]);
    }

    #[test]
    fn missing_values_print_a_dash() {
        assert_eq!(cell_f64(None, 2), "-");
        assert_eq!(cell_f64(Some(1.005), 1), "1.0");
        assert_eq!(cell_u64(Some(7)), "7");
    }
}
