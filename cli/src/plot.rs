//! A loss curve as a small standalone SVG (a polyline with axes; no plotting dependency).

use std::fmt::Write;

/// Renders `values` (one per epoch) as an SVG line chart titled `title`.
pub fn loss_svg(title: &str, values: &[f32]) -> String {
    let (w, h, m) = (640.0f32, 360.0f32, 50.0f32);
    let max = values.iter().copied().fold(f32::MIN, f32::max).max(1e-12);
    let min = values.iter().copied().fold(f32::MAX, f32::min).min(max);
    let span = (max - min).max(max * 1e-3);
    let n = values.len().max(2) - 1;
    let x = |i: usize| m + (w - 2.0 * m) * i as f32 / n as f32;
    let y = |v: f32| h - m - (h - 2.0 * m) * (v - min) / span;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        w / 2.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    let _ =
        writeln!(s, "<line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>", h - m, w - m, h - m);
    let _ = writeln!(s, "<line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>", h - m);
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>", w / 2.0, h - 12.0);
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.4}</text>", m - 4.0, m + 4.0);
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{min:.4}</text>", m - 4.0, h - m);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        w - m,
        h - m + 16.0,
        values.len()
    );
    let pts: Vec<String> =
        values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
        pts.join(" ")
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn falling_values_draw_a_falling_line() {
        let svg = super::loss_svg("loss", &[1.0, 0.5, 0.25]);
        let pts = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        let ys: Vec<f32> = pts.split(' ').map(|p| p.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert!(ys[0] < ys[1] && ys[1] < ys[2], "SVG y grows downwards: {ys:?}");
    }
}
