//! Data protection end to end, through a real server over real HTTP: each
//! role is refused what it may not do, endpoint by endpoint; sync is scoped
//! to a device's sites; a revoked device is refused and erases its copy.

use chrono::Utc;
use returnee_cli::client::{ClientError, ServerClient};
use returnee_shared::wire::{CodeRequest, Role, SyncCursor};
use returnee_shared::{FieldValue, ReportFilter};
use returnee_tests::cluster::{Device, TestServer, family};
use returnee_tests::{Rng, Store, add_args};

/// What one call answered: `Ok` or the refusal's status and code.
type Outcome = Result<(), (u16, String)>;

fn outcome<T>(r: Result<T, ClientError>) -> Outcome {
    match r {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { status, code, .. }) => Err((status, code.to_string())),
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

/// Every endpoint but health, called by `client`; `spare` is a device an
/// admin may revoke.
fn call_every_endpoint(
    client: &ServerClient,
    spare: returnee_shared::DeviceId,
) -> Vec<(&'static str, Outcome)> {
    vec![
        ("push", outcome(client.push(&[]))),
        ("pull", outcome(client.pull(SyncCursor(0), 10))),
        ("conflicts", outcome(client.conflicts())),
        ("duplicates", outcome(client.duplicates())),
        (
            "reports",
            outcome(client.report(&ReportFilter::default(), None)),
        ),
        (
            "admin/codes",
            outcome(client.mint_code(&CodeRequest {
                role: Role::Field,
                sites: vec!["torkham".into()],
                uses: 1,
            })),
        ),
        ("admin/devices", outcome(client.devices())),
        ("admin/audit", outcome(client.audit(0, 10))),
        ("admin/revoke", outcome(client.revoke(spare))),
    ]
}

#[test]
fn each_role_is_refused_what_it_may_not_do_endpoint_by_endpoint() {
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let mut field = Device::new("field");
    field.enroll(&server.url(), &admin.mint(Role::Field, &["torkham"]));
    let mut supervisor = Device::new("supervisor");
    supervisor.enroll(&server.url(), &admin.mint(Role::Supervisor, &["torkham"]));
    let mut spare = Device::new("spare");
    spare.enroll(&server.url(), &admin.mint(Role::Field, &["chaman"]));
    let spare_id = spare.store.device().unwrap().id;

    let ok = Ok(());
    let forbidden = || Err((403, "forbidden".to_string()));
    let expected_field = [ok.clone(), ok.clone()]
        .into_iter()
        .chain(std::iter::repeat_with(forbidden).take(7))
        .collect::<Vec<_>>();
    let expected_supervisor = std::iter::repeat_n(ok.clone(), 5)
        .chain(std::iter::repeat_with(forbidden).take(4))
        .collect::<Vec<_>>();
    for (who, client, expected) in [
        ("field", field.client(), expected_field),
        ("supervisor", supervisor.client(), expected_supervisor),
    ] {
        let got = call_every_endpoint(client, spare_id);
        for ((endpoint, outcome), want) in got.into_iter().zip(expected) {
            assert_eq!(outcome, want, "{who} on {endpoint}");
        }
    }
    // Nothing above revoked the spare device: the refusals changed nothing.
    assert!(spare.client().pull(SyncCursor(0), 1).is_ok());

    // An admin may do everything (the last call revokes the spare device).
    for (endpoint, outcome) in call_every_endpoint(admin.client(), spare_id) {
        assert_eq!(outcome, Ok(()), "admin on {endpoint}");
    }

    // Without a credential, or with a revoked one, every endpoint refuses.
    let anonymous = ServerClient::new(&server.url(), None, None).unwrap();
    for (endpoint, outcome) in call_every_endpoint(&anonymous, spare_id) {
        assert_eq!(
            outcome,
            Err((401, "unauthorized".into())),
            "no credential on {endpoint}"
        );
    }
    for (endpoint, outcome) in call_every_endpoint(spare.client(), spare_id) {
        assert_eq!(
            outcome,
            Err((401, "revoked".into())),
            "revoked device on {endpoint}"
        );
    }
    assert!(anonymous.health().is_ok(), "health needs no credential");

    // Codes: a field code needs a site, an admin code takes none.
    for (role, sites) in [
        (Role::Field, vec![]),
        (Role::Admin, vec!["torkham".to_string()]),
    ] {
        let err = admin
            .client()
            .mint_code(&CodeRequest {
                role,
                sites,
                uses: 1,
            })
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Refused { status: 400, .. }),
            "{err}"
        );
    }
    // An admin cannot lock itself out.
    let own = admin.store.device().unwrap().id;
    let err = admin.client().revoke(own).unwrap_err();
    assert!(err.to_string().contains("cannot revoke itself"), "{err}");
}

