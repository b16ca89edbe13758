//! How the CLI prints: one line per item on stdout, for people (aligned columns) or,
//! with `--json`, as JSON Lines (one JSON object per line). Progress and notes
//! ("watching pink …") go to stderr in both modes, so stdout holds only results.

use super::CliError;
use serde_json::Value;
use std::io::Write;

/// Where results go, and in which form.
#[derive(Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Human lines, or JSON Lines when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether results are JSON Lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one item: `human()` for people, or `json` as one line. Flushed at once,
    /// so a reader of a pipe sees each item as it comes.
    pub fn item(&self, human: impl FnOnce() -> String, json: &Value) -> Result<(), CliError> {
        let line = if self.json { json.to_string() } else { human() };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    }

    /// Prints a table for people (no-op with `--json`): a header, then the rows, each
    /// column as wide as its widest cell; the last column is not padded.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
        if self.json {
            return Ok(());
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(rows) {
            writeln!(out, "{}", aligned(row, &widths))?;
        }
        out.flush()?;
        Ok(())
    }

    /// A note for people on stderr (both modes).
    pub fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// `cells` joined by two spaces, each padded to its width but the last.
pub fn aligned(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if i + 1 < cells.len() {
            let width = widths.get(i).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
    }
    line
}

/// `text` padded with spaces to at least `width` characters.
pub fn pad(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC); `?` outside the years 1 to 9999.
pub fn utc(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| "?".into())
}

/// The time an entry id was added (its millisecond part), as [`utc`].
pub fn entry_time(entry_id: &str) -> String {
    entry_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse::<i64>().ok())
        .map_or_else(|| "?".into(), |ms| utc(ms.div_euclid(1000)))
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_704_556_800), "2024-01-06 16:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(-1), "1969-12-31 23:59:59");
        assert_eq!(entry_time("1704556800123-4"), "2024-01-06 16:00:00");
    }

    #[test]
    fn columns_align_and_text_is_shortened() {
        let widths = [5, 3];
        let row = |a: &str, b: &str, c: &str| vec![a.to_owned(), b.to_owned(), c.to_owned()];
        assert_eq!(
            aligned(&row("ab", "c", "tail"), &widths),
            "ab     c    tail"
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
