//! The named schemas of the OpenAPI document (`components.schemas`).

use serde_json::{json, Value};

use super::schema_ref;

fn obj(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

fn list(item: &str) -> Value {
    json!({"type": "array", "items": schema_ref(item)})
}

fn page(item: &str) -> Value {
    obj(
        &["items", "next_since"],
        json!({"items": list(item), "next_since": {"type": "integer", "minimum": 0}}),
    )
}

/// The named schemas.
pub fn schemas() -> Value {
    let s = json!({"type": "string"});
    let t = json!({"type": "string", "format": "date-time"});
    let b = json!({"type": "boolean"});
    let any = json!({});
    let update = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut req = vec!["id", "at", "kind", "target", "version"];
        req.extend_from_slice(extra);
        req
    };
    let mut schemas = json!({
        "Error": obj(&["code", "message"], json!({"code": s, "message": s})),
        "Health": obj(&["status"], json!({"status": {"const": "ok"}})),
        "TufMetadata": obj(&["signed", "signatures"], json!({"signed": {"type": "object"}, "signatures": {"type": "array"}})),
        "OpenApiDocument": obj(&["openapi", "info", "paths"], json!({"openapi": s, "info": {"type": "object"}, "paths": {"type": "object"}})),
        "Login": obj(&["tenant", "email", "password"], json!({"tenant": s, "email": s, "password": s})),
        "LoginResponse": obj(&["token", "token_type", "tenant", "idle_expires_at", "expires_at"],
            json!({"token": s, "token_type": {"const": "Bearer"}, "tenant": s, "idle_expires_at": t, "expires_at": t})),
        "EnrollRequest": obj(&["tenant", "token", "system_id", "machine_fingerprint", "hostname", "os"],
            json!({"tenant": s, "token": s, "system_id": s, "machine_fingerprint": s, "hostname": s, "os": s})),
        "EnrollResponse": obj(&["id", "credential", "tenant", "reenrolled", "suspected_clone", "assignment_key", "catalog_root", "root"],
            json!({"id": s, "credential": s, "tenant": s, "system_id": s, "hostname": s, "os": s,
                   "enrolled_at": t, "credential_issued_at": t, "reenrolled": b, "suspected_clone": b,
                   "clone_of": {"type": ["string", "null"]}, "assignment_key": {"type": "object"},
                   "catalog_root": schema_ref("CatalogRoot"), "root": schema_ref("TufMetadata")})),
        "CatalogRoot": obj(&["version", "sha256", "url"], json!({"version": {"type": "integer"}, "sha256": s, "url": s})),
        "TenantInfo": obj(&["id", "name", "created_at", "enrollment_token", "assignment_key_id", "catalog_root"],
            json!({"id": s, "name": s, "created_at": t, "assignment_key_id": s,
                   "enrollment_token": obj(&["active"], json!({"active": b, "issued_at": {"type": ["string", "null"]}})),
                   "catalog_root": schema_ref("CatalogRoot")})),
        "Admin": obj(&["id", "email", "role", "primary", "created_at"],
            json!({"id": s, "email": s, "role": {"enum": ["full", "read-only"]}, "primary": b, "created_at": t})),
        "AdminList": list("Admin"),
        "NewAdmin": obj(&["email", "role", "password"],
            json!({"email": s, "role": {"enum": ["full", "read-only"]}, "password": {"type": "string", "minLength": 12}, "primary": b})),
        "EnrollmentToken": obj(&["token"], json!({"token": s})),
        "ApiToken": obj(&["id", "name", "scope", "created_at", "created_by"],
            json!({"id": s, "name": s, "scope": {"enum": ["read", "full"]}, "created_at": t, "created_by": s,
                   "revoked_at": {"type": ["string", "null"]}})),
        "ApiTokenList": list("ApiToken"),
        "NewApiToken": obj(&["name", "scope"], json!({"name": s, "scope": {"enum": ["read", "full"]}})),
        "ApiTokenCreated": {"allOf": [schema_ref("ApiToken"), obj(&["token"], json!({"token": s}))]},
        "Release": obj(&["id", "target_name", "vendor", "model", "hardware_ids", "version", "security_counter",
                         "protocol", "capabilities", "urgency", "release_notes", "size", "sha256", "source_format", "imported_at"],
            json!({"id": {"type": "string", "description": "The target name in unpadded base64url: the `{id}` of …/catalog/releases/{id}."},
                   "target_name": {"type": "string", "description": "The TUF target name, vendor/model/version/file."},
                   "vendor": s, "model": s,
                   "hardware_ids": {"type": "array", "items": {"type": "string", "pattern": "^[0-9A-F]{4}:[0-9A-F]{4}(@[0-9A-F]{4}-[0-9A-F]{4})?$"}},
                   "version": obj(&["version", "format"], json!({"version": s, "format": {"enum": ["plain", "bcd", "hex"]}})),
                   "security_counter": {"type": "integer", "minimum": 0},
                   "protocol": s,
                   "capabilities": obj(&["needs_replug", "silent_capable", "automatic_capable", "install_duration_secs"],
                       json!({"needs_replug": b, "silent_capable": b, "automatic_capable": b,
                              "install_duration_secs": {"type": "integer", "minimum": 0}})),
                   "urgency": {"enum": ["low", "medium", "high", "critical"]},
                   "release_notes": s,
                   "size": {"type": "integer", "minimum": 0},
                   "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                   "source_format": {"enum": ["raw", "dfu", "dfuse", "cab"]},
                   "lvfs": {"type": ["object", "null"]},
                   "product_family": s,
                   "imported_at": t})),
        "ReleaseList": list("Release"),
        "Agent": obj(&["id", "system_id", "hostname", "os", "enrolled_at", "suspected_clone"],
            json!({"id": s, "system_id": s, "hostname": s, "os": s, "enrolled_at": t, "credential_issued_at": t,
                   "suspected_clone": b, "clone_of": {"type": ["string", "null"]}})),
        "AgentList": list("Agent"),
        "Event": {
            "description": "`kind` selects the extra fields: update kinds carry `target` and `version` (and `reason` for update_failed); tamper_detected carries `source` and `reason`.",
            "oneOf": [
                obj(&["id", "at", "kind"], json!({"id": schema_ref("EventId"), "at": t, "device": s, "detail": any,
                    "kind": {"enum": ["agent_started", "device_discovered", "device_attached", "device_detached"]}})),
                obj(&update(&[]), json!({"id": schema_ref("EventId"), "at": t, "device": s, "detail": any, "target": s, "version": s,
                    "kind": {"enum": ["update_available", "update_staged", "update_started", "update_succeeded", "awaiting_replug", "user_declined", "user_deferred"]}})),
                obj(&update(&["reason"]), json!({"id": schema_ref("EventId"), "at": t, "device": s, "detail": any, "target": s, "version": s, "reason": s,
                    "kind": {"const": "update_failed"}})),
                obj(&["id", "at", "kind", "source", "reason"], json!({"id": schema_ref("EventId"), "at": t, "device": s, "detail": any, "source": s, "reason": s,
                    "kind": {"const": "tamper_detected"}})),
            ],
        },
        "EventId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "EventBatch": obj(&["events"], json!({"events": {"type": "array", "maxItems": catalog::events::MAX_EVENTS_PER_BATCH, "items": schema_ref("Event")}})),
        "EventAck": obj(&["acknowledged", "accepted", "duplicates"],
            json!({"acknowledged": {"type": "array", "items": schema_ref("EventId")},
                   "accepted": {"type": "integer"}, "duplicates": {"type": "integer"}})),
        "StoredEvent": obj(&["seq", "agent", "received_at", "event"],
            json!({"seq": {"type": "integer"}, "agent": s, "received_at": t, "event": schema_ref("Event")})),
        "EventPage": page("StoredEvent"),
        "UpdateRecord": obj(&["seq", "agent", "target", "version", "outcome", "at", "event_id"],
            json!({"seq": {"type": "integer"}, "agent": s, "device": {"type": ["string", "null"]}, "target": s, "version": s,
                   "outcome": {"enum": ["available", "staged", "started", "succeeded", "failed", "awaiting_replug", "declined", "deferred"]},
                   "reason": {"type": ["string", "null"]}, "at": t, "event_id": s})),
        "UpdateHistoryPage": page("UpdateRecord"),
    });
    schemas["MemberEdit"] = obj(
        &[],
        json!({"add": {"type": "array", "items": s}, "remove": {"type": "array", "items": s}}),
    );
    let new_password = json!({"type": "string", "minLength": 12});
    schemas["NewPassword"] = obj(&["password"], json!({"password": new_password}));
    schemas["PasswordChange"] = obj(
        &["current_password", "new_password"],
        json!({"current_password": s, "new_password": new_password}),
    );
    schemas["WindowPreviewRequest"] = obj(
        &["cron", "duration_minutes", "tz"],
        json!({"cron": s, "duration_minutes": {"type": "integer"}, "tz": s, "from": t,
               "count": {"type": "integer", "minimum": 1, "maximum": 100}}),
    );
    schemas["WindowOccurrence"] = obj(&["start", "end"], json!({"start": t, "end": t}));
    schemas["WindowOccurrenceList"] = list("WindowOccurrence");
    // Fleet records: described, not spelled out field by field.
    for (name, what) in [
        ("CheckIn", "An agent's check-in: host, users, devices, update states."),
        ("CheckInResponse", "The signed assignment document, the next poll time, the tenant's LDAP group definitions (best priority first) and account rules."),
        ("Group", "A custom user group: name, membership rule, poll interval."),
        ("Settings", "Shared and excluded accounts, the All Users poll interval."),
        ("FirmwarePolicy", "A firmware policy: model, version (pinned or latest), deployment type, window, groups."),
        ("SoftwarePolicy", "A software policy for the agent itself."),
        ("PolicyCopy", "The copy's name."),
        ("Device", "An inventoried device."),
        ("Host", "An inventoried host."),
        ("User", "An inventoried user."),
    ] {
        schemas[name] = json!({"type": "object", "description": what});
    }
    for (list_name, item) in [
        ("GroupList", "Group"),
        ("FirmwarePolicyList", "FirmwarePolicy"),
        ("SoftwarePolicyList", "SoftwarePolicy"),
        ("DeviceList", "Device"),
        ("HostList", "Host"),
        ("UserList", "User"),
    ] {
        schemas[list_name] = list(item);
    }
    rollouts(&mut schemas);
    reports(&mut schemas);
    schemas
}

