//! [`ApiError`]: every failure of the HTTP API, answered as
//! `{"error": "<kind>", "message": "..."}` with the status that fits.
//!
//! The kinds are listed in the [module documentation](super); this module
//! is the only place that turns a [`KvError`], an [`AdminError`] or one of
//! axum's rejections into a response, so that no plain-text rejection ever
//! reaches a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::CONTEXT_HEADER;
use crate::{AdminError, KvError};

/// A failed request: status, kind, message, and any extra fields of the
/// JSON body (the replica counts of `unavailable`, the context of a
/// `not_found` read). Boxed: it travels in every handler's `Result`.
#[derive(Debug)]
pub(crate) struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    kind: &'static str,
    message: String,
    extra: Map<String, Value>,
    /// Also sent as the `X-Gyre-Context` header (a read that found nothing).
    context: Option<String>,
    /// How metrics count the failure, when it came from the backend.
    source: Option<KvError>,
}

impl ApiError {
    /// An error of `kind` with `status`.
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            kind,
            message: message.into(),
            extra: Map::new(),
            context: None,
            source: None,
        }))
    }

    /// A 400 of `kind`.
    pub(crate) fn bad(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    /// A 404 `unknown_bucket`.
    pub(crate) fn unknown_bucket(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_bucket",
            format!("unknown bucket '{bucket}'"),
        )
    }

    /// A 500 `internal`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// This error with one more field in its JSON body.
    pub(crate) fn with_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(name.to_owned(), value.into());
        self
    }

    /// This error with a context (base64), in the body and the
    /// `X-Gyre-Context` header.
    pub(crate) fn with_context(mut self, context: String) -> Self {
        self.0
            .extra
            .insert("context".to_owned(), Value::String(context.clone()));
        self.0.context = Some(context);
        self
    }

    /// How [`crate::Metrics::observe`] should count this failure: the
    /// backend's own error, or one that classifies the same way (client
    /// errors as bad requests, server errors as errors).
    pub(crate) fn metrics_class(&self) -> KvError {
        match &self.0.source {
            Some(e) => e.clone(),
            None if self.0.status.is_client_error() => KvError::BadRequest(String::new()),
            None => KvError::Internal(String::new()),
        }
    }
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        let message = e.to_string();
        let mut error = match &e {
            KvError::BadRequest(_) => Self::bad("bad_request", message),
            KvError::UnknownBucket(b) => Self::unknown_bucket(b),
            KvError::Unavailable {
                answered,
                required,
                detail,
            } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                .with_field("answered", *answered)
                .with_field("required", *required)
                .with_field("detail", detail.clone()),
            KvError::NotReady(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
            }
            KvError::Internal(_) => Self::internal(message),
        };
        error.0.source = Some(e);
        error
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::BadRequest(m) => Self::bad("bad_request", m),
            AdminError::Internal(_) => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        if this.status.is_server_error() {
            tracing::warn!(kind = this.kind, message = %this.message, "HTTP request failed");
        }
        let mut body = Map::with_capacity(2 + this.extra.len());
        body.insert("error".to_owned(), Value::String(this.kind.to_owned()));
        body.insert("message".to_owned(), Value::String(this.message));
        body.extend(this.extra);
        let mut response = (this.status, Json(Value::Object(body))).into_response();
        if let Some(context) = this.context
            && let Ok(value) = HeaderValue::try_from(context)
        {
            response.headers_mut().insert(CONTEXT_HEADER, value);
        }
        response
    }
}
