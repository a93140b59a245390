//! Shared pieces of the self-contained HTML that checkers draw: escaping and
//! the page wrapper with faultline's stylesheet. No scripts or fonts are
//! fetched from anywhere: every page must open from a file with no network.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet every faultline page shares.
pub const STYLE: &str = r#"
:root { --ok:#2e7d32; --fail:#c62828; --info:#ef6c00; --muted:#666; --bg:#fafafa; --line:#ddd; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; background: #fff; }
h1, h2, h3 { line-height: 1.2; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: .6em .8em; overflow-x: auto; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid var(--line); padding: .25em .6em; text-align: left; vertical-align: top; }
.valid { color: var(--ok); font-weight: 600; }
.invalid { color: var(--fail); font-weight: 600; }
.unknown { color: var(--info); font-weight: 600; }
.muted { color: var(--muted); }
.explanation { background: #fff8e1; border-left: 4px solid #ffb300; padding: .5em .9em; margin: .6em 0; white-space: pre-wrap; }
svg text { font-family: ui-monospace, Menlo, Consolas, monospace; }
"#;

/// Wraps a body fragment into a complete, self-contained HTML document.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
