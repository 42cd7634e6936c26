//! The device check-in (`POST /v1/device/token`) and the admin's device
//! settings: their wire types.

use serde::{Deserialize, Serialize};

use super::Role;

/// `POST /v1/device/token`: the answer a device gets at the start of each
/// sync about its credential, and what it is allowed now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    /// When the token the request was made with stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// A new token, when rotation was due (less than a third of the
    /// lifetime left, or an admin asked): the device keeps it in place of
    /// the old one and sends it from its next request, which confirms it;
    /// only then does the old one stop working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the new token stops working (with `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub role: Role,
    /// Crossing codes the device works at now; empty means every site.
    pub sites: Vec<String>,
    /// The version of the server's list of added crossings: a device that
    /// holds an older one fetches it (`GET /v1/crossings`).
    #[serde(default)]
    pub crossings_version: u64,
}

/// `POST /v1/admin/devices/{id}/sites` (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SitesRequest {
    /// Crossing codes; empty means every site.
    pub sites: Vec<String>,
}
