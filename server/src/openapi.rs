//! The API's OpenAPI 3.1 description, generated from the handlers'
//! `#[utoipa::path]` attributes and the wire types' `ToSchema` derives as
//! [`routes::configure`] registers them: served at `GET /v1/openapi.json`,
//! printed by `returnee-server openapi`, and checked in as
//! `docs/openapi.json` (a test fails when the two differ).
//!
//! The same description tells a wrong method from an unknown path
//! ([`RouteTable`]).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, web};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::ApiError;
use crate::routes;
use returnee_shared::wire::{ACCEPTED_PROTOCOLS, ErrorBody, PROTOCOL_HEADER, PROTOCOL_VERSION};

/// What no handler names but every error answer refers to.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(ErrorBody)))]
struct Shared;

/// The description of every endpoint [`routes::configure`] registers.
pub fn document() -> OpenApi {
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .configure(routes::configure)
        .split_for_parts();
    api.merge(Shared::openapi());
    let [oldest, newest] = ACCEPTED_PROTOCOLS;
    api.info = InfoBuilder::new()
        .title("returnee")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "The returnee sync server: enrollment, sync of operations on family \
             records, conflicts, duplicates, reports and administration.\n\n\
             Authenticate with `Authorization: Bearer TOKEN` (from `POST /v1/enroll`); \
             each operation's `security` lists the roles allowed. Sync requests carry \
             the `{PROTOCOL_HEADER}` header: this server speaks protocol {PROTOCOL_VERSION} \
             and accepts {oldest} to {newest}. Every error is a JSON `ErrorBody`."
        )))
        .license(Some(LicenseBuilder::new().name("Apache-2.0").build()))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The device credential from POST /v1/enroll; the requirement's \
                     list names the roles (field, supervisor, admin) allowed",
                ))
                .build(),
        ),
    );
    api
}

/// [`document`] as the JSON served and checked in (pretty, ending in a newline).
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).expect("the description serializes");
    optional_null_values(&mut doc);
    sets_take_repeats(&mut doc);
    let mut json = serde_json::to_string_pretty(&doc).expect("a value serializes");
    json.push('\n');
    json
}

/// A set (vulnerabilities, documentation) takes a value given twice as
/// once: the description says what the server accepts, so no
/// `uniqueItems` (which the derive writes for a `BTreeSet`).
fn sets_take_repeats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("uniqueItems");
            map.values_mut().for_each(sets_take_repeats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sets_take_repeats),
        _ => {}
    }
}

/// An edit's value that may be null may also be left out (serde reads it
/// as null): said so in the description, where the derive makes every
/// variant's `value` required.
fn optional_null_values(doc: &mut serde_json::Value) {
    let variants = doc
        .pointer_mut("/components/schemas/FieldValue/oneOf")
        .and_then(|v| v.as_array_mut());
    for variant in variants.into_iter().flatten() {
        let value = &variant["properties"]["value"];
        let nullable = value["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"))
            || value["oneOf"]
                .as_array()
                .is_some_and(|o| o.iter().any(|s| s["type"] == "null"));
        if let (true, Some(required)) = (nullable, variant["required"].as_array_mut()) {
            required.retain(|r| r != "value");
        }
    }
}

/// The description as served, made once at start.
pub struct OpenApiJson(pub Bytes);

/// Each described path (as segments, `{name}` matching any one) and the
/// methods it takes: what the fallback answers 405 or 404 from.
pub struct RouteTable(Vec<(Vec<String>, Vec<&'static str>)>);

impl RouteTable {
    pub fn of(api: &OpenApi) -> RouteTable {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, has)| has.then_some(m))
                .collect();
                (segments(path).map(str::to_string).collect(), methods)
            })
            .collect();
        RouteTable(routes)
    }

    /// The methods `path` takes, if it is a described path.
    pub fn methods_of(&self, path: &str) -> Option<&[&'static str]> {
        let asked: Vec<&str> = segments(path).collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == asked.len()
                && template
                    .iter()
                    .zip(&asked)
                    .all(|(t, a)| t == a || (t.starts_with('{') && !a.is_empty()));
            matches.then_some(methods.as_slice())
        })
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/')
}

/// The answer to a request no endpoint took: 405 with `Allow` when the path
/// is described with other methods, else 404.
pub async fn no_endpoint(
    req: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<actix_web::HttpResponse, ApiError> {
    Err(match table.methods_of(req.path()) {
        Some(methods) => ApiError::MethodNotAllowed {
            message: format!(
                "{} {} is not an endpoint; this path takes {}",
                req.method(),
                req.path(),
                methods.join(", ")
            ),
            allow: methods.join(", "),
        },
        None => ApiError::NotFound(
            "no such endpoint; the API lives under /v1/ (its description: GET /v1/openapi.json)"
                .into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_tells_a_wrong_method_from_an_unknown_path() {
        let table = RouteTable::of(&document());
        assert_eq!(table.methods_of("/v1/health"), Some(&["GET"][..]));
        assert_eq!(table.methods_of("/v1/sync/push"), Some(&["POST"][..]));
        assert_eq!(
            table.methods_of("/v1/admin/devices/0192-x/revoke"),
            Some(&["POST"][..])
        );
        assert_eq!(table.methods_of("/v1/admin/devices//revoke"), None);
        assert_eq!(table.methods_of("/v1/nothing"), None);
        assert_eq!(table.methods_of("/v2/health"), None);
    }

    #[test]
    fn every_endpoint_but_the_open_ones_names_the_roles_it_allows() {
        let api = document();
        let open = ["/v1/health", "/v1/openapi.json", "/v1/enroll"];
        for (path, item) in &api.paths.paths {
            let ops = [&item.get, &item.post].into_iter().flatten();
            for op in ops {
                let roles: Vec<String> = op
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|s| serde_json::to_value(s).ok())
                    .filter_map(|v| v.get("bearer").cloned())
                    .flat_map(|v| serde_json::from_value::<Vec<String>>(v).unwrap_or_default())
                    .collect();
                if open.contains(&path.as_str()) {
                    assert!(roles.is_empty(), "{path} needs no credential");
                } else {
                    assert!(!roles.is_empty(), "{path} names no role");
                    assert!(
                        roles
                            .iter()
                            .all(|r| ["field", "supervisor", "admin"].contains(&r.as_str())),
                        "{path}: {roles:?}"
                    );
                }
            }
        }
    }
}
