//! The page frame (header, navigation, main), the sign-in page, error
//! pages, and the style sheet (compiled in; no CDN, no script).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use returnee_shared::access::Action;

use super::session::Signed;

const STYLE: &str = include_str!("style.css");

/// `GET /dashboard/style.css`.
pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "max-age=3600"))
        .body(STYLE)
}

/// The pages in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Conflicts,
    Duplicates,
    Devices,
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · returnee" }
            link rel="stylesheet" href="/dashboard/style.css";
        }
    }
}

/// A signed-in page: the header with the navigation the session may use,
/// and `body`.
pub fn page(title: &str, who: &Signed, current: Nav, body: Markup) -> Markup {
    let links = [
        (Nav::Overview, "/dashboard/", "Overview", true),
        (
            Nav::Conflicts,
            "/dashboard/conflicts",
            "Conflicts",
            who.may(Action::ListConflicts),
        ),
        (
            Nav::Duplicates,
            "/dashboard/duplicates",
            "Duplicates",
            who.may(Action::ListDuplicates),
        ),
        (
            Nav::Devices,
            "/dashboard/devices",
            "Devices",
            who.may(Action::ListDevices),
        ),
        (
            Nav::Audit,
            "/dashboard/audit",
            "Audit",
            who.may(Action::ReadAudit),
        ),
    ];
    let sites = if who.device.sites.is_empty() {
        "every site".to_string()
    } else {
        who.device.sites.join(", ")
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "returnee" }
                    nav aria-label="Dashboard" {
                        ul {
                            @for (nav, href, label, shown) in links {
                                @if shown {
                                    li {
                                        @if nav == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (who.device.role) " · " (sites) }
                        form method="post" action="/dashboard/sign-out" {
                            (csrf_field(who))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(who: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf); }
}

/// The sign-in page; `token` pairs the form with its cookie.
pub fn sign_in(token: &str, message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.narrow {
                main id="main" {
                    h1 { "returnee dashboard" }
                    p { "Sign in with an enrollment code for a supervisor or admin, made by an admin with "
                        code { "returnee admin code --role supervisor --site CROSSING" } "." }
                    @if let Some(m) = message {
                        p.error role="alert" id="sign-in-error" { (m) }
                    }
                    form method="post" action="/dashboard/sign-in" {
                        input type="hidden" name="csrf" value=(token);
                        label for="code" { "Enrollment code" }
                        input id="code" name="code" type="text" autocomplete="off"
                            autocapitalize="characters" spellcheck="false" required
                            placeholder="ABCD-EFGH-JKLM-NPQR";
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// Shown to a browser that is not (or no longer) signed in.
pub fn signed_out(message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.narrow {
                main id="main" {
                    h1 { "returnee dashboard" }
                    p.error role="alert" id="signed-out" { (message) }
                    p { a.button href="/dashboard/sign-in" { "Sign in" } }
                }
            }
        }
    }
}

/// An error page.
pub fn problem(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Not done"))
            body.narrow {
                main id="main" {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p.error role="alert" id="problem" { (message) }
                    p { a href="/dashboard/" { "Back to the overview" } }
                }
            }
        }
    }
}

/// A notice at the top of a page after a decision (`?done=...`).
pub fn notice(done: Option<&str>) -> Markup {
    let text = match done {
        Some("resolved") => {
            "The conflict is resolved; laptops get the decision at their next sync."
        }
        Some("merged") => {
            "Merged: the duplicate no longer counts. Laptops get the decision at their next sync."
        }
        Some("dismissed") => "Dismissed: the pair will not be suggested again.",
        Some("unmerged") => "Unmerged: both families count again.",
        Some("revoked") => "Revoked: the device's next sync is refused.",
        _ => return html! {},
    };
    html! { p.notice role="status" id="notice" { (text) } }
}

/// The last 8 characters of an id (its first ones are a time, shared by
/// ids made close together), with the whole id on hover.
pub fn short_id(id: &impl std::fmt::Display) -> Markup {
    let full = id.to_string();
    let tail: String = full
        .chars()
        .skip(full.chars().count().saturating_sub(8))
        .collect();
    html! { code title=(full) { "…" (tail) } }
}
