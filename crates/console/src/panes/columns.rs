//! Table columns sized to what they hold. Each column gets the width of its widest cell
//! (header included); when the row is too wide the least useful columns are dropped, then
//! the shrinkable ones are cut (with an ellipsis); spare width goes to the wide column.
//! Pure, so the sizes at 80, 120 and 200 columns are tested without drawing.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// How a column behaves when space is short or spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    /// Dropped when space is short, lowest first; `None`: never dropped.
    pub drop_rank: Option<u8>,
    /// Cut (with an ellipsis) down to this width before essential columns are; `None`:
    /// never cut.
    pub min_cut: Option<u16>,
    /// Takes the spare width.
    pub wide: bool,
}

/// Display width of a text (wide characters count two).
pub fn width(text: &str) -> u16 {
    u16::try_from(Span::raw(text).width()).unwrap_or(u16::MAX)
}

/// `text` cut to `max` columns, ending in `…` when cut.
pub fn ellipsis(text: &str, max: u16) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let w = width(c.encode_utf8(&mut buf));
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` with every case-insensitive occurrence of `needle` highlighted (the filter's
/// matches). Texts whose lower case changes length are left plain rather than mis-marked.
pub fn highlight(text: String, needle: Option<&str>) -> Line<'static> {
    let Some(needle) = needle.map(str::to_lowercase).filter(|n| !n.is_empty()) else {
        return Line::from(text);
    };
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return Line::from(text);
    }
    let mark = Style::new()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let mut spans = Vec::new();
    let mut at = 0;
    for (start, _) in lower.match_indices(&needle) {
        let end = start + needle.len();
        if start < at || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        spans.push(Span::raw(text[at..start].to_string()));
        spans.push(Span::styled(text[start..end].to_string(), mark));
        at = end;
    }
    spans.push(Span::raw(text[at..].to_string()));
    Line::from(spans)
}

/// Widths for `columns` (`None`: not shown) whose widest cells are `natural`, in
/// `available` columns with `spacing` between shown columns.
pub fn fit(columns: &[Column], natural: &[u16], available: u16, spacing: u16) -> Vec<Option<u16>> {
    let mut widths: Vec<Option<u16>> = columns
        .iter()
        .zip(natural)
        .map(|(c, n)| Some((*n).max(width(c.header))))
        .collect();
    let total = |widths: &[Option<u16>]| -> u32 {
        let shown: Vec<u32> = widths.iter().flatten().map(|w| u32::from(*w)).collect();
        let gaps = u32::try_from(shown.len().saturating_sub(1)).unwrap_or(0);
        shown.iter().sum::<u32>() + gaps * u32::from(spacing)
    };
    let available32 = u32::from(available);
    // Drop the least useful columns while the row is too wide.
    while total(&widths) > available32 {
        let next = columns
            .iter()
            .enumerate()
            .filter(|(i, c)| widths[*i].is_some() && c.drop_rank.is_some())
            .min_by_key(|(_, c)| c.drop_rank);
        match next {
            Some((i, _)) => widths[i] = None,
            None => break,
        }
    }
    // Then cut the shrinkable ones, the widest first, one column at a time.
    while total(&widths) > available32 {
        let widest = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let w = widths[i]?;
                (w > c.min_cut?).then_some((i, w))
            })
            .max_by_key(|(_, w)| *w);
        match widest {
            Some((i, w)) => widths[i] = Some(w - 1),
            None => break,
        }
    }
    // Spare width to the wide column.
    let used = total(&widths);
    if used < available32
        && let Some(i) = columns
            .iter()
            .enumerate()
            .position(|(i, c)| c.wide && widths[i].is_some())
        && let Some(w) = widths[i]
    {
        let spare = u16::try_from(available32 - used).unwrap_or(0);
        widths[i] = Some(w.saturating_add(spare));
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 4] = [
        Column {
            header: "id",
            drop_rank: Some(1),
            min_cut: None,
            wide: false,
        },
        Column {
            header: "name",
            drop_rank: None,
            min_cut: Some(6),
            wide: false,
        },
        Column {
            header: "provider",
            drop_rank: Some(0),
            min_cut: None,
            wide: false,
        },
        Column {
            header: "reason",
            drop_rank: None,
            min_cut: Some(8),
            wide: true,
        },
    ];

    #[test]
    fn spare_width_goes_to_the_wide_column() {
        // 4 + 12 + 10 + 15 + 3 gaps = 44.
        let w = fit(&COLS, &[4, 12, 10, 15], 50, 1);
        assert_eq!(w, vec![Some(4), Some(12), Some(10), Some(21)]);
    }

    #[test]
    fn least_useful_columns_go_first_then_cells_are_cut() {
        let w = fit(&COLS, &[4, 12, 10, 15], 34, 1);
        assert_eq!(
            w,
            vec![Some(4), Some(12), None, Some(16)],
            "provider dropped"
        );
        let w = fit(&COLS, &[4, 12, 10, 15], 28, 1);
        assert_eq!(w, vec![None, Some(12), None, Some(15)], "then the id");
        // Then the widest shrinkable column is cut, never below its minimum.
        let w = fit(&COLS, &[4, 12, 10, 15], 20, 1);
        assert_eq!(w, vec![None, Some(10), None, Some(9)]);
        let w = fit(&COLS, &[4, 12, 10, 15], 5, 1);
        assert_eq!(w, vec![None, Some(6), None, Some(8)]);
    }

    #[test]
    fn filter_matches_are_marked_whatever_their_case() {
        let line = highlight("Grace HOPPER hopper".into(), Some("hop"));
        let marked: Vec<String> = line
            .spans
            .iter()
            .filter(|s| s.style.add_modifier.contains(Modifier::UNDERLINED))
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(marked, ["HOP", "hop"]);
        assert_eq!(line.to_string(), "Grace HOPPER hopper");
        assert_eq!(highlight("abc".into(), None).spans.len(), 1);
    }

    #[test]
    fn cut_text_ends_in_an_ellipsis() {
        assert_eq!(ellipsis("customer-ended-call", 30), "customer-ended-call");
        assert_eq!(ellipsis("customer-ended-call", 10), "customer-…");
        assert_eq!(width(&ellipsis("customer-ended-call", 10)), 10);
        assert_eq!(ellipsis("日本語テキスト", 5), "日本…");
        assert_eq!(ellipsis("abc", 0), "");
    }
}
