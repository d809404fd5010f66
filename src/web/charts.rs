//! Charts drawn on the server as SVG (printable, no script): the WHO growth curves with a child's
//! measurements.

use crate::child::service::GrowthSeries;
use crate::growth::model::Indicator;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One growth chart: x in days of age (shown in months), y in kg or cm; the −3, −2, 0, +2, +3 SD
/// curves of the WHO standard for her sex, and her points joined in time order. The x range runs
/// to the year after her last measurement (at least two years), within the standard's 0–1856 days.
pub fn growth_svg(s: &GrowthSeries) -> String {
    let (w, h) = (640.0_f64, 360.0_f64);
    let (left, right, top, bottom) = (48.0, 16.0, 18.0, 40.0);
    let last = s.points.iter().map(|p| p.0).fold(0.0_f64, f64::max);
    let x_max = ((last / 365.25).floor() + 1.0).clamp(2.0, 5.0) * 365.25;
    let x_max = x_max.min(1856.0);
    let in_range = |p: &&(f64, f64)| p.0 <= x_max;
    let values = s
        .curves
        .iter()
        .flat_map(|(_, c)| c.iter().filter(in_range).map(|p| p.1))
        .chain(s.points.iter().filter(in_range).map(|p| p.1));
    let (mut y_min, mut y_max) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if y_min > y_max {
        (y_min, y_max) = (0.0, 1.0);
    }
    // A round step (1, 2, 5 × 10ⁿ) giving about five gridlines.
    let raw = (y_max - y_min).max(1.0) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let (y_min, y_max) = ((y_min / step).floor() * step, (y_max / step).ceil() * step);
    let px = |x: f64| left + (x / x_max) * (w - left - right);
    let py = |y: f64| top + (1.0 - (y - y_min) / (y_max - y_min).max(1e-9)) * (h - top - bottom);
    let unit = match s.indicator {
        Indicator::WeightForAge => "kg",
        _ => "cm",
    };
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="growth-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}（世界卫生组织2006年儿童生长标准）</title>"#,
        esc(s.label),
        esc(s.label)
    );
    // Grid: every 3 months, and 5 y-steps.
    let mut m = 0.0;
    while m * 30.4375 <= x_max + 1.0 {
        let x = px(m * 30.4375);
        out.push_str(&format!(
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e2e8f0"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#66788a">{m}</text>"##,
            h - bottom,
            h - bottom + 14.0
        ));
        m += 3.0;
    }
    out.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#66788a">月龄</text>"##,
        (left + w - right) / 2.0,
        h - 6.0
    ));
    let lines = ((y_max - y_min) / step).round() as i32;
    for i in 0..=lines {
        let v = y_min + step * f64::from(i);
        let y = py(v);
        out.push_str(&format!(
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#66788a">{v}</text>"##,
            w - right,
            left - 4.0,
            y + 3.0
        ));
    }
    out.push_str(&format!(
        r##"<text x="12" y="{top}" font-size="11" fill="#66788a">{unit}</text>"##
    ));
    for (z, curve) in &s.curves {
        let pts: Vec<String> = curve
            .iter()
            .filter(in_range)
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let (stroke, width) = match z.abs() as i32 {
            0 => ("#2f855a", 1.6),
            2 => ("#dd6b20", 1.2),
            _ => ("#c53030", 1.0),
        };
        out.push_str(&format!(
            r#"<polyline class="sd sd{z}" fill="none" stroke="{stroke}" stroke-width="{width}" points="{}"/>"#,
            pts.join(" ")
        ));
        if let Some((x, y)) = curve.iter().rfind(|p| in_range(p)) {
            let label = if *z == 0.0 {
                "中位数".to_string()
            } else {
                format!("{z:+}SD")
            };
            out.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" font-size="9" fill="{stroke}">{label}</text>"#,
                (px(*x) - 28.0).max(left),
                py(*y) - 2.0
            ));
        }
    }
    let mine: Vec<&(f64, f64)> = s.points.iter().filter(in_range).collect();
    if mine.len() > 1 {
        let pts: Vec<String> = mine
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        out.push_str(&format!(
            r##"<polyline class="child-line" fill="none" stroke="#b83280" stroke-width="2" points="{}"/>"##,
            pts.join(" ")
        ));
    }
    for (x, y) in mine {
        out.push_str(&format!(
            r##"<circle class="child-point" cx="{:.1}" cy="{:.1}" r="3.5" fill="#b83280"><title>{:.0} 天：{y} {unit}</title></circle>"##,
            px(*x),
            py(*y),
            x
        ));
    }
    out.push_str("</svg>");
    out
}

