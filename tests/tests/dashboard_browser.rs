//! The dashboard in a real browser: headless Chromium through chromedriver
//! (fantoccini), against a real server holding families synced from real
//! laptop stores. One server, one driver and one browser for the whole
//! file: the steps run in order, each a person's action and what they see.
//!
//! With `RETURNEE_SCREENSHOTS=DIR` set, each page is saved there at
//! 1280×800 (and the overview at a phone's 390×844) for a reviewer:
//! `RETURNEE_SCREENSHOTS=/tmp/returnee-shots cargo test -p returnee-tests --test dashboard_browser`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use chrono::{NaiveDate, Utc};
use fantoccini::Locator;
use returnee_server::{ServerConfig, prepare, spawn};
use returnee_shared::wire::Role;
use returnee_shared::{DocType, FamilyFields, FieldValue, Members, ReportFilter, ReturnType, Sex};
use returnee_tests::Rng;
use returnee_tests::browser::{Browser, processes_in_group};
use returnee_tests::cluster::{Device, TestServer, enrolled, family};
use tokio::task::block_in_place;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A family at Torkham yesterday, with a name and a document number.
fn named(name: &str, doc: &str) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: today() - chrono::Days::new(1),
        return_type: ReturnType::Deported,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [1, 1, 0, 1, 0],
            females: [0, 1, 0, 1, 0],
        },
        head_name: Some(name.into()),
        head_sex: Some(Sex::Male),
        doc_type: DocType::PorCard,
        doc_number: Some(doc.into()),
        consent: true,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

/// The overview's range in these tests: every family added below.
const FROM: &str = "2026-09-01";

fn filter() -> ReportFilter {
    ReportFilter {
        from: NaiveDate::from_ymd_opt(2026, 9, 1),
        to: Some(today()),
        ..ReportFilter::default()
    }
}

/// A number as the page shows it (`9,737`).
fn number(text: &str) -> anyhow::Result<u64> {
    text.replace(',', "")
        .trim()
        .parse()
        .with_context(|| format!("{text:?} is not a number"))
}

async fn sign_in(b: &Browser, base: &str, code: &str) -> anyhow::Result<()> {
    b.client.goto(&format!("{base}/dashboard/sign-in")).await?;
    b.fill("#code", code).await?;
    b.click("form[action='/dashboard/sign-in'] button[type=submit]")
        .await?;
    Ok(())
}