/// A family at `crossing`, varied by `rng`.
fn family_at(rng: &mut Rng, crossing: &str) -> returnee_shared::FamilyFields {
    let mut f = family(rng);
    f.crossing = crossing.into();
    f
}

fn crossings_held(d: &Device) -> Vec<String> {
    d.views()
        .into_iter()
        .map(|v| v.family.fields.crossing)
        .collect()
}

#[test]
fn sync_is_scoped_to_a_devices_sites() {
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let mut torkham = Device::new("torkham-laptop");
    torkham.enroll(&server.url(), &admin.mint(Role::Field, &["torkham"]));
    let mut chaman = Device::new("chaman-laptop");
    chaman.enroll(&server.url(), &admin.mint(Role::Field, &["chaman"]));
    let mut lead = Device::new("torkham-supervisor");
    lead.enroll(&server.url(), &admin.mint(Role::Supervisor, &["torkham"]));

    let mut rng = Rng::new(11);
    for _ in 0..12 {
        torkham.add(family_at(&mut rng, "torkham"));
    }
    let chaman_ids: Vec<_> = (0..9)
        .map(|_| chaman.add(family_at(&mut rng, "chaman")))
        .collect();
    // A torkham field device may not record a chaman family: the server
    // refuses it and the device keeps it, as a refused change.
    let stray = torkham.add(family_at(&mut rng, "chaman"));
    let s = torkham.sync();
    assert_eq!(s.rejected, 1);
    chaman.sync();
    torkham.sync();
    lead.sync();
    admin.sync();

    let held = torkham.store.held().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0.record, stray);
    assert!(
        held[0].1.message.contains("torkham only"),
        "{}",
        held[0].1.message
    );

    // After sync the torkham field device holds no chaman family of
    // anyone else's (only its own refused one), and the supervisor of
    // torkham none at all.
    let on_torkham = crossings_held(&torkham);
    assert_eq!(on_torkham.iter().filter(|c| *c == "torkham").count(), 12);
    assert_eq!(
        on_torkham.len(),
        13,
        "12 of torkham and its own refused family"
    );
    for id in &chaman_ids {
        assert!(torkham.store.get(*id).unwrap().is_none());
    }
    assert!(crossings_held(&lead).iter().all(|c| c == "torkham"));
    assert_eq!(crossings_held(&lead).len(), 12);
    assert!(crossings_held(&chaman).iter().all(|c| c == "chaman"));
    assert_eq!(crossings_held(&chaman).len(), 9);
    assert_eq!(
        crossings_held(&admin).len(),
        21,
        "the admin sees every site"
    );

    // Reports and conflicts on the server are scoped the same way.
    let lead_report = lead
        .client()
        .report(&ReportFilter::default(), None)
        .unwrap();
    assert_eq!(lead_report.totals.families, 12);
    let all = admin
        .client()
        .report(&ReportFilter::default(), None)
        .unwrap();
    assert_eq!(all.totals.families, 21);

    // A chaman field device cannot edit a torkham family either.
    let torkham_id = admin
        .views()
        .into_iter()
        .find(|v| v.family.fields.crossing == "torkham")
        .unwrap()
        .family
        .id;
    assert!(chaman.store.get(torkham_id).unwrap().is_none());

    // An admin moves a chaman family to torkham: the torkham devices then
    // receive its whole history, not just the move.
    let moved = chaman_ids[0];
    admin
        .store
        .edit(
            moved,
            vec![FieldValue::Crossing("torkham".into())],
            Utc::now().date_naive(),
            Utc::now(),
        )
        .unwrap();
    // The chaman device has an edit of another chaman family it has not
    // sent yet; that family moves too.
    let pending_move = chaman_ids[1];
    chaman
        .store
        .edit(
            pending_move,
            vec![FieldValue::Notes(Some("typed before the move".into()))],
            Utc::now().date_naive(),
            Utc::now(),
        )
        .unwrap();
    admin
        .store
        .edit(
            pending_move,
            vec![FieldValue::Crossing("torkham".into())],
            Utc::now().date_naive(),
            Utc::now(),
        )
        .unwrap();
    admin.sync();
    torkham.sync();
    lead.sync();
    let before = chaman.views().len();
    let s = chaman.try_sync(chaman.client(), 200).unwrap();
    // It left chaman: the chaman device no longer holds it...
    assert!(chaman.store.get(moved).unwrap().is_none());
    // ...except the one with a change of its own the server refused (the
    // family is no longer chaman's): kept, so nothing typed is lost.
    assert_eq!(s.rejected, 1);
    assert!(chaman.store.get(pending_move).unwrap().is_some());
    assert_eq!(chaman.views().len(), before - 1);
    let on_admin = admin.store.get(moved).unwrap().expect("admin holds it");
    for d in [&torkham, &lead] {
        let got = d
            .store
            .get(moved)
            .unwrap()
            .unwrap_or_else(|| panic!("{} lacks the moved family", d.name));
        assert_eq!(got.family, on_admin.family, "{}", d.name);
    }
    assert_eq!(
        lead.client()
            .report(&ReportFilter::default(), None)
            .unwrap()
            .totals
            .families,
        14
    );
}

