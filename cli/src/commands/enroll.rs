//! `returnee enroll`: exchange a one-time code for this device's credential.

use crate::cli::EnrollArgs;
use crate::client::{ClientError, ServerClient, read_ca_file};
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use returnee_store::laptop::Enrollment;

pub fn run(args: EnrollArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let before = store.enrollment()?;
    // A store enrolls once, with one server; it enrolls again there only
    // when its credential expired (the server says whether it did).
    if let Some(e) = &before
        && e.server.trim_end_matches('/') != args.server.trim().trim_end_matches('/')
    {
        return Err(CliError::Usage(format!(
            "this device is already enrolled with {} as {}; a store enrolls once (use a new --data-dir for another server)",
            e.server, e.role
        )));
    }
    let device = store.device()?;
    let name = args.device_name.unwrap_or(device.name);
    let ca_pem = match &config.ca_file {
        Some(path) => Some(String::from_utf8(read_ca_file(path)?).map_err(|_| {
            CliError::Usage(format!(
                "{} is not a PEM certificate file; pass the deployment's CA certificate with --ca",
                path.display()
            ))
        })?),
        None => before.as_ref().and_then(|e| e.ca_pem.clone()),
    };
    let client = ServerClient::with_ca_pem(
        &args.server,
        None,
        ca_pem.as_deref().map(str::as_bytes).zip(Some(
            config
                .ca_file
                .as_ref()
                .map_or("the CA saved at enrollment".to_string(), |p| {
                    p.display().to_string()
                })
                .as_str(),
        )),
    )?;
    let resp = client.enroll(device.id, &args.code, &name).map_err(|e| match e {
        ClientError::Refused { status: 409, .. } if before.is_some() => CliError::Usage(
            "this device is already enrolled with this server and its credential still works; there is nothing to renew".into(),
        ),
        e => e.into(),
    })?;
    store.set_enrollment(&Enrollment {
        server: client.base().to_string(),
        device_id: resp.device_id,
        token: resp.token,
        role: resp.role,
        sites: resp.sites.clone(),
        ca_pem,
        token_expires_at: None,
    })?;
    let sites = if resp.sites.is_empty() {
        "all sites".to_string()
    } else {
        resp.sites.join(", ")
    };
    println!(
        "enrolled with {} as {} ({sites}); device id {}",
        client.base(),
        resp.role,
        resp.device_id
    );
    Ok(())
}