async fn overview_families(b: &Browser, base: &str) -> anyhow::Result<u64> {
    b.client
        .goto(&format!(
            "{base}/dashboard/?from={FROM}&to={}&crossing=",
            today()
        ))
        .await?;
    number(&b.text("[data-total=families]").await?)
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let started = Instant::now();
    // Laptops record and sync: families at four crossings, a conflict,
    // and two likely duplicate pairs.
    let server = TestServer::start();
    let base = server.url();
    let (admin, laptops) = enrolled(&server, Role::Field, 2);
    let (a, b) = (&laptops[0], &laptops[1]);
    let mut rng = Rng::new(22);
    for _ in 0..40 {
        a.add(family(&mut rng));
    }
    for _ in 0..20 {
        b.add(family(&mut rng));
    }
    let disputed = a.add(family(&mut rng));
    a.sync();
    b.sync();
    let note = |d: &Device, text: &str| {
        d.store
            .edit(
                disputed,
                vec![FieldValue::Notes(Some(text.into()))],
                today(),
                Utc::now(),
            )
            .expect("edit")
    };
    note(a, "seen at gate A");
    note(b, "seen at gate B");
    a.add(named("Ghulam Nabi", "GN-420042"));
    a.add(named("Gholam Nabi", "gn420042"));
    b.add(named("Jalal Wardak", "ZX-9988776"));
    b.add(named("Jalal Wardag", "ZX-9988776"));
    a.sync();
    b.sync();
    a.sync();
    admin.sync();
    assert_eq!(admin.client().conflicts().unwrap().len(), 1);
    assert_eq!(admin.client().duplicates().unwrap().len(), 2);
    let browser_code = admin.mint(Role::Admin, &[]);
    let field_code = admin.mint(Role::Field, &["torkham"]);
    let chaman_code = admin.mint(Role::Supervisor, &["chaman"]);
    // A second server whose sessions last 2 s.
    let short_dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(short_dir.path().join("server"));
    config.session_ttl = chrono::Duration::seconds(2);
    let prepared = prepare(config).unwrap();
    let short_code = prepared.initial_admin_code.clone().unwrap();
    let short = spawn(prepared, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    // As the shared server's handles: flushed at stop, never dropped.
    std::mem::forget(short.store().clone());
    std::mem::forget(short.duplicates().clone());
    let short_url = short.url();
    let set_up = started.elapsed();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let browser_group = std::cell::Cell::new(None);
    rt.block_on(async {
        let shots = std::env::var_os("RETURNEE_SCREENSHOTS").map(std::path::PathBuf::from);
        let br = Browser::start(shots).await.expect("a headless Chromium");
        browser_group.set(Some(br.process_group()));
        let br = &br;
        let base = base.as_str();

        // Not signed in: the sign-in page is offered, nothing else.
        let r = async {
            br.client.goto(&format!("{base}/dashboard/")).await?;
            let said = br.text("#signed-out").await?;
            ensure!(said.contains("Sign in"), "{said}");
            br.client.goto(&format!("{base}/dashboard/sign-in")).await?;
            br.shoot("sign-in").await
        }
        .await;
        br.check("signed out", r).await;

        // A field device's code is refused at sign-in.
        let r = async {
            sign_in(br, base, &field_code).await?;
            br.wait_text("#sign-in-error", "field device, which cannot sign in")
                .await?;
            Ok(())
        }
        .await;
        br.check("field code refused", r).await;

        // An admin's code signs in; the cookie is HttpOnly and SameSite=Strict.
        let r = async {
            sign_in(br, base, &browser_code).await?;
            br.wait_text("h1", "Overview").await?;
            let cookies = br.client.get_all_cookies().await?;
            let session = cookies
                .iter()
                .find(|c| c.name() == "returnee_session")
                .ok_or_else(|| anyhow!("no session cookie: {cookies:?}"))?;
            ensure!(session.http_only() == Some(true), "{session:?}");
            ensure!(
                format!("{:?}", session.same_site()) == "Some(Strict)",
                "{session:?}"
            );
            ensure!(session.expires().is_some(), "the cookie expires: {session:?}");
            Ok(())
        }
        .await;
        br.check("sign in", r).await;

        // The overview's numbers are the API's report for the same filter.
        let r = async {
            br.client
                .goto(&format!("{base}/dashboard/?from={FROM}&to={}&crossing=", today()))
                .await?;
            let api = block_in_place(|| admin.client().report(&filter(), None))?;
            for (key, want) in [
                ("families", api.totals.families),
                ("individuals", api.totals.individuals),
                ("men", api.totals.men),
                ("women", api.totals.women),
                ("children", api.totals.children),
            ] {
                let shown = number(&br.text(&format!("[data-total={key}]")).await?)?;
                ensure!(shown == want, "{key}: the page shows {shown}, the API {want}");
            }
            let summary = br.text("#summary").await?;
            ensure!(
                summary.starts_with("Between 1 September and ")
                    && summary.contains(&format!("{} families", api.totals.families))
                    && summary.contains(&format!("{} men", api.totals.men)),
                "{summary}"
            );
            let bars = br
                .client
                .find_all(Locator::Css("#daily-chart svg rect"))
                .await?;
            ensure!(bars.len() > 90, "a bar per day: {}", bars.len());
            // The CSV behind the download button holds the same families, by day.
            let links = br.client.find_all(Locator::Css("a[download]")).await?;
            let mut hrefs = Vec::new();
            for l in &links {
                hrefs.push(l.attr("href").await?.unwrap_or_default());
            }
            ensure!(
                ["format=csv", "format=xlsx", "format=hxl"]
                    .iter()
                    .all(|f| hrefs.iter().any(|h| h.contains(f))),
                "{hrefs:?}"
            );
            let csv = br
                .client
                .execute_async(
                    "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);",
                    vec![serde_json::json!(hrefs[0])],
                )
                .await?;
            let csv = csv.as_str().unwrap_or_default().to_string();
            let mut rows = csv.lines();
            ensure!(
                rows.next().is_some_and(|h| h.starts_with("date,families,individuals")),
                "{csv}"
            );
            let families: u64 = rows
                .map(|r| r.split(',').nth(1).unwrap_or("0").parse::<u64>())
                .sum::<Result<u64, _>>()?;
            ensure!(families == api.totals.families, "{families} in the CSV: {csv}");
            // A crossing narrows it exactly as the API does.
            br.client
                .goto(&format!("{base}/dashboard/?from={FROM}&to={}&crossing=chaman", today()))
                .await?;
            let chaman = ReportFilter {
                crossing: Some("chaman".into()),
                ..filter()
            };
            let api = block_in_place(|| admin.client().report(&chaman, None))?;
            let shown = number(&br.text("[data-total=families]").await?)?;
            ensure!(shown == api.totals.families, "chaman: {shown} against {}", api.totals.families);
            ensure!(br.text("#summary").await?.contains("through Chaman"));
            Ok(())
        }
        .await;
        br.check("overview equals the API", r).await;
        let r = async {
            overview_families(br, base).await?;
            br.shoot("overview").await?;
            br.client.execute("window.scrollTo(0, 420)", vec![]).await?;
            br.shoot("overview-chart").await?;
            br.client.set_window_size(390, 844).await?;
            br.shoot("overview-phone").await?;
            br.client.set_window_size(1280, 800).await?;
            Ok(())
        }
        .await;
        br.check("overview screenshots", r).await;

        // A form posted without its CSRF token is refused, and changes nothing.
        let r = async {
            br.client.goto(&format!("{base}/dashboard/conflicts")).await?;
            br.client
                .execute(
                    "const f = document.querySelector(\"form[action='/dashboard/conflicts/resolve']\");
                     f.querySelector('input[name=csrf]').remove(); f.submit();",
                    vec![],
                )
                .await?;
            br.wait_text("#problem", "CSRF").await?;
            let open = block_in_place(|| admin.client().conflicts())?;
            ensure!(open.len() == 1, "the conflict is still open");
            Ok(())
        }
        .await;
        br.check("CSRF", r).await;

        // A conflict decided in the browser is closed on a laptop after its next sync.
        let r = async {
            br.client.goto(&format!("{base}/dashboard/conflicts")).await?;
            br.shoot("conflicts").await?;
            let values = br.text("[data-conflict] table").await?;
            ensure!(
                values.contains("seen at gate A") && values.contains("seen at gate B"),
                "{values}"
            );
            ensure!(values.contains("laptop-0") && values.contains("laptop-1"), "{values}");
            br.click("[data-conflict] input[value='seen at gate B']").await?;
            br.click("[data-conflict] button[type=submit]").await?;
            ensure!(br.text("#notice").await?.contains("resolved"));
            ensure!(
                br.client.find_all(Locator::Css("[data-conflict]")).await?.is_empty(),
                "the conflict is gone from the page"
            );
            block_in_place(|| a.sync());
            let on_a = a.store.get(disputed)?.ok_or_else(|| anyhow!("family gone"))?;
            ensure!(on_a.conflicts.is_empty(), "{:?}", on_a.conflicts);
            let notes = on_a.family.fields.notes;
            ensure!(notes.as_deref() == Some("seen at gate B"), "{notes:?}");
            Ok(())
        }
        .await;
        br.check("resolve a conflict", r).await;

        // Merging a pair drops the count by one family; undoing it brings it back;
        // dismissing the other leaves no pair.
        let r = async {
            let before = overview_families(br, base).await?;
            br.client.goto(&format!("{base}/dashboard/duplicates")).await?;
            br.shoot("duplicates").await?;
            let page = br.text("main").await?;
            ensure!(page.contains("2 possible duplicate pair(s)"), "{page}");
            // Document numbers show their last 4 characters only.
            ensure!(page.contains("•••••0042") && !page.contains("GN-420042"), "{page}");
            let highlighted = br.client.find_all(Locator::Css("tr.diff")).await?;
            ensure!(!highlighted.is_empty(), "differences are highlighted");
            br.click("[data-pair] form[action='/dashboard/duplicates/merge'] button").await?;
            ensure!(br.text("#notice").await?.contains("Merged"));
            let after = overview_families(br, base).await?;
            ensure!(after + 1 == before, "{before} then {after} families");
            br.client.goto(&format!("{base}/dashboard/duplicates")).await?;
            br.click("[data-merged] button").await?;
            ensure!(br.text("#notice").await?.contains("Unmerged"));
            ensure!(overview_families(br, base).await? == before);
            br.client.goto(&format!("{base}/dashboard/duplicates")).await?;
            let pairs = br.client.find_all(Locator::Css("[data-pair]")).await?.len();
            br.click("[data-pair] form[action='/dashboard/duplicates/dismiss'] button").await?;
            ensure!(br.text("#notice").await?.contains("Dismissed"));
            let left = br.client.find_all(Locator::Css("[data-pair]")).await?.len();
            ensure!(left + 1 == pairs, "{pairs} pairs, then {left}");
            Ok(())
        }
        .await;
        br.check("duplicates", r).await;

        // Revoking a laptop, after confirming, refuses its next sync.
        let r = async {
            br.client.goto(&format!("{base}/dashboard/devices")).await?;
            let b_id = b.store.device()?.id;
            let table = br.text("table").await?;
            ensure!(table.contains("browser session until"), "{table}");
            br.click(&format!("tr[data-device='{b_id}'] a")).await?;
            br.shoot("devices-confirm").await?;
            br.click("#confirm button.danger").await?;
            ensure!(br.text("#notice").await?.contains("Revoked"));
            ensure!(br.text(&format!("tr[data-device='{b_id}']")).await?.contains("revoked"));
            let refused = block_in_place(|| b.try_sync(b.client(), 200));
            let err = refused.err().ok_or_else(|| anyhow!("the revoked laptop synced"))?;
            ensure!(err.to_string().contains("revoked"), "{err}");
            Ok(())
        }
        .await;
        br.check("revoke a device", r).await;

        // The audit trail, newest first, with its chain whole.
        let r = async {
            br.client.goto(&format!("{base}/dashboard/audit")).await?;
            br.shoot("audit").await?;
            ensure!(br.text("#chain").await?.contains("The chain is whole"));
            let page = br.text("main").await?;
            ensure!(page.contains("revoked") && page.contains("decision"), "{page}");
            Ok(())
        }
        .await;
        br.check("audit", r).await;

        // Signing out ends the session: the cookie no longer opens anything.
        let r = async {
            br.click("form[action='/dashboard/sign-out'] button").await?;
            br.wait_text("h1", "returnee dashboard").await?;
            br.client.goto(&format!("{base}/dashboard/")).await?;
            ensure!(br.text("#signed-out").await?.contains("Sign in"));
            Ok(())
        }
        .await;
        br.check("sign out", r).await;

        // A supervisor of one site sees that site's families only, as the
        // API shows them, and no admin page.
        let r = async {
            sign_in(br, base, &chaman_code).await?;
            br.wait_text(".who", "supervisor · chaman").await?;
            let shown = overview_families(br, base).await?;
            let chaman = ReportFilter {
                crossing: Some("chaman".into()),
                ..filter()
            };
            let api = block_in_place(|| admin.client().report(&chaman, None))?;
            ensure!(shown == api.totals.families, "{shown} against {}", api.totals.families);
            let nav = br.text("header nav").await?;
            ensure!(!nav.contains("Devices") && !nav.contains("Audit"), "{nav}");
            br.client.goto(&format!("{base}/dashboard/devices")).await?;
            br.wait_text("#problem", "may not list devices").await?;
            br.client.goto(&format!("{base}/dashboard/")).await?;
            br.click("form[action='/dashboard/sign-out'] button").await?;
            br.wait_text("h1", "returnee dashboard").await?;
            Ok(())
        }
        .await;
        br.check("supervisor of one site", r).await;

        // A session past its expiry is refused (a server whose sessions last 2 s).
        let r = async {
            let (base, code) = (&short_url, &short_code);
            sign_in(br, base, code).await?;
            br.wait_text("h1", "Overview").await?;
            let cookie = br.client.get_named_cookie("returnee_session").await?;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            // The browser dropped the cookie at its Max-Age...
            br.client.goto(&format!("{base}/dashboard/")).await?;
            br.wait_text("#signed-out", "Sign in to see the dashboard").await?;
            // ...and the server refuses it too, sent again after its expiry.
            let replayed = fantoccini::cookies::Cookie::parse(format!(
                "returnee_session={}; Path=/dashboard; Domain=127.0.0.1; SameSite=Strict; HttpOnly",
                cookie.value()
            ))?;
            br.client.add_cookie(replayed).await?;
            br.client.goto(&format!("{base}/dashboard/")).await?;
            br.wait_text("#signed-out", "This session has expired").await?;
            Ok(())
        }
        .await;
        br.check("session expiry", r).await;
    });
    drop(rt);
    // The browser went with its driver: no Chromium is left running.
    let group = browser_group.get().expect("the browser started");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_in_group(group).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left after the browser test: {:?}",
            processes_in_group(group)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    short.stop();
    eprintln!(
        "dashboard browser test: {:.1} s ({:.1} s of it laptops syncing before the browser)",
        started.elapsed().as_secs_f64(),
        set_up.as_secs_f64()
    );
}