/// One series of a trend chart: its name, colour and (gestational day, value) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: &'a [(f64, f64)],
}

/// A pregnancy trend (x: gestational weeks 0–42): her series joined in time order, reference
/// lines (value, label) such as BP 140/90 or Hb 110/100/70, and optionally a recommended band
/// (day, low, high) drawn shaded — weight gain for her BMI class.
pub fn trend_svg(
    title: &str,
    unit: &str,
    series: &[Series<'_>],
    refs: &[(f64, &str)],
    band: &[(f64, f64, f64)],
) -> String {
    let (w, h) = (640.0_f64, 260.0_f64);
    let (left, right, top, bottom) = (48.0, 16.0, 18.0, 36.0);
    let x_max = 42.0 * 7.0;
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(refs.iter().map(|r| r.0))
        .chain(band.iter().flat_map(|b| [b.1, b.2]));
    let (mut y_min, mut y_max) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if y_min > y_max {
        (y_min, y_max) = (0.0, 1.0);
    }
    let raw = (y_max - y_min).max(1.0) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let (y_min, y_max) = ((y_min / step).floor() * step, (y_max / step).ceil() * step);
    let px = |x: f64| left + (x.clamp(0.0, x_max) / x_max) * (w - left - right);
    let py = |y: f64| top + (1.0 - (y - y_min) / (y_max - y_min).max(1e-9)) * (h - top - bottom);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    for week in (0..=42).step_by(4) {
        let x = px(f64::from(week) * 7.0);
        out.push_str(&format!(
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e2e8f0"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#66788a">{week}</text>"##,
            h - bottom,
            h - bottom + 14.0
        ));
    }
    out.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#66788a">孕周</text><text x="12" y="{top}" font-size="11" fill="#66788a">{}</text>"##,
        (left + w - right) / 2.0,
        h - 4.0,
        esc(unit)
    ));
    let lines = ((y_max - y_min) / step).round() as i32;
    for i in 0..=lines {
        let v = y_min + step * f64::from(i);
        let y = py(v);
        out.push_str(&format!(
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#edf2f7"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#66788a">{v}</text>"##,
            w - right,
            left - 4.0,
            y + 3.0
        ));
    }
    if !band.is_empty() {
        let upper = band.iter().map(|(x, _, hi)| format!("{:.1},{:.1}", px(*x), py(*hi)));
        let lower = band
            .iter()
            .rev()
            .map(|(x, lo, _)| format!("{:.1},{:.1}", px(*x), py(*lo)));
        out.push_str(&format!(
            r##"<polygon class="band" fill="#c6f6d5" fill-opacity="0.6" stroke="none" points="{}"/>"##,
            upper.chain(lower).collect::<Vec<_>>().join(" ")
        ));
    }
    for (v, label) in refs {
        let y = py(*v);
        out.push_str(&format!(
            r##"<line class="ref" x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c53030" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="end" fill="#c53030">{}</text>"##,
            w - right,
            w - right - 2.0,
            y - 2.0,
            esc(label)
        ));
    }
    for s in series {
        if s.points.len() > 1 {
            let pts: Vec<String> = s
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            out.push_str(&format!(
                r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                s.colour,
                pts.join(" ")
            ));
        }
        for (x, y) in s.points {
            out.push_str(&format!(
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{} {}+{}：{y} {}</title></circle>"#,
                px(*x),
                py(*y),
                s.colour,
                esc(s.name),
                (*x as i64).div_euclid(7),
                (*x as i64).rem_euclid(7),
                esc(unit)
            ));
        }
    }
    out.push_str("</svg>");
    out
}

