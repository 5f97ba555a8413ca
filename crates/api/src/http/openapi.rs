//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` attributes and the types' `ToSchema` derives: served
//! at `GET /v1/openapi.json` and checked into the repository
//! (`crates/api/openapi.json`; a test fails when the two differ, and
//! `GYRE_UPDATE_OPENAPI=1 cargo test -p gyre-api --test http openapi` rewrites
//! the file).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::RefOr;
use utoipa::openapi::content::Content;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Ref, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{admin, kv, listing};

/// Every failure's body: the kind and a message, and, for some kinds, more
/// fields.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the body is built in `error.rs`.
pub(crate) struct ErrorBody {
    /// What failed, as a word: `bad_key`, `bad_quorum`, `unknown_bucket`,
    /// `not_found`, `unavailable`, `not_ready`, ... (see the crate docs).
    error: String,
    /// What failed, for people.
    message: String,
    /// `unavailable`: replicas that answered.
    answered: Option<u32>,
    /// `unavailable`: replicas the quorum needs.
    required: Option<u32>,
    /// `unavailable`: why the others did not answer.
    detail: Option<String>,
    /// `not_found` on a read: the context (base64) to write the key with,
    /// also in `X-Gyre-Context`.
    context: Option<String>,
    /// `not_found` on a read that asked for JSON: no siblings.
    siblings: Option<Vec<kv::SiblingJson>>,
}

/// A bucket's properties, as they are answered.
#[derive(ToSchema)]
#[schema(as = BucketProps)]
#[allow(dead_code)] // A schema: `gyre_types::BucketProps` serialises itself.
pub(crate) struct BucketPropsSchema {
    /// Replicas of each key.
    n_val: u8,
    /// Replicas a read waits for.
    r: u8,
    /// Replicas a write waits for.
    w: u8,
    /// How concurrent writes are resolved.
    conflict_mode: ConflictModeSchema,
    /// Siblings kept at most.
    max_siblings: u32,
    /// Largest value, bytes.
    max_value_len: u32,
    /// Seconds a value written without a time to live lives (absent: for
    /// ever).
    #[schema(nullable = false)]
    default_ttl: Option<u32>,
}

/// How a bucket resolves concurrent writes.
#[derive(ToSchema)]
#[schema(as = ConflictMode, rename_all = "lowercase")]
#[allow(dead_code)] // A schema: `gyre_types::ConflictMode` serialises itself.
pub(crate) enum ConflictModeSchema {
    /// Keep concurrent writes as siblings.
    Siblings,
    /// Last writer wins.
    Lww,
    /// PN-counters.
    Counter,
}

/// A value's bytes: a raw body, `type: string, format: binary`.
pub(crate) struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gyre HTTP API",
        description = "Keys (with contexts, siblings, expiry and counters), buckets, the cluster's \
                       status and layout changes, and the node's health and metrics. The Redis \
                       protocol is the other front end.",
    ),
    paths(
        kv::get,
        kv::put,
        kv::delete,
        kv::increment,
        listing::list,
        admin::list_buckets,
        admin::get_bucket,
        admin::put_bucket,
        admin::cluster,
        admin::admin,
        admin::local_trees,
        kv::local_get,
        admin::health,
        admin::live,
        admin::metrics,
        document,
    ),
    tags(
        (name = "keys", description = "Reads, writes, deletes, increments and listings of keys"),
        (name = "buckets", description = "Bucket properties: replication, quorums, conflict mode, limits"),
        (name = "cluster", description = "Membership, layout changes and partition transfers"),
        (name = "node", description = "This node: health, metrics, its own replica"),
    ),
    modifiers(&Security),
)]
struct ApiDoc;

/// The routes open without a credential (`/metrics` is, unless the node
/// protects it).
const OPEN: [&str; 4] = ["/health", "/health/live", "/v1/openapi.json", "/metrics"];

/// Adds what authentication means to every operation that needs a user:
/// the bearer and basic schemes, and the `401` and `403` answers.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        let refused = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            if OPEN.contains(&path.as_str()) {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.head,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("basic", Vec::<String>::new()),
                ]);
                let responses = &mut operation.responses.responses;
                responses.insert(
                    "401".to_owned(),
                    refused(
                        "`unauthorized`: users are configured and the request has no valid \
                         credential",
                    )
                    .into(),
                );
                responses.insert(
                    "403".to_owned(),
                    refused("`forbidden`: the user's role does not allow this (or this bucket)")
                        .into(),
                );
            }
        }
    }
}

/// The document, as served (pretty JSON, ending in a newline).
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut json = ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        json.push('\n');
        json
    })
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "node",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json")),
)]
pub(crate) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}
