//! The OpenAPI 3.0 document served at `/openapi.json`, written out by hand so that it
//! says exactly what the handlers do (schemathesis checks the one against the other).

use serde_json::{Value, json};

fn problem_ref(why: &str) -> Value {
    json!({
        "description": why,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn problem_responses(codes: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    for (code, why) in codes {
        m.insert((*code).to_owned(), problem_ref(why));
    }
    Value::Object(m)
}

const READ_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Missing purpose, unknown field, malformed number or query",
    ),
    (
        "401",
        "No token, or a token expired, forged, for another audience or bound to another certificate",
    ),
    (
        "403",
        "Purpose, class or field not allowed for the role; identity, certificate or address quarantined; a supervisor's co-signature required (step-up) or refused",
    ),
    ("404", "No such person or employer"),
    ("409", "The register holds a duplicate for this number"),
    (
        "429",
        "Quota of distinct subjects exceeded, or the identity is throttled (see Retry-After)",
    ),
    (
        "503",
        "Too few custodians answered, the audit log cannot record the access, or the fund serves essential services only",
    ),
];

fn with_ok(ok_schema: &str, errors: &[(&str, &str)]) -> Value {
    with_status("200", ok_schema, errors)
}

/// What the HTTP layer may answer on any route, before the route's own checks.
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

fn with_status(status: &str, ok_schema: &str, errors: &[(&str, &str)]) -> Value {
    let mut r = problem_responses(errors);
    if let Value::Object(m) = &mut r {
        for (code, why) in LAYER_ERRORS {
            if !m.contains_key(*code) {
                m.insert((*code).to_owned(), problem_ref(why));
            }
        }
        m.insert(
            status.into(),
            json!({
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{ok_schema}")}}}
            }),
        );
    }
    r
}

fn export_id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}})
}

/// A purpose: lowercase words joined by hyphens.
const PURPOSE_PATTERN: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";

fn purpose_schema(known: &[&str]) -> Value {
    json!({
        "type": "string", "pattern": PURPOSE_PATTERN, "maxLength": 64,
        "description": format!("Purposes in this deployment's policy: {}", known.join(", ")),
        "example": known.first().copied().unwrap_or("counter-service"),
        "examples": known,
    })
}

fn purpose_param(known: &[&str]) -> Value {
    json!({
        "name": "purpose", "in": "query", "required": true,
        "description": "Why the data is read; must be one the caller's role may declare.",
        "schema": purpose_schema(known),
        "examples": known.iter().map(|p| ((*p).to_owned(), json!({"value": p}))).collect::<serde_json::Map<_, _>>(),
    })
}

fn case_param() -> Value {
    json!({
        "name": "case", "in": "query", "required": false,
        "description": "A case reference (counter ticket, investigation number). Reading a public figure's record without one requires a supervisor's co-signature.",
        "schema": case_schema()
    })
}

fn case_schema() -> Value {
    json!({"type": "string", "pattern": "^[!-~]{1,64}$"})
}

fn cosign_param() -> Value {
    json!({
        "name": "ribat-cosign", "in": "header", "required": false,
        "description": "A supervisor's token co-signing this request, for an identity under step-up.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,2048}$"}
    })
}

fn list_pattern(names: &[&str]) -> String {
    let one = names.join("|");
    format!("^({one})(,({one}))*$")
}

fn fields_param(what: &str, names: &[&str]) -> Value {
    json!({
        "name": "fields", "in": "query", "required": false,
        "description": format!("Comma-separated {what} fields; the role's identity fields when absent."),
        "schema": {"type": "string", "pattern": list_pattern(names)}
    })
}

fn person_names() -> Vec<&'static str> {
    crate::vault::PERSON_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect()
}

