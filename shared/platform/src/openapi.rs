//! What every service's part of the OpenAPI document shares: the error shape every refusal has
//! ([`crate::http::ApiError`] and the hardening of [`crate::http_responses`]), the schemas of
//! bodies that are not JSON, the health endpoints, and the finishing touches the whole document
//! gets once the services' parts are merged (the standard error responses of every operation,
//! and the bearer-token security scheme).

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};

/// The name of the bearer-token security scheme.
pub const BEARER_AUTH: &str = "bearerAuth";

/// Every refusal: `{"error": {"code", "message", "details"}}`.
#[derive(Serialize, ToSchema)]
#[schema(
    as = Error,
    example = json!({"error": {"code": "not_found", "message": "no person \"0196f1c2-7d3a-7c4e-8a1b-2c3d4e5f6a7b\" in district springfield"}})
)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What was refused, and why.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code for the status.
    pub code: ErrorCode,
    /// What was wrong and where, for a person to act on.
    #[schema(example = "limit=5000: use 1 to 1000")]
    pub message: String,
    /// More about the refusal when there is more (rows of a `422`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<serde_json::Value>>,
}

// One per status, as `http_responses::code_for` names them.
/// The stable error codes, one per status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    RequestTimeout,
    Conflict,
    Gone,
    LengthRequired,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    HeadersTooLarge,
    Internal,
    NotImplemented,
    BadGateway,
    Unavailable,
    GatewayTimeout,
    ClientError,
    ServerError,
}

/// A binary body: a JPEG photo.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Jpeg(pub Vec<u8>);

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    security(()),
    responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

// Served by `runtime::serve` (`ready`) and by the gateway; this function only carries the
// documentation.
/// Readiness: NATS connected and the database (and storage) answering.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    security(()),
    responses(
        (status = 200, description = "Every dependency answers.", body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "A dependency does not answer; the message names it.", body = ErrorBody,
            example = json!({"error": {"code": "unavailable", "message": "database unavailable: does not answer"}}))
    )
)]
pub fn readyz_documented() {}

/// The health endpoints every listener serves.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(healthz, readyz_documented),
    components(schemas(ErrorBody, Jpeg))
)]
struct Health;

/// The health endpoints' part of the document, with the shared schemas.
pub fn health() -> OpenApi {
    <Health as utoipa::OpenApi>::openapi()
}

/// Reusable responses: `(name, status, description)`. Each is the [`ErrorBody`] shape.
const STANDARD: [(&str, &str, &str); 5] = [
    (
        "Unauthorized",
        "401",
        "No token, or an unknown, revoked or expired one (with `WWW-Authenticate: Bearer`).",
    ),
    (
        "Forbidden",
        "403",
        "The token's role is not enough (the message names the role needed), or a district token doing operator work.",
    ),
    (
        "NotFound",
        "404",
        "No such district (another district's is a `404` too), person, job or import.",
    ),
    ("Internal", "500", "A fault of the server, logged in full."),
    (
        "Unavailable",
        "503",
        "A dependency is down, the disk is full, or the server is at its connection limit (with `Retry-After`).",
    ),
];

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// Whether an operation is open to anyone (`security: []`, as the public ones say with
/// `security(())`).
fn is_public(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|r| r == &SecurityRequirement::default())
    })
}

/// Finishes a merged document: the bearer scheme, required everywhere but on the public
/// operations (which get an explicit empty `security`), the standard error responses as
/// reusable components, and those responses on every operation that can give them and does
/// not describe them itself.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER_AUTH.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer <token>`: the operator token, or a district token \
                     (role admin, importer or viewer).",
                ))
                .build(),
        )),
    );
    for (name, _, description) in STANDARD {
        components
            .responses
            .insert(name.to_owned(), RefOr::T(error_response(description)));
    }
    doc.security = Some(vec![SecurityRequirement::new::<_, _, &str>(
        BEARER_AUTH,
        [],
    )]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let health = path == "/healthz" || path == "/readyz";
        let has_params = path.contains('{');
        for operation in operations_mut(item) {
            let public = is_public(operation);
            if public {
                operation.security = Some(Vec::new());
            }
            for (name, status, _) in STANDARD {
                let wanted = match status {
                    "401" | "403" => !public,
                    "404" => has_params,
                    _ => !health,
                };
                if wanted && !operation.responses.responses.contains_key(status) {
                    operation.responses.responses.insert(
                        status.to_owned(),
                        RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))),
                    );
                }
            }
        }
    }
    doc
}

/// The operations of a path item, whatever their methods.
pub fn operations_mut(
    item: &mut utoipa::openapi::path::PathItem,
) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
        item.query.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// A route's registration, as the drift checks look for it (spelt in parts, so that this file
/// does not read as registering one).
const ROUTE: &str = concat!(".", "route(");
/// Ways of routing the drift checks cannot follow.
const FORBIDDEN: [&str; 3] = [
    concat!(".", "nest("),
    concat!(".", "nest_service("),
    concat!(".", "route_service("),
];

/// The path of every route registered under `src`: the literal path of each `route` call of its
/// `.rs` files (unit tests, which build routers of their own, left out). What the drift checks
/// compare the document with: a route registered any other way — a path that is not a literal,
/// `nest`, `route_service` — is an error here, so none escapes them.
pub fn registered_paths(
    src: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                rust_files(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let mut paths = std::collections::BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file)?;
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        for forbidden in FORBIDDEN {
            anyhow::ensure!(
                !source.contains(forbidden),
                "{}: register routes by `route` with a literal path, not by `{forbidden}`, so the \
                 OpenAPI drift checks see them",
                file.display()
            );
        }
        for (at, _) in source.match_indices(ROUTE) {
            let rest = source[at + ROUTE.len()..].trim_start();
            let Some(literal) = rest.strip_prefix('"') else {
                anyhow::bail!(
                    "{}: a route whose path is not a string literal ({}); the OpenAPI drift checks \
                     read literals",
                    file.display(),
                    rest.chars().take(60).collect::<String>()
                );
            };
            let end = literal
                .find('"')
                .ok_or_else(|| anyhow::anyhow!("{}: an unterminated path", file.display()))?;
            paths.insert(literal[..end].to_owned());
        }
    }
    Ok(paths)
}

/// The paths `doc` documents.
pub fn documented_paths(doc: &OpenApi) -> std::collections::BTreeSet<String> {
    doc.paths.paths.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_routes_are_documented_as_registered() -> anyhow::Result<()> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert_eq!(registered_paths(&src)?, documented_paths(&health()));
        Ok(())
    }

    #[test]
    fn finishing_adds_the_scheme_and_the_standard_errors() -> anyhow::Result<()> {
        let doc = serde_json::to_value(finish(health()))?;
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER_AUTH]["scheme"],
            "bearer"
        );
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["security"],
            serde_json::json!([])
        );
        assert!(
            doc["paths"]["/healthz"]["get"]["responses"]
                .get("401")
                .is_none()
        );
        assert_eq!(
            doc["components"]["responses"]["NotFound"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        Ok(())
    }
}
