//! The device check-in (`POST /v1/device/token`) and the admin's device
//! settings: their wire types.

use serde::{Deserialize, Serialize};

use super::{DeviceName, Health, Role};

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
    /// Every enrolled device's name, as `GET /v1/devices/names` gives
    /// them, so that a sync needs no request of its own for them (a round
    /// trip on a slow link). Absent from servers before this release: a
    /// device then asks that endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<DeviceName>>,
    /// The protocols the server speaks, as `GET /v1/health` gives them
    /// (absent likewise: a device then asks that endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `POST /v1/admin/devices/{id}/sites` (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SitesRequest {
    /// Crossing codes; empty means every site.
    pub sites: Vec<String>,
}
