//! `returnee report --chart`: families per day, per return type or per
//! destination province, as an SVG file (plotters, with no system fonts:
//! the SVG names a font and the viewer draws the text) or as bars on the
//! terminal.

use std::path::Path;

use plotters::prelude::*;
use returnee_shared::reference::display_name;
use returnee_shared::{GroupBy, Report};

use crate::config::Config;
use crate::error::CliError;

/// What a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Daily,
    ReturnType,
    Destination,
}

impl Kind {
    const ALL: [(Kind, &'static str); 3] = [
        (Kind::Daily, "daily"),
        (Kind::ReturnType, "return-type"),
        (Kind::Destination, "destination"),
    ];

    pub fn parse(s: &str) -> Result<Kind, String> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        Kind::ALL
            .iter()
            .find(|(_, name)| *name == t)
            .map(|(k, _)| *k)
            .ok_or_else(|| format!("'{s}' is not a chart; use daily, return-type or destination"))
    }

    /// The breakdown the chart draws.
    pub fn by(self) -> GroupBy {
        match self {
            Kind::Daily => GroupBy::Date,
            Kind::ReturnType => GroupBy::ReturnType,
            Kind::Destination => GroupBy::Destination,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Daily => "Families returned per day",
            Kind::ReturnType => "Families by return type",
            Kind::Destination => "Families by province of destination",
        }
    }
}

/// The bars: a label and a count each (a count below `small_cells` is
/// drawn as nothing and labelled `<N`).
fn bars(kind: Kind, report: &Report, small_cells: Option<u64>) -> Vec<(String, u64, bool)> {
    let mut out: Vec<(String, u64, bool)> = report
        .groups
        .iter()
        .flatten()
        .map(|g| {
            let n = g.totals.families;
            let hidden = small_cells.is_some_and(|t| n > 0 && n < t);
            (
                display_name(&g.key).to_string(),
                if hidden { 0 } else { n },
                hidden,
            )
        })
        .collect();
    if kind == Kind::Destination {
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    out
}

/// Draws the chart to `out` (an .svg file) or on the terminal.
pub fn draw(
    config: &Config,
    kind: Kind,
    report: &Report,
    small_cells: Option<u64>,
    out: Option<&Path>,
) -> Result<(), CliError> {
    let bars = bars(kind, report, small_cells);
    let Some(path) = out else {
        print!("{}", terminal(config, kind, &bars, small_cells));
        return Ok(());
    };
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => {}
        _ => {
            return Err(CliError::Usage(format!(
                "{} is not an .svg file; charts are written as SVG (--out FILE.svg), which any browser and most office tools open",
                path.display()
            )));
        }
    }
    let svg =
        svg(kind, &bars).map_err(|e| CliError::Other(format!("cannot draw the chart: {e}")))?;
    super::write_out(Some(path), svg.as_bytes())?;
    eprintln!(
        "wrote the chart ({} bars) to {}",
        bars.len(),
        path.display()
    );
    Ok(())
}

/// The chart as an SVG document.
pub fn svg(kind: Kind, bars: &[(String, u64, bool)]) -> Result<String, String> {
    let mut text = String::new();
    let width = (120 + 28 * bars.len() as u32).clamp(640, 2400);
    {
        let root = SVGBackend::with_string(&mut text, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(kind.title(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(if kind == Kind::Daily { 70 } else { 50 })
            .y_label_area_size(50)
            .build_cartesian_2d((0..n as u32).into_segmented(), 0u64..top + top / 10 + 1)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("families")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as u32), 0),
                        (SegmentValue::Exact(i as u32 + 1), b.1),
                    ],
                    RGBColor(0x1f, 0x5f, 0x99).filled(),
                );
                r.set_margin(0, 0, 3, 3);
                r
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

/// Horizontal bars for the terminal, scaled to 80 columns.
fn terminal(
    config: &Config,
    kind: Kind,
    bars: &[(String, u64, bool)],
    small: Option<u64>,
) -> String {
    let mut out = format!("{}\n", kind.title());
    if bars.is_empty() {
        out.push_str("(no families)\n");
        return out;
    }
    let label_width = bars
        .iter()
        .map(|b| b.0.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let top = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let room = 80usize.saturating_sub(label_width + 12).max(10) as u64;
    let block = if config.color { '█' } else { '#' };
    for (label, n, hidden) in bars {
        let label: String = label.chars().take(label_width).collect();
        let len = (n * room).div_ceil(top) as usize;
        let shown = if *hidden {
            format!("<{}", small.unwrap_or(0))
        } else {
            n.to_string()
        };
        out.push_str(&format!(
            "{label:<label_width$} {} {shown}\n",
            block.to_string().repeat(len)
        ));
    }
    out
}
