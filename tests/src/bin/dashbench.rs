//! `dashbench`: how long each dashboard page takes the server to render
//! for a store of many families.
//!
//! ```sh
//! cargo run --release -p returnee-tests --bin dashbench -- --families 100000
//! ```
//!
//! A real server (in this process, on `127.0.0.1:0`) is given `--families`
//! families (default 100,000) over the last 90 days at four crossings,
//! pushed in batches of 2,000 as devices do; 1% are copies of another
//! family (so the duplicates page has pairs), and 200 families are edited
//! concurrently by two devices (so the conflicts page has conflicts). A
//! browser session is started as sign-in does, and each page is fetched
//! `--runs` times (default 5, after one unmeasured fetch) over plain HTTP:
//! the figure is the time to the whole answer, the median and the slowest.
//!
//! Prints one JSON line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use chrono::Utc;
use returnee_server::{ServerConfig, prepare, spawn};
use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::Role;
use returnee_shared::{FieldValue, OpId, RecordId};
use returnee_store::server::Device;
use returnee_tests::Rng;
use returnee_tests::cluster::family;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One GET with the session cookie; the status and the body's length.
fn get(addr: SocketAddr, path: &str, cookie: &str) -> anyhow::Result<(u16, usize)> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: returnee_session={cookie}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(32)]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP answer: {head:?}"))?;
    Ok((status, answer.len()))
}

fn op(device: &Device, record: RecordId, base: Vec<OpId>, change: Change) -> Op {
    Op {
        id: returnee_store::ids::new_op_id(),
        record,
        device: device.id,
        at: Utc::now(),
        base,
        resolution: false,
        change,
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--families").map_or(Ok(100_000), |s| s.parse())?;
    let runs: usize = arg(&args, "--runs").map_or(Ok(5), |s| s.parse())?;

    let dir = tempfile::tempdir()?;
    let prepared = prepare(ServerConfig::new(dir.path().join("server")))?;
    let server = spawn(prepared, TcpListener::bind("127.0.0.1:0")?)?;
    let store = server.store().clone();
    let admin = |name: &str| Device {
        id: returnee_store::ids::new_device_id(),
        name: name.into(),
        role: Role::Admin,
        sites: Vec::new(),
        enrolled_at: Utc::now(),
        revoked_at: None,
        credential: Default::default(),
    };
    let (one, two) = (admin("bench-1"), admin("bench-2"));

    // Families over the last 90 days; 1% copies of an earlier one.
    let mut rng = Rng::new(2026);
    let today = Utc::now().date_naive();
    let mut made: Vec<(RecordId, OpId)> = Vec::with_capacity(n);
    let mut fields_of: Vec<returnee_shared::FamilyFields> = Vec::with_capacity(n);
    let t = Instant::now();
    for start in (0..n).step_by(2000) {
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for i in start..(start + 2000).min(n) {
            let fields = if i > 0 && rng.chance(1) {
                fields_of[rng.below(i as u64) as usize].clone()
            } else {
                let mut f = family(&mut rng);
                f.crossed_on = today - chrono::Days::new(rng.below(90));
                f.head_name = Some(format!("Head {}", rng.below(50_000)));
                f.consent = true;
                f
            };
            let id = returnee_store::ids::new_record_id();
            let o = op(
                &one,
                id,
                Vec::new(),
                Change::Create {
                    fields: fields.clone(),
                    origin: None,
                },
            );
            made.push((id, o.id));
            ids.push(id);
            fields_of.push(fields);
            ops.push(o);
        }
        let ack = store.push(&one, ops, Utc::now())?;
        anyhow::ensure!(ack.rejected.is_empty(), "{:?}", ack.rejected[0]);
        server.duplicates().update(&ids)?;
    }
    let load_seconds = t.elapsed().as_secs_f64();
    // 200 conflicts: two devices set a note from the same base.
    for (i, (id, created)) in made.iter().take(200).enumerate() {
        for (d, note) in [(&one, "first"), (&two, "second")] {
            let edit = Change::edit(vec![FieldValue::Notes(Some(format!("{note} {i}")))]);
            store.push(d, vec![op(d, *id, vec![*created], edit)], Utc::now())?;
        }
    }

    // A browser session, as sign-in makes one.
    let code = store.mint_code(Role::Admin, Vec::new(), 1, None, Utc::now())?;
    let (device, token) = store
        .enroll(
            &code,
            returnee_store::ids::new_device_id(),
            "browser session",
            Utc::now(),
        )?
        .map_err(|e| anyhow::anyhow!("sign-in refused: {e:?}"))?;
    store.start_session(device.id, Utc::now() + chrono::Duration::hours(1))?;

    let addr = server.addr();
    let from = today - chrono::Days::new(89);
    let pages = [
        ("overview, last 7 days", "/dashboard/".to_string()),
        (
            "overview, 90 days",
            format!("/dashboard/?from={from}&to={today}&crossing="),
        ),
        (
            "overview, 90 days, torkham",
            format!("/dashboard/?from={from}&to={today}&crossing=torkham"),
        ),
        (
            "CSV download, 90 days",
            format!("/dashboard/export?format=csv&from={from}&to={today}&crossing="),
        ),
        (
            "Excel download, 90 days",
            format!("/dashboard/export?format=xlsx&from={from}&to={today}&crossing="),
        ),
        ("conflicts", "/dashboard/conflicts".into()),
        ("duplicates", "/dashboard/duplicates".into()),
        ("devices", "/dashboard/devices".into()),
        ("audit", "/dashboard/audit".into()),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        let (status, bytes) = get(addr, path, &token)?;
        anyhow::ensure!(status == 200, "{name}: status {status}");
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                get(addr, path, &token).map(|_| t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect::<anyhow::Result<_>>()?;
        times.sort_by(f64::total_cmp);
        results.push(serde_json::json!({
            "page": name,
            "median_ms": (times[times.len() / 2] * 10.0).round() / 10.0,
            "max_ms": (times[times.len() - 1] * 10.0).round() / 10.0,
            "bytes": bytes,
        }));
    }
    println!(
        "{}",
        serde_json::json!({
            "families": n,
            "pairs": server.duplicates().candidates()?.len(),
            "conflicts": store.conflicts(&device)?.len(),
            "load_seconds": (load_seconds * 10.0).round() / 10.0,
            "runs": runs,
            "pages": results,
        })
    );
    server.stop();
    Ok(())
}
