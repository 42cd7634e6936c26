//! `returnee enroll`: exchange a one-time code for this device's credential.

use crate::cli::EnrollArgs;
use crate::client::{ServerClient, read_ca_file};
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use returnee_store::laptop::Enrollment;

pub fn run(args: EnrollArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    if let Some(e) = store.enrollment()? {
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
        None => None,
    };
    let client = ServerClient::with_ca_pem(
        &args.server,
        None,
        ca_pem.as_deref().map(str::as_bytes).zip(
            config
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .as_deref(),
        ),
    )?;
    let resp = client.enroll(device.id, &args.code, &name)?;
    store.set_enrollment(&Enrollment {
        server: client.base().to_string(),
        device_id: resp.device_id,
        token: resp.token,
        role: resp.role,
        sites: resp.sites.clone(),
        ca_pem,
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
