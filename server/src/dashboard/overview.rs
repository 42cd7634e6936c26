//! The overview: totals for a date range and crossing (by default the last
//! 7 days, every site the session may see), the daily arrivals chart, the
//! split by return type, departure and destination province, the summary
//! sentence, and the same table as CSV. Every number is what
//! `GET /v1/reports` answers for the same filter and device: the same
//! filter type, the same store scan, the same site rule.

use actix_web::HttpResponse;
use actix_web::web;
use chrono::{Days, NaiveDate, Utc};
use maud::{Markup, html};
use returnee_shared::access::Action;
use returnee_shared::reference;
use returnee_shared::validate::{parse_crossing, parse_date_only};
use returnee_shared::{GroupBy, Report, ReportBuilder, ReportFilter, Totals};
use serde::Deserialize;

use super::layout::{self, Nav, thousands};
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

/// The breakdowns the overview shows, in order, after the totals.
const BREAKDOWNS: [(GroupBy, &str); 4] = [
    (GroupBy::Date, "Day"),
    (GroupBy::ReturnType, "Return type"),
    (GroupBy::Departure, "Departure province"),
    (GroupBy::Destination, "Destination province"),
];

/// The totals and each breakdown, in one scan of the store.
async fn reports(state: &State, who: &Signed, asked: &Asked) -> Result<Vec<Report>, DashError> {
    let device = who.authorize(Action::ReadReports)?.clone();
    let builders = BREAKDOWNS
        .iter()
        .map(|(by, _)| ReportBuilder::new(asked.filter(), Some(*by)))
        .collect();
    let store = state.store.clone();
    blocking(move || Ok(store.reports(&device, builders)?)).await
}

/// `GET /dashboard/`.
pub async fn page(
    state: State,
    who: Signed,
    query: web::Query<OverviewParams>,
) -> Result<HttpResponse, DashError> {
    let asked = Asked::of(&query, Utc::now().date_naive())?;
    let reports = reports(&state, &who, &asked).await?;
    let totals = reports[0].totals;
    let days = every_day(&asked, &reports[0]);
    let sentence = super::summary::sentence(
        &totals,
        asked.from,
        asked.to,
        asked.crossing.as_deref(),
        &who.device.sites,
    );
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
            a.button href={ "/dashboard/export.csv?" (asked.query()) } download { "Download CSV" }
        }
        p.summary id="summary" { (sentence) }
        (cards(&totals))
        h2 { "Daily arrivals" }
        figure.chart id="daily-chart" { (maud::PreEscaped(chart)) }
        div.grid3 {
            @for (i, (_, title)) in BREAKDOWNS.iter().enumerate().skip(1) {
                section { h2 { (title) } (split(&reports[i])) }
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

fn split(report: &Report) -> Markup {
    let groups = report.groups.as_deref().unwrap_or(&[]);
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
fn every_day(asked: &Asked, by_day: &Report) -> Vec<(NaiveDate, u64)> {
    let counted: std::collections::BTreeMap<&str, u64> = by_day
        .groups
        .iter()
        .flatten()
        .map(|g| (g.key.as_str(), g.totals.families))
        .collect();
    asked
        .from
        .iter_days()
        .take_while(|d| *d <= asked.to)
        .map(|d| (d, counted.get(d.to_string().as_str()).copied().unwrap_or(0)))
        .collect()
}

/// `GET /dashboard/export.csv`: the overview's table as CSV.
pub async fn csv(
    state: State,
    who: Signed,
    query: web::Query<OverviewParams>,
) -> Result<HttpResponse, DashError> {
    let asked = Asked::of(&query, Utc::now().date_naive())?;
    let reports = reports(&state, &who, &asked).await?;
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let row = |w: &mut ::csv::Writer<Vec<u8>>, by: &str, key: &str, t: &Totals| {
        w.write_record([
            by,
            key,
            &t.families.to_string(),
            &t.individuals.to_string(),
            &t.men.to_string(),
            &t.women.to_string(),
            &t.children.to_string(),
        ])
    };
    let failed = |e: ::csv::Error| DashError::Internal(e.to_string());
    w.write_record([
        "breakdown",
        "key",
        "families",
        "individuals",
        "men",
        "women",
        "children",
    ])
    .map_err(failed)?;
    row(&mut w, "total", "", &reports[0].totals).map_err(failed)?;
    for ((by, _), report) in BREAKDOWNS.iter().zip(&reports) {
        for g in report.groups.iter().flatten() {
            row(&mut w, by.as_str(), &g.key, &g.totals).map_err(failed)?;
        }
    }
    let body = w
        .into_inner()
        .map_err(|e| DashError::Internal(e.to_string()))?;
    let name = format!("returnee-overview-{}-{}.csv", asked.from, asked.to);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}