/// The document; `purposes` are those the deployment's policy knows (listed as examples,
/// so that a client, or a fuzzer, knows which ones exist).
pub fn document(purposes: &[&str]) -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Ribat gateway API",
            "version": "1",
            "description": "Reads of the fund's records through a quorum of custodians. Every call needs a client certificate from the deployment's CA (mTLS); data routes also need a short-lived token from POST /v1/token, bound to that certificate, and a declared purpose. Every released field is in the audit log before it leaves. Errors are RFC 9457 problem details."
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "PASETO v4.public"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "retry_after": {"type": "integer"}
                    }
                },
                "Person": {
                    "type": "object",
                    "required": ["record_id", "fields", "masked"],
                    "properties": {
                        "record_id": {"type": "string"},
                        "fields": string_map,
                        "masked": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "Declarations": {
                    "type": "object",
                    "required": ["record_id", "declarations"],
                    "properties": {
                        "record_id": {"type": "string"},
                        "declarations": {"type": "array", "items": {
                            "type": "object",
                            "required": ["period", "days", "salary_real_centimes", "salary_capped_centimes"],
                            "properties": {
                                "period": {"type": "string"},
                                "days": {"type": "string"},
                                "salary_real_centimes": {"type": "string"},
                                "salary_capped_centimes": {"type": "string"}
                            }
                        }}
                    }
                },
                "SearchRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["purpose"],
                    "description": "Either `cin`, or `name` and `birth_date`.",
                    "properties": {
                        "purpose": purpose_schema(purposes),
                        "cin": {"type": "string", "pattern": "^[A-Za-z]{1,2}[0-9]{1,6}$"},
                        "name": {"type": "string", "pattern": "[A-Za-z\u{0621}-\u{064A}]", "maxLength": 128},
                        "birth_date": {"type": "string", "format": "date"},
                        "fields": {"type": "array", "items": {"type": "string", "enum": person_names()}},
                        "case": case_schema()
                    },
                    "oneOf": [
                        {"required": ["cin"], "not": {"anyOf": [{"required": ["name"]}, {"required": ["birth_date"]}]}},
                        {"required": ["name", "birth_date"], "not": {"required": ["cin"]}}
                    ]
                },
                "SearchResult": {
                    "type": "object",
                    "required": ["matches", "masked"],
                    "properties": {
                        "matches": {"type": "array", "items": {
                            "type": "object",
                            "required": ["record_id", "fields"],
                            "properties": {"record_id": {"type": "string"}, "fields": string_map}
                        }},
                        "masked": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "Employer": {
                    "type": "object",
                    "required": ["record_id", "fields"],
                    "properties": {"record_id": {"type": "string"}, "fields": string_map}
                },
                "TokenRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"ttl_secs": {"type": "integer", "minimum": 1, "maximum": 900}}
                },
                "Token": {
                    "type": "object",
                    "required": ["token", "token_type", "expires_at", "identity", "role"],
                    "properties": {
                        "token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["Bearer"]},
                        "expires_at": {"type": "string"},
                        "identity": {"type": "string"},
                        "role": {"type": "string"}
                    }
                },
                "Upload": {
                    "type": "object",
                    "required": ["file", "stored", "already_stored", "rejected"],
                    "properties": {
                        "file": {"type": "string"},
                        "stored": {"type": "integer"},
                        "already_stored": {"type": "integer"},
                        "rejected": {"type": "array", "items": {
                            "type": "object", "required": ["line", "reason"],
                            "properties": {"line": {"type": "integer"}, "reason": {"type": "string"}}
                        }}
                    }
                },
                "Decisions": {
                    "type": "object",
                    "required": ["key_id", "in_force", "decisions"],
                    "properties": {
                        "key_id": {"type": "string"},
                        "in_force": {"type": "array", "items": {"type": "string"}},
                        "decisions": {"type": "array", "items": {"type": "object", "required": ["id", "rule", "target", "action", "signature"]}}
                    }
                },
                "ReleaseRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "[^ ]"}}
                },
                "ReleaseState": {
                    "type": "object",
                    "required": ["state", "approvals", "needed"],
                    "properties": {
                        "state": {"type": "string", "enum": ["pending", "released"]},
                        "approvals": {"type": "array", "items": {"type": "string"}},
                        "needed": {"type": "integer"}
                    }
                },
                "ExportRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["recipient", "purpose", "cnss"],
                    "properties": {
                        "recipient": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                        "purpose": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                        "cnss": {"type": "array", "minItems": 1, "maxItems": 3_000_000, "items": {"type": "string", "pattern": "^[0-9]{9}$"}}
                    }
                },
                "ExportState": {
                    "type": "object",
                    "required": ["id", "recipient", "purpose", "persons", "requested_by", "approvals", "needed", "fetched"],
                    "properties": {
                        "id": {"type": "string"},
                        "recipient": {"type": "string"},
                        "purpose": {"type": "string"},
                        "persons": {"type": "integer"},
                        "requested_by": {"type": "string"},
                        "approvals": {"type": "array", "items": {"type": "string"}},
                        "needed": {"type": "integer"},
                        "ran_at": {"type": ["integer", "null"]},
                        "rows": {"type": ["integer", "null"]},
                        "file_sha256": {"type": ["string", "null"]},
                        "fetched": {"type": "array", "items": {"type": "array"}}
                    }
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "audit_entries"],
                    "properties": {"status": {"type": "string"}, "audit_entries": {"type": "integer"}}
                }
            }
        },
        "paths": {
            "/v1/token": {"post": {
                "summary": "A token for the holder of the client certificate",
                "security": [],
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
                "responses": with_ok("Token", &[("400", "Malformed body or lifetime out of range"), ("503", "This gateway does not issue tokens")])
            }},
            "/v1/persons/{cnss}": {"get": {
                "summary": "A person's fields",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "cnss", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{9}$"}},
                    purpose_param(purposes),
                    fields_param("person", &person_names()),
                    case_param(),
                    cosign_param()
                ],
                "responses": with_ok("Person", READ_ERRORS)
            }},
            "/v1/persons/{cnss}/declarations": {"get": {
                "summary": "A person's salary declarations, oldest first",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "cnss", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{9}$"}},
                    purpose_param(purposes),
                    case_param(),
                    cosign_param()
                ],
                "responses": with_ok("Declarations", READ_ERRORS)
            }},
            "/v1/persons/search": {"post": {
                "summary": "Persons by CIN, or by name and birth date (through blind indexes)",
                "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "responses": with_ok("SearchResult", READ_ERRORS)
            }},
            "/v1/employers/{affiliation}": {"get": {
                "summary": "An employer's fields",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "affiliation", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{7}$"}},
                    purpose_param(purposes),
                    fields_param("employer", crate::vault::EMPLOYER_FIELDS),
                    case_param(),
                    cosign_param()
                ],
                "responses": with_ok("Employer", READ_ERRORS)
            }},
            "/v1/declarations": {"post": {
                "summary": "An employer uploads its monthly e-BDS declaration file (its own affiliation only)",
                "security": [{"bearer": []}],
                "parameters": [purpose_param(purposes)],
                "requestBody": {"required": true, "content": {"text/plain": {"schema": {"type": "string"}}}},
                "responses": {
                    "201": {"description": "Stored (lines refused are listed by number and reason)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Upload"}}}},
                    "400": problem_ref("Missing or wrong purpose, malformed query"),
                    "401": problem_ref("No valid token bound to this certificate"),
                    "403": problem_ref("Not an employer, or the file declares another employer"),
                    "413": problem_ref("File larger than 64 MiB"),
                    "422": problem_ref("Not a valid e-BDS file (line and reason given)"),
                    "503": problem_ref("The store or the upload directory failed")
                }
            }},
            "/v1/decisions": {"get": {
                "summary": "The detectors' signed decisions and those in force (security team, auditors)",
                "security": [{"bearer": []}],
                "responses": with_ok("Decisions", &[
                    ("401", "No valid token bound to this certificate"),
                    ("403", "Not a security or auditor role; or this identity is quarantined"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only")
                ])
            }},
            "/v1/decisions/{id}/release": {"post": {
                "summary": "One administrator's approval to lift a decision early; two distinct administrators release it",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReleaseRequest"}}}},
                "responses": with_ok("ReleaseState", &[
                    ("400", "Malformed body or no reason given"),
                    ("401", "No valid token bound to this certificate"),
                    ("403", "Not a security role; or this identity is quarantined"),
                    ("404", "No such decision in force"),
                    ("409", "The same administrator again, or the target approving its own release"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only")
                ])
            }},
            "/v1/exports": {"post": {
                "summary": "Files a bulk export to a partner (security administrators); it runs after two distinct administrators approve it",
                "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExportRequest"}}}},
                "responses": with_status("201", "ExportState", &[
                    ("400", "Malformed body"),
                    ("401", "No valid token bound to this certificate"),
                    ("403", "Not a security role; or this identity is quarantined"),
                    ("404", "This gateway has no export desk"),
                    ("422", "The recipient is not a partner identity, or a number is not a CNSS number"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only, or the node failed")
                ])
            }},
            "/v1/exports/{id}": {"get": {
                "summary": "Where an export stands (security, auditors, and its recipient); never the persons it names",
                "security": [{"bearer": []}],
                "parameters": [export_id_param()],
                "responses": with_ok("ExportState", &[
                    ("401", "No valid token bound to this certificate"),
                    ("403", "This identity is quarantined"),
                    ("404", "No such export (or not yours to see)"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only")
                ])
            }},
            "/v1/exports/{id}/approve": {"post": {
                "summary": "One security administrator's approval, made with their own certificate; two distinct ones, neither the recipient",
                "security": [{"bearer": []}],
                "parameters": [export_id_param()],
                "responses": with_ok("ExportState", &[
                    ("401", "No valid token bound to this certificate"),
                    ("403", "Not a security role; or this identity is quarantined"),
                    ("404", "No such export"),
                    ("409", "Already ran, or this administrator already approved"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only")
                ])
            }},
            "/v1/exports/{id}/run": {"post": {
                "summary": "Runs an approved export: every person read through the custodians as export/RECIPIENT (audited), canaries added, the manifest sealed",
                "security": [{"bearer": []}],
                "parameters": [export_id_param()],
                "responses": with_ok("ExportState", &[
                    ("401", "No valid token bound to this certificate"),
                    ("403", "Not a security role; or this identity is quarantined"),
                    ("404", "No such export"),
                    ("409", "Fewer than two approvals, or it already ran"),
                    ("429", "This identity is throttled"),
                    ("503", "Essential services only, or the custodians or the store failed")
                ])
            }},
            "/v1/exports/{id}/file": {"get": {
                "summary": "The export's CSV, for its recipient only; every fetch is recorded",
                "security": [{"bearer": []}],
                "parameters": [export_id_param()],
                "responses": {
                    "200": {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}},
                    "401": problem_ref("No valid token bound to this certificate"),
                    "403": problem_ref("An administrator, not the recipient; or this identity is quarantined"),
                    "404": problem_ref("No such export (or not yours)"),
                    "409": problem_ref("It has not run yet"),
                    "429": problem_ref("This identity is throttled"),
                    "503": problem_ref("Essential services only")
                }
            }},
            "/healthz": {"get": {
                "summary": "Liveness: the audit log can record",
                "security": [],
                "responses": with_ok("Health", &[("503", "The audit log has failed; no read is served")])
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (no personal data in labels)",
                "security": [],
                "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }}
        }
    })
}
