//! The OpenAPI 3.1 document served at `/openapi.json`, derived from the handlers' own
//! annotations (`api.rs`, `exports.rs`) and the types they parse and answer (`body.rs`);
//! schemathesis (`.ci/api-fuzz`) checks the document against what the handlers do.
//!
//! Added here, because no Rust type says them: the errors the HTTP layer answers on every
//! route before a handler runs, the bearer scheme, the purposes this deployment's policy
//! knows (as examples, so that a client or a fuzzer knows which exist), and that a search
//! takes either a CIN or a name and a birth date, never both.

use crate::app::Shared;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;
use ribat_policy::Purpose;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// What the HTTP layer may answer on any route, before the route's own checks; added to
/// every operation that does not say otherwise.
const LAYER_ERRORS: &[(&str, &str)] = &[
    (
        "401",
        "The client certificate was revoked after its connection opened",
    ),
    ("408", "An upload did not finish in time"),
    ("413", "The body is larger than the route takes"),
    ("414", "The path and query are longer than 8 KiB"),
    ("429", "The certificate holds too many connections"),
    (
        "431",
        "The headers are larger than 16 KiB or more than 64 fields",
    ),
    (
        "503",
        "Too many uploads are being received at once (see Retry-After)",
    ),
];

struct Layer;

impl Modify for Layer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("PASETO v4.public")
                        .build(),
                ),
            );
        }
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                // utoipa tags each operation with its Rust module, which says nothing to a
                // client.
                op.tags = None;
                for (code, why) in LAYER_ERRORS {
                    op.responses
                        .responses
                        .entry((*code).to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(*why)
                                .content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ribat gateway API",
        version = "1",
        description = "Reads of the fund's records through a quorum of custodians. Every call needs a client certificate from the deployment's CA (mTLS); data routes also need a short-lived token from POST /v1/token, bound to that certificate, and a declared purpose. Every released field is in the audit log before it leaves. Errors are RFC 9457 problem details."
    ),
    paths(
        crate::service::token,
        crate::reads::person,
        crate::reads::declarations,
        crate::reads::search,
        crate::reads::employer,
        crate::upload::upload,
        crate::accesses::accesses,
        crate::service::decisions_list,
        crate::service::decision_release,
        crate::exports::file_request,
        crate::exports::show,
        crate::exports::approve,
        crate::exports::run,
        crate::exports::fetch,
        crate::intake::send,
        crate::intake::show,
        crate::service::healthz,
        crate::service::metrics,
    ),
    components(schemas(Problem)),
    modifiers(&Layer)
)]
struct ApiDoc;

/// The document; `purposes` are those the deployment's policy knows.
pub fn document(purposes: &[&str]) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        json!({"openapi": "3.1.0", "info": {"title": format!("the document could not be built: {e}"), "version": "1"}, "paths": {}})
    });
    let examples = json!(purposes);
    let described = format!(
        "Purposes in this deployment's policy: {}",
        purposes.join(", ")
    );
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params.iter_mut().filter(|p| p["name"] == "purpose") {
                p["schema"]["description"] = json!(described);
                p["schema"]["examples"] = examples.clone();
                p["examples"] = purposes
                    .iter()
                    .map(|x| ((*x).to_owned(), json!({"value": x})))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
        }
    }
    // The body is optional (an empty one asks for the default lifetime); utoipa writes an
    // optional body as "this schema or null", and `null` is refused like any non-object.
    if let Some(body) = doc.pointer_mut("/paths/~1v1~1token/post/requestBody") {
        body["required"] = json!(false);
        body["content"]["application/json"]["schema"] =
            json!({"$ref": "#/components/schemas/TokenRequest"});
    }
    if let Some(search) = doc.pointer_mut("/components/schemas/SearchRequest") {
        search["properties"]["purpose"]["description"] = json!(described);
        search["properties"]["purpose"]["examples"] = examples;
        search["oneOf"] = json!([
            {"required": ["cin"], "not": {"anyOf": [{"required": ["name"]}, {"required": ["birth_date"]}]}},
            {"required": ["name", "birth_date"], "not": {"required": ["cin"]}}
        ]);
    }
    doc
}

/// `GET /openapi.json`: the document, with this deployment's purposes.
pub(crate) async fn serve(State(app): State<Shared>) -> Response {
    let policy = app.gate.policy();
    let purposes: std::collections::BTreeSet<&str> = policy
        .roles
        .values()
        .flat_map(|r| r.purposes.iter().map(Purpose::as_str))
        .collect();
    let purposes: Vec<&str> = purposes.into_iter().collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        document(&purposes).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        document(&["counter-service", "investigation"])
    }

    #[test]
    fn every_route_the_router_serves_is_in_the_document() {
        let d = doc();
        let paths = d["paths"].as_object().unwrap();
        for route in crate::api::DOCUMENTED_ROUTES {
            assert!(paths.contains_key(*route), "{route} is not documented");
        }
        assert_eq!(paths.len(), crate::api::DOCUMENTED_ROUTES.len());
    }

    #[test]
    fn a_read_route_names_its_errors_the_layer_errors_and_the_purposes_known() {
        let d = doc();
        let op = &d["paths"]["/v1/persons/{cnss}"]["get"];
        for code in [
            "200", "400", "401", "403", "404", "409", "413", "414", "429", "431", "503",
        ] {
            assert!(op["responses"].get(code).is_some(), "no {code}: {op}");
        }
        assert_eq!(
            op["responses"]["403"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        let purpose = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "purpose")
            .unwrap();
        assert_eq!(purpose["required"], true);
        assert_eq!(purpose["in"], "query");
        assert_eq!(
            purpose["schema"]["examples"],
            json!(["counter-service", "investigation"])
        );
        let fields = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "fields")
            .unwrap();
        assert!(
            fields["schema"]["pattern"]
                .as_str()
                .unwrap()
                .contains("birth_date")
        );
        assert_eq!(op["security"], json!([{"bearer": []}]));
    }

    #[test]
    fn bodies_carry_the_limits_the_handlers_enforce() {
        let d = doc();
        let s = &d["components"]["schemas"];
        assert_eq!(s["TokenRequest"]["properties"]["ttl_secs"]["maximum"], 900);
        // requested_ttl refuses any other field; the schema says so.
        assert_eq!(s["TokenRequest"]["additionalProperties"], false);
        assert_eq!(
            s["ReleaseRequest"]["properties"]["reason"]["maxLength"],
            500
        );
        assert_eq!(s["ExportRequest"]["properties"]["cnss"]["minItems"], 1);
        assert_eq!(s["SearchRequest"]["oneOf"].as_array().unwrap().len(), 2);
        assert_eq!(s["SearchRequest"]["additionalProperties"], false);
        assert_eq!(s["SearchRequest"]["required"], json!(["purpose"]));
        // Nothing a handler refuses is allowed by the schema: no nulls where `null` is refused.
        assert_eq!(s["SearchRequest"]["properties"]["cin"]["type"], "string");
        assert_eq!(
            s["TokenRequest"]["properties"]["ttl_secs"]["type"],
            "integer"
        );
        let token = &d["paths"]["/v1/token"]["post"]["requestBody"];
        assert_eq!(token["required"], false);
        assert_eq!(
            token["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/TokenRequest"
        );
        for name in [
            "Person",
            "Declarations",
            "SearchResult",
            "Employer",
            "Token",
            "Upload",
            "Decisions",
            "ReleaseState",
            "ExportState",
            "Health",
            "Problem",
        ] {
            assert!(s.get(name).is_some(), "schema {name} missing");
        }
        assert_eq!(
            d["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
