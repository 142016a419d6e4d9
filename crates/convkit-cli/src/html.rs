//! The demo's `index.html`: one self-contained page (images as `data:` URIs, inline CSS, no
//! script, nothing fetched) showing the input, every kernel beside its output, the feature-map
//! grid and the table of stages.

use base64::Engine;

/// Text escaped for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A PNG as a `data:` URI.
pub fn png_uri(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

/// One output shown on the page: an image with the kernel that made it.
pub struct Figure<'a> {
    pub title: String,
    /// Kernels printed as matrices, each with a label (empty for none).
    pub matrices: Vec<(String, String)>,
    /// Image above its text instead of beside it (for wide images).
    pub wide: bool,
    pub caption: String,
    pub png: &'a [u8],
    /// Display width in CSS pixels; outputs of different sizes keep their relative scale.
    pub width: usize,
}

/// A section of figures.
pub struct Section<'a> {
    pub heading: String,
    pub intro: String,
    pub figures: Vec<Figure<'a>>,
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222;background:#fff}
h1{margin-bottom:.2rem}
.lead{color:#555;margin-top:0}
.grid{display:flex;flex-wrap:wrap;gap:1.5rem}
figure{margin:0;display:flex;gap:.8rem;align-items:flex-start;border:1px solid #ddd;border-radius:6px;padding:.8rem}
figure img{max-width:100%;height:auto;image-rendering:pixelated;border:1px solid #eee}
figcaption{font-size:.85rem;color:#444;max-width:16rem}
figcaption b{display:block;font-size:1rem;color:#000;margin-bottom:.3rem}
figure.wide{flex-direction:column}
figure.wide figcaption{max-width:none}
.ms{display:flex;flex-wrap:wrap;gap:0 1rem}
.ms span{font-size:.8rem;color:#000}
pre.k{font-size:.8rem;background:#f6f6f6;padding:.4rem .6rem;border-radius:4px;margin:.2rem 0 .5rem;white-space:pre-wrap}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin-top:.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f0f0f0}
footer{margin-top:2rem;font-size:.8rem;color:#666}";

/// The whole page.
pub fn page(
    lead: &str,
    sections: &[Section],
    table_head: &[&str],
    table: &[Vec<String>],
    footer: &str,
) -> String {
    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    h += "<title>convkit demo</title>\n<style>\n";
    h += STYLE;
    h += "\n</style>\n</head>\n<body>\n<h1>convkit demo</h1>\n";
    h += &format!("<p class=\"lead\">{}</p>\n", escape(lead));
    for s in sections {
        h += &format!("<h2>{}</h2>\n", escape(&s.heading));
        if !s.intro.is_empty() {
            h += &format!("<p>{}</p>\n", escape(&s.intro));
        }
        h += "<div class=\"grid\">\n";
        for f in &s.figures {
            h += if f.wide { "<figure class=\"wide\">\n" } else { "<figure>\n" };
            h += &format!(
                "<img src=\"{}\" width=\"{}\" alt=\"{}\">\n",
                png_uri(f.png),
                f.width,
                escape(&f.title)
            );
            h += &format!("<figcaption><b>{}</b>", escape(&f.title));
            if !f.matrices.is_empty() {
                h += "<div class=\"ms\">";
                for (label, m) in &f.matrices {
                    h += "<div>";
                    if !label.is_empty() {
                        h += &format!("<span>{}</span>", escape(label));
                    }
                    h += &format!("<pre class=\"k\">{}</pre></div>", escape(m));
                }
                h += "</div>";
            }
            h += &format!("{}</figcaption>\n</figure>\n", escape(&f.caption));
        }
        h += "</div>\n";
    }
    h += "<h2>Stages</h2>\n<div class=\"scroll\"><table>\n<tr>";
    for c in table_head {
        h += &format!("<th>{}</th>", escape(c));
    }
    h += "</tr>\n";
    for row in table {
        h += "<tr>";
        for c in row {
            h += &format!("<td>{}</td>", escape(c));
        }
        h += "</tr>\n";
    }
    h += "</table></div>\n";
    h += &format!("<footer>{}</footer>\n</body>\n</html>\n", escape(footer));
    h
}
