//! What the API's routes take and give, as types. The handlers parse and build these, and
//! the OpenAPI document is derived from them (`openapi.rs`), so the document cannot say one
//! thing while a handler does another.
//!
//! Request types are parsed by the handlers themselves (from bytes, not by an extractor) so
//! that a malformed body gets a problem document naming what is wrong; their schemas carry
//! the limits the handlers enforce.

use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// Query of `GET /v1/persons/{cnss}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PersonQuery {
    /// Why the data is read; must be one the caller's role may declare.
    #[param(required = true, pattern = "^[a-z0-9][a-z0-9._-]*$", max_length = 64)]
    pub(crate) purpose: Option<String>,
    /// Comma-separated person fields; the role's identity fields when absent.
    #[param(schema_with = person_field_list)]
    pub(crate) fields: Option<String>,
    /// A case reference (counter ticket, investigation number). Reading a public figure's
    /// record without one requires a supervisor's co-signature.
    #[param(pattern = "^[!-~]{1,64}$")]
    pub(crate) case: Option<String>,
}

/// Query of `GET /v1/persons/{cnss}/declarations` (a declaration's fields are fixed).
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeclarationsQuery {
    /// Why the data is read; must be one the caller's role may declare.
    #[param(required = true, pattern = "^[a-z0-9][a-z0-9._-]*$", max_length = 64)]
    pub(crate) purpose: Option<String>,
    /// A case reference (counter ticket, investigation number). Reading a public figure's
    /// record without one requires a supervisor's co-signature.
    #[param(pattern = "^[!-~]{1,64}$")]
    pub(crate) case: Option<String>,
    /// Refused with the list of what a declaration carries; not a parameter.
    #[param(ignore)]
    pub(crate) fields: Option<String>,
}

/// Query of `GET /v1/employers/{affiliation}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EmployerQuery {
    /// Why the data is read; must be one the caller's role may declare.
    #[param(required = true, pattern = "^[a-z0-9][a-z0-9._-]*$", max_length = 64)]
    pub(crate) purpose: Option<String>,
    /// Comma-separated employer fields; all of them when absent.
    #[param(schema_with = employer_field_list)]
    pub(crate) fields: Option<String>,
    /// A case reference (counter ticket, investigation number).
    #[param(pattern = "^[!-~]{1,64}$")]
    pub(crate) case: Option<String>,
}

/// Query of `POST /v1/declarations`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadQuery {
    /// Why: `declaration-upload`, the one purpose this route takes.
    #[param(required = true, pattern = "^[a-z0-9][a-z0-9._-]*$", max_length = 64)]
    pub(crate) purpose: Option<String>,
    /// Refused: an upload names no fields; not a parameter.
    #[param(ignore)]
    pub(crate) fields: Option<String>,
}

/// The request-signature headers: the sender's `ribat-signature`, and a supervisor's
/// `ribat-cosign` for an identity under step-up.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents a header the gate reads; never built
pub(crate) struct CosignHeader {
    /// A supervisor's co-signature of this one request (`c=<certificate>, s=<signature>`,
    /// base64url, over `ribat-cosign/v1` and the request's signed text), for an identity
    /// under step-up.
    #[param(
        rename = "ribat-cosign",
        nullable = false,
        pattern = "^c=[A-Za-z0-9_-]{1,8192}, s=[A-Za-z0-9_-]{1,512}$"
    )]
    cosign: Option<String>,
    /// The sender's signature of this request (`t=<unix time>, n=<nonce>, d=<body
    /// SHA-256>, s=<signature>`, base64url), by its client certificate's key; required by a
    /// mesh's gateways.
    #[param(
        rename = "ribat-signature",
        nullable = false,
        pattern = "^t=[0-9]{1,20}, n=[A-Za-z0-9_-]{16,64}, d=[A-Za-z0-9_-]{43}, s=[A-Za-z0-9_-]{1,512}$"
    )]
    signature: Option<String>,
}

fn field_list(names: &[&str]) -> Schema {
    let one = names.join("|");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^({one})(,({one}))*$")))
        .into()
}

fn person_field_list() -> Schema {
    let names: Vec<&str> = crate::vault::PERSON_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    field_list(&names)
}

fn employer_field_list() -> Schema {
    field_list(crate::vault::EMPLOYER_FIELDS)
}