#[test]
fn a_revoked_laptop_is_refused_and_erases_its_copy() {
    let server = TestServer::start();
    let admin = returnee_tests::enrolled_admin(&server);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let laptop = Store::init();
    laptop.ok(&["enroll", "--server", &server.url(), "--code", code.trim()]);
    let add = add_args("torkham", "2026-10-01", "0,1,0,1,0", "1,0,0,1,0");
    laptop.ok(&add);
    laptop.ok(&add);
    laptop.ok(&["sync"]);
    // One more, not yet sent when the laptop is lost.
    laptop.ok(&add);

    let devices = admin.json(&["admin", "devices", "--json"]);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let lost = devices
        .iter()
        .find(|d| d["role"] == "field")
        .expect("the field laptop is listed");
    assert!(lost["revoked_at"].is_null());
    let lost_id = lost["id"].as_str().unwrap().to_string();
    let out = admin.ok(&["admin", "revoke", &lost_id]);
    assert!(out.contains("revoked"), "{out}");
    let devices = admin.json(&["admin", "devices", "--json"]);
    let lost = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == lost_id.as_str())
        .unwrap();
    assert!(lost["revoked_at"].is_string());

    // Its next contact: refused, told to erase, and it does.
    let run = laptop.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert!(run.stderr.contains("erased"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 change(s) not yet sent"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = std::fs::read_dir(laptop.path())
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the store's folder still holds {left:?}");
    let run = laptop.run(&["list", "--json"]);
    assert_ne!(run.code, 0, "an erased store does not open: {run:?}");

    // The server kept what was synced before: two families.
    let report = admin.json(&["report", "--json"]);
    assert_eq!(report["families"], 0, "the admin laptop has not pulled yet");
    admin.ok(&["sync"]);
    assert_eq!(admin.json(&["report", "--json"])["families"], 2);
}

#[test]
fn a_field_laptop_refuses_families_of_other_sites_before_saving_them() {
    let server = TestServer::start();
    let mut admin = Device::new("admin");
    admin.enroll(&server.url(), &server.admin_code);
    let laptop = Store::init();
    // Before enrollment, a laptop records any crossing.
    let at = |crossing: &str| add_args(crossing, "2026-10-01", "0,1,0,1,0", "1,0,0,1,0");
    laptop.ok(&at("chaman"));
    laptop.ok(&[
        "enroll",
        "--server",
        &server.url(),
        "--code",
        &admin.mint(Role::Field, &["torkham"]),
    ]);
    let run = laptop.run(&at("chaman"));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("enrolled for torkham only"),
        "{}",
        run.stderr
    );
    let id = laptop.ok(&at("torkham")).trim().to_string();
    let run = laptop.run(&["edit", &id, "--crossing", "chaman"]);
    assert_eq!(run.code, 2, "{run:?}");
    let csv = laptop.path().join("rows.csv");
    std::fs::write(
        &csv,
        "crossing,crossed_on,return_type,departure_province,destination_province,m_18_59,f_18_59\n\
         torkham,2026-10-03,deported,PK-KP,AF-NAN,1,1\n\
         chaman,2026-10-03,deported,PK-KP,AF-NAN,1,1\n",
    )
    .unwrap();
    let run = laptop.run(&["import", csv.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("line 3: crossing: this device is enrolled for torkham only"),
        "{}",
        run.stderr
    );
    let report = laptop.json(&["report", "--json", "--by", "crossing"]);
    assert_eq!(
        report["families"], 3,
        "the first chaman family, two of torkham"
    );
}