/// Staged rollouts.
fn rollouts(schemas: &mut Value) {
    let s = json!({"type": "string"});
    let ot = json!({"type": ["string", "null"], "format": "date-time"});
    let pct = json!({"type": "integer", "minimum": 1, "maximum": 100});
    let n = json!({"type": "integer", "minimum": 0});
    let by_reason = json!({"type": "object", "additionalProperties": n});
    let state = json!({"enum": ["running", "paused", "completed", "cancelled"]});
    let deployment = json!({"enum": ["optional", "persistent", "automatic", "silent"]});
    let start = json!({"oneOf": [
        {"enum": ["immediately", "approval", "after_previous"]},
        obj(&["at"], json!({"at": {"type": "string", "format": "date-time"}})),
    ]});
    schemas["WaveInput"] = json!({
        "description": "Exactly one of percent, rest or group.",
        "type": "object", "additionalProperties": false,
        "properties": {"name": s, "percent": pct, "rest": {"type": "boolean"}, "group": s,
            "deployment": deployment, "window": {"type": "object"}, "start": start,
            "success_threshold_percent": pct, "error_threshold_percent": pct},
    });
    schemas["RolloutInput"] = json!({
        "type": "object", "additionalProperties": false,
        "required": ["name", "model", "version", "waves"],
        "properties": {"name": s, "model": s, "version": s,
            "groups": {"type": "array", "items": s}, "deployment": deployment,
            "window": {"type": "object"}, "source": {"type": "object"},
            "fallback_to_server": {"type": "boolean"},
            "waves": {"type": "array", "minItems": 1, "maxItems": 20, "items": schema_ref("WaveInput")}},
    });
    let figures = obj(
        &[
            "devices",
            "pending",
            "downloading",
            "waiting",
            "installing",
            "installed",
            "failed",
        ],
        json!({"devices": n, "pending": n, "downloading": n, "waiting": by_reason,
               "installing": n, "installed": n, "failed": by_reason,
               "failing_devices": {"type": "object"}}),
    );
    schemas["RolloutStatus"] = obj(
        &[
            "id",
            "name",
            "state",
            "release",
            "devices",
            "installed",
            "failed",
            "waves",
        ],
        json!({"id": s, "name": s, "state": state, "pause": {"type": ["object", "null"]},
               "release": {"type": "object"}, "devices": n, "installed": n, "failed": n,
               "waves": {"type": "array", "items": obj(
                   &["number", "name", "target", "deployment", "start", "started_at", "succeeded_at", "ended_at", "figures"],
                   json!({"number": n, "name": s, "target": s, "deployment": deployment, "start": s,
                          "success_threshold_percent": pct, "error_threshold_percent": pct,
                          "started_at": ot, "succeeded_at": ot, "ended_at": ot, "figures": figures}))}}),
    );
    schemas["Rollout"] = obj(
        &[
            "id",
            "spec",
            "release",
            "state",
            "waves",
            "revision",
            "log",
            "created_at",
            "updated_at",
            "status",
        ],
        json!({"id": s, "tenant": s, "spec": schema_ref("RolloutInput"), "release": {"type": "object"},
               "state": state, "pause": {"type": "object"}, "waves": {"type": "array"},
               "revision": n, "log": {"type": "array"}, "created_at": s, "updated_at": s,
               "status": schema_ref("RolloutStatus")}),
    );
    schemas["RolloutList"] = json!({"type": "array", "items": obj(
        &["id", "name", "state", "release", "waves", "waves_begun"],
        json!({"id": s, "name": s, "state": state, "release": {"type": "object"},
               "waves": n, "waves_begun": n}))});
}