fn person_field_names() -> Schema {
    let names: Vec<&str> = crate::vault::PERSON_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .into()
}

/// `POST /v1/persons/search`: either `cin`, or `name` and `birth_date`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SearchRequest)]
pub(crate) struct SearchBody {
    /// Why the data is read; must be one the caller's role may declare.
    #[schema(
        required = true,
        nullable = false,
        pattern = "^[a-z0-9][a-z0-9._-]*$",
        max_length = 64
    )]
    pub(crate) purpose: Option<String>,
    /// A national identity card number.
    #[schema(nullable = false, pattern = "^[A-Za-z]{1,2}[0-9]{1,6}$")]
    pub(crate) cin: Option<String>,
    /// A full name, Latin or Arabic script.
    #[schema(
        nullable = false,
        pattern = "[A-Za-z\u{0621}-\u{064A}]",
        max_length = 128
    )]
    pub(crate) name: Option<String>,
    /// A birth date, `YYYY-MM-DD`.
    #[schema(nullable = false, format = Date)]
    pub(crate) birth_date: Option<String>,
    /// Person fields to return; the role's identity fields when absent.
    #[schema(nullable = false, schema_with = person_field_array)]
    pub(crate) fields: Option<Vec<String>>,
    /// A case reference.
    #[schema(nullable = false, pattern = "^[!-~]{1,64}$")]
    pub(crate) case: Option<String>,
}

fn person_field_array() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(person_field_names()))
        .into()
}

/// `POST /v1/token`: described for the OpenAPI document; the body is read by
/// `ribat_identity::token::requested_ttl`, the same function the mesh's identity service
/// reads a forwarded request with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenRequest)]
#[expect(dead_code, reason = "a schema: requested_ttl reads the body")]
pub(crate) struct TokenBody {
    /// Seconds the token lives (the default when absent); `null` or any non-integer is
    /// refused.
    #[schema(value_type = Option<u64>, nullable = false, minimum = 1, maximum = 900)]
    pub(crate) ttl_secs: Option<serde_json::Value>,
}

/// `POST /v1/decisions/{id}/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReleaseRequest)]
pub(crate) struct ReleaseBody {
    /// Why the decision is lifted.
    #[schema(min_length = 1, max_length = 500, pattern = "[^ ]")]
    pub(crate) reason: String,
}

/// `POST /v1/exports`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExportRequest)]
pub(crate) struct ExportBody {
    /// The partner identity the file goes to.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub(crate) recipient: String,
    /// Why (a purpose of role `export`).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub(crate) purpose: String,
    /// CNSS numbers of the persons asked for.
    #[schema(min_items = 1, max_items = 3_000_000, inline, value_type = Vec<CnssNumber>)]
    pub(crate) cnss: Vec<String>,
}

/// The path of an export's routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handlers check it themselves
pub(crate) struct ExportId {
    /// Export id (16 hex digits).
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

/// A CNSS number: nine digits.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]{9}$")]
#[allow(dead_code)] // a schema, never built
pub(crate) struct CnssNumber(String);

/// A person's fields.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Person)]
pub(crate) struct PersonBody {
    /// The record's opaque id.
    pub(crate) record_id: String,
    /// Field name → value, masked where the role's policy says so.
    pub(crate) fields: BTreeMap<String, String>,
    /// Fields released masked.
    pub(crate) masked: Vec<String>,
}

/// A person's salary declarations, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Declarations)]
pub(crate) struct DeclarationsBody {
    /// The person's opaque record id.
    pub(crate) record_id: String,
    /// One per month declared.
    pub(crate) declarations: Vec<crate::vault::Declaration>,
}

/// One person a search found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchMatch {
    /// The record's opaque id.
    pub(crate) record_id: String,
    /// Field name → value, masked where the role's policy says so.
    pub(crate) fields: BTreeMap<String, String>,
}

/// What a search found (at most ten persons).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SearchResult)]
pub(crate) struct SearchResultBody {
    /// The persons found.
    pub(crate) matches: Vec<SearchMatch>,
    /// Fields released masked.
    pub(crate) masked: Vec<String>,
}

