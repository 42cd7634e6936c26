//! `returnee report --chart`: families per day, per return type or per
//! destination province, as an SVG or PNG file (plotters) or as bars on
//! the terminal. The text is laid out (and, in a PNG, drawn) with DejaVu
//! Sans, built into the binary (`cli/assets/fonts`, Bitstream Vera
//! licence): a laptop needs no system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;

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
    let bytes = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => svg(kind, &bars).map(String::into_bytes),
        Some("png") => png(kind, &bars),
        _ => {
            return Err(CliError::Usage(format!(
                "{} is neither an .svg nor a .png file; name the chart FILE.svg (any browser and most office tools open it) or FILE.png",
                path.display()
            )));
        }
    }
    .map_err(|e| CliError::Other(format!("cannot draw the chart: {e}")))?;
    super::write_out(Some(path), &bytes)?;
    eprintln!(
        "wrote the chart ({} bar{}) to {}",
        bars.len(),
        if bars.len() == 1 { "" } else { "s" },
        path.display()
    );
    Ok(())
}

/// The font every chart's text is measured and drawn with.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are this crate's own file: a failure is a build defect.
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the built-in font is a valid TrueType font"));
    });
}

const HEIGHT: u32 = 420;

fn width(bars: &[(String, u64, bool)]) -> u32 {
    (120 + 28 * bars.len() as u32).clamp(640, 2400)
}

/// The chart as an SVG document.
pub fn svg(kind: Kind, bars: &[(String, u64, bool)]) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width(bars), HEIGHT)).into_drawing_area();
        plot(&root, kind, bars)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

/// The chart as a PNG image.
pub fn png(kind: Kind, bars: &[(String, u64, bool)]) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = (width(bars), HEIGHT);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        plot(&root, kind, bars)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Draws the bars on `root`, whatever the backend.
fn plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    kind: Kind,
    bars: &[(String, u64, bool)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let top = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(kind.title(), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(if kind == Kind::Daily { 70 } else { 50 })
        .y_label_area_size(50)
        // A segmented range holds its last value too: n bars, 0..n-1 (one
        // bar alone gets a slot beside it, or it would fill no width).
        .build_cartesian_2d(
            (0..(n as u32 - 1).max(1)).into_segmented(),
            0u64..top + top / 10 + 1,
        )
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
    Ok(())
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
