//! The daily arrivals chart: families per day as bars, drawn on the server
//! as SVG with plotters (no script, no font files: the text is SVG text).

use chrono::NaiveDate;
use plotters::prelude::*;

/// Bars wider than this many days get a label each; past it, about ten labels.
const LABEL_EVERY_DAY: usize = 16;

/// An SVG of `days` (each day of the range and its families, in order),
/// described for screen readers by `label`.
pub fn daily_arrivals(days: &[(NaiveDate, u64)], label: &str) -> Result<String, String> {
    let mut svg = String::new();
    let n = days.len().max(1);
    let top = days.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1);
    // Head room above the tallest bar, and a round top for the axis.
    let top = (top as f64 * 1.1).ceil();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        let step = if n <= LABEL_EVERY_DAY {
            1
        } else {
            n.div_ceil(10)
        };
        let label_of = |x: &f64| {
            let i = x.floor() as usize;
            match days.get(i) {
                Some((d, _)) if i.is_multiple_of(step) && (x - x.floor() - 0.5).abs() < 1e-6 => {
                    d.format("%-d %b").to_string()
                }
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&label_of)
            .y_labels(6)
            .y_label_formatter(&|y| format!("{}", y.round() as u64))
            .y_desc("families")
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .light_line_style(RGBColor(230, 233, 238))
            .draw()
            .map_err(|e| e.to_string())?;
        let bar = RGBColor(11, 92, 173).filled();
        chart
            .draw_series(days.iter().enumerate().map(|(i, (_, c))| {
                Rectangle::new([(i as f64 + 0.12, 0.0), (i as f64 + 0.88, *c as f64)], bar)
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    // An image with a name for screen readers; the numbers are in the CSV.
    let named = format!(
        r#"<svg role="img" aria-label="{}" "#,
        maud::html! { (label) }.into_string()
    );
    Ok(svg.replacen("<svg ", &named, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_one_bar_per_day_and_a_name() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let svg =
            daily_arrivals(&[(d(1), 3), (d(2), 0), (d(3), 7)], "Families per day").expect("chart");
        assert!(svg.starts_with(r#"<svg role="img" aria-label="Families per day" "#));
        assert!(svg.contains("1 Nov") && svg.contains("3 Nov"), "{svg}");
        // The background, and one rectangle per day (a zero-height one too).
        assert_eq!(svg.matches("<rect").count(), 1 + 3, "{svg}");
    }
}
