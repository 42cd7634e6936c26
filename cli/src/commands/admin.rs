//! `returnee admin`: administration from an admin device.

use returnee_shared::validate::parse_crossing;
use returnee_shared::wire::{CodeRequest, Role};

use crate::cli::{AdminAction, AdminArgs};
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;
use crate::sync::enrolled_client;

pub fn run(args: AdminArgs, config: &Config) -> Result<(), CliError> {
    match args.action {
        AdminAction::Code {
            role,
            sites,
            uses,
            json,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                CliError::Usage(format!(
                    "'{role}' is not a role; use --role field, supervisor or admin"
                ))
            })?;
            let sites = sites
                .iter()
                .map(|s| {
                    parse_crossing(s).map_err(|p| CliError::Usage(format!("--site: {}", p.message)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if uses == 0 {
                return Err(CliError::Usage("--uses must be at least 1".into()));
            }
            let store = open_store(config)?;
            let client = enrolled_client(&store, config.ca_file.as_deref())?;
            let code = client.mint_code(&CodeRequest { role, sites, uses })?;
            if json {
                print_json(&code)?;
            } else {
                println!("{}", code.code);
                eprintln!(
                    "a {} code for {} device(s){}; give it to the worker, it works once per device",
                    code.role,
                    code.uses,
                    if code.sites.is_empty() {
                        String::new()
                    } else {
                        format!(" at {}", code.sites.join(", "))
                    }
                );
            }
            Ok(())
        }
    }
}
