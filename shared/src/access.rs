//! Who may do what: roles, and (to come) the one access policy for the
//! server and the laptop.
//!
//! Pure code: this module imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// What an enrolled device may do (its wire form is the snake_case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records and edits families at its own site.
    Field,
    /// Also resolves conflicts and duplicates and reads reports, for its sites.
    Supervisor,
    /// Everything, plus devices and enrollment codes.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Field => "field",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "field" => Some(Role::Field),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role may decide conflicts (and later, duplicates).
    pub fn may_resolve(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_keeps_its_wire_form() {
        for (role, text) in [
            (Role::Field, "\"field\""),
            (Role::Supervisor, "\"supervisor\""),
            (Role::Admin, "\"admin\""),
        ] {
            assert_eq!(serde_json::to_string(&role).unwrap(), text);
            assert_eq!(serde_json::from_str::<Role>(text).unwrap(), role);
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