/// The five-colour timeline: one bar per confirmed grade from the day it was confirmed until
/// the next (or today / the delivery), on the same 0–42 week axis.
pub fn grade_strip_svg(grades: &[(f64, f64, String, String)]) -> String {
    let (w, h) = (640.0_f64, 56.0_f64);
    let (left, right) = (48.0, 16.0);
    let x_max = 42.0 * 7.0;
    let px = |x: f64| left + (x.clamp(0.0, x_max) / x_max) * (w - left - right);
    let fill = |c: &str| match c {
        "green" => "#38a169",
        "yellow" => "#ecc94b",
        "orange" => "#dd6b20",
        "red" => "#c53030",
        _ => "#805ad5",
    };
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="grade-strip" viewBox="0 0 {w} {h}" role="img" aria-label="五色分级时间线"><title>五色分级时间线</title>"#
    );
    for (from, to, colour, label) in grades {
        let (x0, x1) = (px(*from), px(*to).max(px(*from) + 2.0));
        out.push_str(&format!(
            r#"<rect class="grade grade-{colour}" x="{x0:.1}" y="8" width="{:.1}" height="22" fill="{}"><title>{} 孕 {}+{} 起</title></rect>"#,
            x1 - x0,
            fill(colour),
            esc(label),
            (*from as i64).div_euclid(7),
            (*from as i64).rem_euclid(7)
        ));
    }
    for week in (0..=42).step_by(4) {
        out.push_str(&format!(
            r##"<text x="{:.1}" y="46" font-size="10" text-anchor="middle" fill="#66788a">{week}</text>"##,
            px(f64::from(week) * 7.0)
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_the_five_curves_and_her_points() {
        let s = GrowthSeries {
            indicator: Indicator::WeightForAge,
            label: "年龄别体重",
            curves: [-3.0, -2.0, 0.0, 2.0, 3.0]
                .into_iter()
                .map(|z| (z, vec![(0.0, 3.3 + z * 0.4), (365.0, 9.5 + z)]))
                .collect(),
            points: vec![(30.0, 4.5), (120.0, 6.2)],
        };
        let svg = growth_svg(&s);
        assert_eq!(svg.matches("<polyline class=\"sd").count(), 5);
        assert_eq!(svg.matches("class=\"child-point\"").count(), 2);
        assert!(svg.contains("child-line") && svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn a_trend_has_her_points_the_reference_lines_and_the_band() {
        let pts = [(84.0, 1.0), (140.0, 3.5), (200.0, 7.0)];
        let band = [(0.0, 0.0, 0.0), (91.0, 0.0, 2.0), (280.0, 7.0, 14.0)];
        let svg = trend_svg(
            "孕期体重增长",
            "kg",
            &[Series {
                name: "体重增长",
                colour: "#2b6cb0",
                points: &pts,
            }],
            &[],
            &band,
        );
        assert_eq!(svg.matches("class=\"point\"").count(), 3);
        assert!(svg.contains("class=\"band\"") && svg.contains("12+0"), "{svg}");
        let bp = trend_svg("血压", "mmHg", &[], &[(140.0, "140"), (90.0, "90")], &[]);
        assert_eq!(bp.matches("class=\"ref\"").count(), 2);
        let strip = grade_strip_svg(&[
            (70.0, 140.0, "yellow".into(), "黄色".into()),
            (140.0, 200.0, "orange".into(), "橙色".into()),
        ]);
        assert!(strip.contains("grade-yellow") && strip.contains("grade-orange") && strip.contains("橙色 孕 20+0 起"));
    }
}
