//! The overview: totals for a date range and crossing (by default the last
//! 7 days, every site the session may see), the daily arrivals chart, the
//! split by return type, departure and destination province, the summary
//! sentence (`returnee_shared::report::summary`, as `returnee report
//! --summary` writes it), and the same report as CSV, XLSX or HXL (written
//! by `returnee_shared::report::render`, as `GET /v1/reports?format=`).
//! Every number is what `GET /v1/reports` answers for the same filter and
//! device: the same filter type, the same store scan, the same site rule.

use actix_web::HttpResponse;
use actix_web::web;
use chrono::{Days, NaiveDate, Utc};
use maud::{Markup, html};
use returnee_shared::access::Action;
use returnee_shared::reference;
use returnee_shared::report::summary::{self, thousands};
use returnee_shared::report::{RenderOptions, ReportFormat, render};
use returnee_shared::validate::{parse_crossing, parse_date_only};
use returnee_shared::{Group, GroupBy, Report, ReportBuilder, ReportFilter, Totals};
use serde::Deserialize;

use super::layout::{self, Nav};
use super::session::Signed;
use super::{DashError, State, blocking, chart, html};

/// The longest range shown at once (a chart of more days is unreadable).
const MAX_DAYS: u64 = 731;

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD&crossing=CODE` (each may be empty).
#[derive(Debug, Default, Deserialize)]
pub struct OverviewParams {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    crossing: String,
    /// For a download: csv (default), xlsx or hxl.
    #[serde(default)]
    format: String,
}

/// The filter a request asks for, with its dates resolved.
struct Asked {
    from: NaiveDate,
    to: NaiveDate,
    crossing: Option<String>,
}

impl Asked {
    fn of(p: &OverviewParams, today: NaiveDate) -> Result<Asked, DashError> {
        let bad = |m: String| DashError::BadInput(m);
        let date = |field: &str, text: &str| {
            parse_date_only(field, text.trim()).map_err(|p| bad(p.to_string()))
        };
        let to = match p.to.trim() {
            "" => today,
            t => date("to", t)?,
        };
        let from = match p.from.trim() {
            "" => to.checked_sub_days(Days::new(6)).unwrap_or(to),
            f => date("from", f)?,
        };
        if from > to {
            return Err(bad(format!(
                "the range starts ({from}) after it ends ({to}); swap the dates"
            )));
        }
        if (to - from).num_days() as u64 >= MAX_DAYS {
            return Err(bad(format!(
                "the range is over {MAX_DAYS} days; choose a shorter one"
            )));
        }
        let crossing = match p.crossing.trim() {
            "" => None,
            c => Some(parse_crossing(c).map_err(|p| bad(p.to_string()))?),
        };
        Ok(Asked { from, to, crossing })
    }

    fn filter(&self) -> ReportFilter {
        ReportFilter {
            crossing: self.crossing.clone(),
            from: Some(self.from),
            to: Some(self.to),
            ..ReportFilter::default()
        }
    }

    /// The query string that asks for this again (dates and a crossing code:
    /// nothing personal).
    fn query(&self) -> String {
        format!(
            "from={}&to={}&crossing={}",
            self.from,
            self.to,
            self.crossing.as_deref().unwrap_or("")
        )
    }
}

/// The splits the overview shows beside the daily chart (the ones the
/// summary sentence reads), with their titles.
const SPLITS: [(GroupBy, &str); 3] = [
    (GroupBy::ReturnType, "Return type"),
    (GroupBy::Departure, "Departure province"),
    (GroupBy::Destination, "Destination province"),
];

/// The formats offered for download, with their button labels.
const DOWNLOADS: [(ReportFormat, &str); 3] = [
    (ReportFormat::Csv, "CSV"),
    (ReportFormat::Xlsx, "Excel"),
    (ReportFormat::Hxl, "HXL"),
];

/// The report: by day, and by each split, in one scan of the store.
async fn report(state: &State, who: &Signed, asked: &Asked) -> Result<Report, DashError> {
    let device = who.authorize(Action::ReadReports)?.clone();
    let builder = ReportBuilder::new(asked.filter(), Some(GroupBy::Date))
        .with_breakdowns(&SPLITS.map(|(by, _)| by))
        .with_breakdowns(&summary::BREAKDOWNS);
    let store = state.store.clone();
    blocking(move || Ok(store.report(&device, builder)?)).await
}

/// `GET /dashboard/`.
pub async fn page(
    state: State,
    who: Signed,
    query: web::Query<OverviewParams>,
) -> Result<HttpResponse, DashError> {
    let asked = Asked::of(&query, Utc::now().date_naive())?;
    let report = report(&state, &who, &asked).await?;
    let totals = report.totals;
    let days = every_day(&asked, report.groups.as_deref().unwrap_or_default());
    let sentence = summary::sentence(&report, &asked.filter(), None);
    let chart = chart::daily_arrivals(
        &days,
        &format!(
            "Families arriving each day from {} to {}",
            asked.from, asked.to
        ),
    )
    .map_err(DashError::Internal)?;
    let crossings: Vec<_> = reference::crossings()
        .iter()
        .filter(|c| who.may(Action::SeeSite(&c.entry.code)))
        .collect();
    let body = html! {
        form.filter method="get" action="/dashboard/" {
            div { label for="from" { "From" } input id="from" name="from" type="date" value=(asked.from); }
            div { label for="to" { "To" } input id="to" name="to" type="date" value=(asked.to); }
            div {
                label for="crossing" { "Crossing" }
                select id="crossing" name="crossing" {
                    option value="" selected[asked.crossing.is_none()] { "Every site you may see" }
                    @for c in &crossings {
                        option value=(c.entry.code) selected[asked.crossing.as_deref() == Some(c.entry.code.as_str())] { (c.entry.name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        div.actions aria-label="Downloads" {
            span.muted { "Download the daily table:" }
            @for (format, label) in DOWNLOADS {
                a.button.secondary href={ "/dashboard/export?format=" (format.as_str()) "&" (asked.query()) } download { (label) }
            }
        }
        p.summary id="summary" { (sentence) }
        (cards(&totals))
        h2 { "Daily arrivals" }
        figure.chart id="daily-chart" { (maud::PreEscaped(chart)) }
        div.grid3 {
            @for (by, title) in SPLITS {
                section { h2 { (title) } (split(report.breakdown(by).unwrap_or_default())) }
            }
        }
    };
    Ok(html(layout::page("Overview", &who, Nav::Overview, body)))
}

fn cards(t: &Totals) -> Markup {
    let items = [
        ("families", "Families", t.families),
        ("individuals", "Individuals", t.individuals),
        ("men", "Men", t.men),
        ("women", "Women", t.women),
        ("children", "Children", t.children),
    ];
    html! {
        ul.cards aria-label="Totals" {
            @for (key, label, n) in items {
                li { span.n data-total=(key) { (thousands(n)) } span.k { (label) } }
            }
        }
    }
}

fn split(groups: &[Group]) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr { th scope="col" { "" } th.num scope="col" { "Families" } th.num scope="col" { "Individuals" } } }
                tbody {
                    @for g in groups {
                        tr { th scope="row" { (reference::display_name(&g.key)) } td.num { (thousands(g.totals.families)) } td.num { (thousands(g.totals.individuals)) } }
                    }
                    @if groups.is_empty() { tr { td colspan="3" .muted { "No families in this range." } } }
                }
            }
        }
    }
}

/// Every day of the range with its families (0 where none).
fn every_day(asked: &Asked, by_day: &[Group]) -> Vec<(NaiveDate, u64)> {
    let counted: std::collections::BTreeMap<&str, u64> = by_day
        .iter()
        .map(|g| (g.key.as_str(), g.totals.families))
        .collect();
    asked
        .from
        .iter_days()
        .take_while(|d| *d <= asked.to)
        .map(|d| (d, counted.get(d.to_string().as_str()).copied().unwrap_or(0)))
        .collect()
}

/// `GET /dashboard/export?format=csv|xlsx|hxl&from=…&to=…&crossing=…`:
/// the overview's report by day (and, in a spreadsheet, a sheet per
/// split), written as `GET /v1/reports?format=` writes it.
pub async fn export(
    state: State,
    who: Signed,
    query: web::Query<OverviewParams>,
) -> Result<HttpResponse, DashError> {
    let asked = Asked::of(&query, Utc::now().date_naive())?;
    let format = match query.format.trim() {
        "" => ReportFormat::Csv,
        f => ReportFormat::parse(f).map_err(DashError::BadInput)?,
    };
    if !DOWNLOADS.iter().any(|(f, _)| *f == format) {
        return Err(DashError::BadInput(format!(
            "the dashboard downloads {}; the API gives the others",
            DOWNLOADS.map(|(f, _)| f.as_str()).join(", ")
        )));
    }
    let report = report(&state, &who, &asked).await?;
    let opts = RenderOptions {
        filter: asked.filter().describe(),
        exported_at: Utc::now().timestamp(),
        source: "server dashboard".into(),
        ..RenderOptions::default()
    };
    let bytes = blocking(move || {
        render(&report, format, &opts).map_err(|e| DashError::Internal(e.to_string()))
    })
    .await?;
    let name = format!(
        "returnee-overview-{}-{}.{}",
        asked.from,
        asked.to,
        format.extension()
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}