/// An employer's fields.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Employer)]
pub(crate) struct EmployerBody {
    /// The record's opaque id.
    pub(crate) record_id: String,
    /// Field name → value.
    pub(crate) fields: BTreeMap<String, String>,
}

/// The kind of token issued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) enum TokenType {
    /// Sent as `Authorization: Bearer …`, bound to the client certificate.
    Bearer,
}

/// A token for the holder of the client certificate.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Token)]
pub(crate) struct TokenIssued {
    /// PASETO v4.public.
    pub(crate) token: String,
    /// Always `Bearer`.
    pub(crate) token_type: TokenType,
    /// RFC 3339.
    pub(crate) expires_at: String,
    /// The certificate's identity.
    pub(crate) identity: String,
    /// The certificate's role.
    pub(crate) role: String,
}

/// A line of an upload that was not stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RejectedLine {
    /// Line number in the file.
    pub(crate) line: usize,
    /// Why (never the line's values).
    pub(crate) reason: String,
}

/// What became of an uploaded e-BDS file.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Upload)]
pub(crate) struct UploadBody {
    /// The name it is kept under.
    pub(crate) file: String,
    /// Declarations stored.
    pub(crate) stored: u64,
    /// Declarations already stored by an earlier upload.
    pub(crate) already_stored: u64,
    /// Lines refused.
    pub(crate) rejected: Vec<RejectedLine>,
}

/// The detectors' signed decisions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Decisions)]
pub(crate) struct DecisionsBody {
    /// Id of the key that signs decisions.
    pub(crate) key_id: String,
    /// Ids of the decisions in force.
    pub(crate) in_force: Vec<String>,
    /// Every decision, signed.
    #[schema(schema_with = decision_list)]
    pub(crate) decisions: Vec<ribat_detect::decision::Decision>,
}

/// Decisions are `ribat-detect`'s signed records; the schema names what a client relies on.
fn decision_list() -> Schema {
    let one = ObjectBuilder::new()
        .schema_type(Type::Object)
        .required("id")
        .required("rule")
        .required("target")
        .required("action")
        .required("signature");
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(Schema::Object(one.build())))
        .into()
}

/// Where a release stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReleaseWord {
    /// Waiting for a second administrator.
    Pending,
    /// Lifted.
    Released,
}

/// A release's approvals.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReleaseState)]
pub(crate) struct ReleaseBodyState {
    /// Pending or released.
    pub(crate) state: ReleaseWord,
    /// Administrators who approved, in order.
    pub(crate) approvals: Vec<String>,
    /// Approvals a release needs.
    pub(crate) needed: usize,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
pub(crate) struct HealthBody {
    /// `ok`.
    pub(crate) status: &'static str,
    /// Entries in the audit log.
    pub(crate) audit_entries: u64,
}

/// What a read route may answer besides its data.
#[derive(IntoResponses)]
#[allow(dead_code)] // a list of responses for the document, never built
pub(crate) enum ReadErrors {
    /// 400.
    #[response(
        status = 400,
        description = "Missing purpose, unknown field, malformed number or query",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// 401.
    #[response(
        status = 401,
        description = "No token, or a token expired, forged, for another audience or bound to another certificate",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// 403.
    #[response(
        status = 403,
        description = "Purpose, class or field not allowed for the role; identity, certificate or address quarantined; a supervisor's co-signature required (step-up) or refused",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// 404.
    #[response(
        status = 404,
        description = "No such person or employer",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// 409.
    #[response(
        status = 409,
        description = "The register holds a duplicate for this number",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    /// 429.
    #[response(
        status = 429,
        description = "Quota of distinct subjects exceeded, or the identity is throttled (see Retry-After)",
        content_type = "application/problem+json"
    )]
    TooMany(Problem),
    /// 503.
    #[response(
        status = 503,
        description = "Too few custodians answered, the audit log cannot record the access, or the fund serves essential services only",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// What any route behind a token (uploads, decisions, exports) may answer whoever calls it.
#[derive(IntoResponses)]
#[allow(dead_code)] // a list of responses for the document, never built
pub(crate) enum TokenErrors {
    /// 401.
    #[response(
        status = 401,
        description = "No valid token bound to this certificate",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// 429.
    #[response(
        status = 429,
        description = "This identity is throttled",
        content_type = "application/problem+json"
    )]
    TooMany(Problem),
}