/// The report documents (`…/reports/*` as JSON).
fn reports(schemas: &mut Value) {
    let s = json!({"type": "string"});
    let os = json!({"type": ["string", "null"]});
    let t = json!({"type": "string", "format": "date-time"});
    let ot = json!({"type": ["string", "null"], "format": "date-time"});
    let b = json!({"type": "boolean"});
    let n = json!({"type": "integer", "minimum": 0});
    let names = json!({"type": "array", "items": s});
    let head = |kind: &str| json!({"report": {"const": kind}, "tenant": s, "generated_at": t});
    let report = |kind: &str, required: &[&str], extra: Value| {
        let mut props = head(kind);
        for (k, v) in extra.as_object().into_iter().flatten() {
            props[k] = v.clone();
        }
        let mut req = vec!["report", "tenant", "generated_at"];
        req.extend_from_slice(required);
        obj(&req, props)
    };
    schemas["InventoryRow"] = obj(
        &[
            "device_id",
            "identity",
            "model",
            "model_name",
            "vendor_id",
            "product_id",
            "host",
            "hostname",
            "users",
            "first_seen",
            "last_seen",
            "deleted",
            "other_vendor",
            "telephony",
            "updatable",
        ],
        json!({"device_id": s, "identity": s, "model": s, "model_name": s,
               "vendor_id": {"type": "string", "pattern": "^[0-9a-f]{4}$"},
               "product_id": {"type": "string", "pattern": "^[0-9a-f]{4}$"},
               "manufacturer": os, "product": os, "serial": os, "firmware_version": os,
               "host": s, "hostname": s, "users": names, "first_seen": t, "last_seen": t,
               "deleted": b, "deleted_at": ot, "other_vendor": b, "telephony": b, "updatable": b}),
    );
    schemas["InventoryReport"] = report(
        "inventory",
        &["devices", "deleted", "rows"],
        json!({"devices": n, "deleted": n, "rows": list("InventoryRow")}),
    );
    let version_status = json!({"enum": ["up_to_date", "outdated", "unknown", "no_release"]});
    schemas["ModelVersionStatus"] = obj(
        &[
            "model",
            "model_name",
            "latest_version",
            "devices",
            "up_to_date",
            "outdated",
            "unknown",
            "no_release",
            "versions",
        ],
        json!({"model": s, "model_name": s, "latest_version": os, "devices": n, "up_to_date": n,
               "outdated": n, "unknown": n, "no_release": n,
               "versions": {"type": "array", "items": obj(&["version", "status", "devices"],
                   json!({"version": os, "status": version_status, "devices": n}))}}),
    );
    schemas["VersionStatusReport"] = report(
        "versions",
        &["models"],
        json!({"models": list("ModelVersionStatus")}),
    );
    let statuses = [
        "compliant",
        "pending",
        "waiting_for_window",
        "waiting_for_consent",
        "waiting",
        "deferred",
        "awaiting_replug",
        "failed",
        "not_seen_since_policy_change",
        "not_updatable",
        "no_release",
        "pinned_version_not_in_catalog",
        "not_capable",
        "downgrade_refused",
        "no_policy",
    ];
    schemas["ComplianceRow"] = obj(
        &[
            "device_id",
            "identity",
            "model",
            "host",
            "hostname",
            "users",
            "group",
            "policy",
            "policy_name",
            "deployment",
            "target_version",
            "installed_version",
            "compliant",
            "status",
            "detail",
            "policy_updated_at",
        ],
        json!({"device_id": s, "identity": s, "model": s, "serial": os, "host": s, "hostname": s,
               "users": names, "group": s, "policy": os, "policy_name": os,
               "deployment": {"enum": ["optional", "persistent", "automatic", "silent", null]},
               "target_version": os, "installed_version": os, "compliant": b,
               "status": {"enum": statuses}, "detail": s, "last_check_in": ot, "policy_updated_at": ot}),
    );
    schemas["ComplianceReport"] = report(
        "compliance",
        &[
            "devices",
            "compliant",
            "non_compliant",
            "without_policy",
            "by_status",
            "rows",
        ],
        json!({"devices": n, "compliant": n, "non_compliant": n, "without_policy": n,
               "by_status": {"type": "object", "additionalProperties": n},
               "rows": list("ComplianceRow")}),
    );
    let models = json!({"type": "array", "items": obj(&["model", "model_name", "devices"],
        json!({"model": s, "model_name": s, "devices": n}))});
    schemas["DistributionReport"] = report(
        "distribution",
        &["groups", "users"],
        json!({
            "groups": {"type": "array", "items": obj(
                &["group", "name", "priority", "users", "users_without_devices", "devices", "models"],
                json!({"group": s, "name": s, "priority": {"type": ["integer", "null"]}, "users": n,
                       "users_without_devices": n, "devices": n, "models": models}))},
            "users": {"type": "array", "items": obj(
                &["user", "group", "group_name", "devices", "models"],
                json!({"user": s, "group": s, "group_name": s, "devices": n, "models": models}))},
        }),
    );
    schemas["UpdateHistoryRow"] = {
        let mut row = schemas["UpdateRecord"].clone();
        row["properties"]["hostname"] = s.clone();
        if let Some(req) = row["required"].as_array_mut() {
            req.push(json!("hostname"));
        }
        row
    };
    schemas["UpdateHistoryReport"] = report(
        "history",
        &["from", "to", "entries", "truncated", "rows"],
        json!({"from": ot, "to": ot, "entries": n, "truncated": b, "rows": list("UpdateHistoryRow")}),
    );
}
