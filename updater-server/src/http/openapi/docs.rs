//! [`DOCS`]: the human part of every mounted operation (summary, query
//! parameters, request and response schema names), one row each.

use super::{Doc, Out};
use crate::http::api::Method;

use self::Method::{Delete as DELETE, Get as GET, Post as POST, Put as PUT};
use self::Out::{Binary, Empty, Json, Report, Text};

const PAGE: &[(&str, &str, &str)] = &[
    (
        "since",
        "integer",
        "Cursor: the `next_since` of the previous page (default 0, the start).",
    ),
    (
        "limit",
        "integer",
        "Items per page, 1 to 1000 (default 100).",
    ),
    ("agent", "string", "Only this agent's."),
    (
        "device",
        "string",
        "Only this device's (its identity, e.g. `047f/serial/SN1`).",
    ),
];

const REPORT: &[(&str, &str, &str)] = &[(
    "format",
    "string",
    "`json` (default) or `csv`; without it, `Accept: text/csv` selects CSV.",
)];

const HISTORY_REPORT: &[(&str, &str, &str)] = &[
    REPORT[0],
    (
        "from",
        "string",
        "Only updates at or after this time (RFC 3339, or a date `YYYY-MM-DD` meaning its start, UTC).",
    ),
    (
        "to",
        "string",
        "Only updates before this time (RFC 3339, or a date `YYYY-MM-DD`: that whole day is included).",
    ),
    ("agent", "string", "Only this agent's."),
    (
        "device",
        "string",
        "Only this device's (its identity, e.g. `047f/serial/SN1`).",
    ),
];

const fn doc(
    method: Method,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    response: Out,
) -> Doc {
    Doc {
        method,
        path,
        summary,
        query: &[],
        request,
        file_body: false,
        response,
    }
}

/// One row per mounted operation.
pub const DOCS: &[Doc] = &[
    doc(GET, "/healthz", "Liveness.", None, Json("Health")),
    doc(
        GET,
        "/metrics",
        "Prometheus metrics (text exposition).",
        None,
        Text,
    ),
    doc(
        GET,
        "/repo/metadata/{file}",
        "Signed TUF metadata of the catalog.",
        None,
        Json("TufMetadata"),
    ),
    doc(
        GET,
        "/repo/targets/{*path}",
        "A firmware image by consistent-snapshot path (`Range`, `ETag`).",
        None,
        Binary,
    ),
    doc(
        GET,
        "/api/v1/openapi.json",
        "This document.",
        None,
        Json("OpenApiDocument"),
    ),
    doc(
        POST,
        "/api/v1/login",
        "Admin login: a session token.",
        Some("Login"),
        Json("LoginResponse"),
    ),
    doc(
        POST,
        "/api/v1/logout",
        "Ends the calling session.",
        None,
        Empty,
    ),
    doc(
        POST,
        "/api/v1/enroll",
        "Agent enrollment with the tenant's enrollment token (200 on re-enrollment).",
        Some("EnrollRequest"),
        Json("EnrollResponse"),
    ),
    doc(
        POST,
        "/api/v1/agents/{agent}/events",
        "Stores a batch of agent events durably and idempotently (by event id).",
        Some("EventBatch"),
        Json("EventAck"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}",
        "The tenant.",
        None,
        Json("TenantInfo"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/admins",
        "The tenant's admins.",
        None,
        Json("AdminList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/admins",
        "Creates an admin.",
        Some("NewAdmin"),
        Json("Admin"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/admins/{id}",
        "Deletes an admin and ends its sessions.",
        None,
        Empty,
    ),
    doc(
        PUT,
        "/api/v1/tenants/{tenant}/admins/{id}/password",
        "Sets another admin's password (at least 12 characters); that admin's sessions end.",
        Some("NewPassword"),
        Empty,
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/password",
        "The signed-in admin changes their own password (the current one must be right; wrong ones count towards the login lock-out); their other sessions end.",
        Some("PasswordChange"),
        Empty,
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/enrollment-token/rotate",
        "Issues a new enrollment token; the old one stops working.",
        None,
        Json("EnrollmentToken"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/api-tokens",
        "The tenant's API tokens (without secrets).",
        None,
        Json("ApiTokenList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/api-tokens",
        "Creates an API token (shown once).",
        Some("NewApiToken"),
        Json("ApiTokenCreated"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/api-tokens/{id}",
        "Revokes an API token.",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/catalog/releases",
        "The firmware releases of the catalog (shared by every tenant of the server).",
        None,
        Json("ReleaseList"),
    ),
    Doc {
        query: crate::import_flags::QUERY,
        file_body: true,
        ..doc(
            POST,
            "/api/v1/tenants/{tenant}/catalog/releases",
            "Uploads a firmware file (raw image, .dfu, DfuSe or LVFS .cab) as the body, with what the file does not carry as query parameters (the flags of `catalog import`), and publishes it in the signed metadata. 201: imported; 200: exactly this release was already there. 400 bad query, 413 over `serve --max-upload-mib`, 415 not application/octet-stream, 422 refused by the importer, 409 the same target with other bytes or metadata. Nothing is stored unless everything is accepted.",
            None,
            Json("Release"),
        )
    },
    doc(
        GET,
        "/api/v1/tenants/{tenant}/catalog/releases/{id}",
        "One release; `id` is the release's `id` (its target name in unpadded base64url).",
        None,
        Json("Release"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/catalog/releases/{id}",
        "Removes a release and publishes new signed metadata (its blob is deleted by `catalog gc`). 409 while an enabled firmware policy of any tenant pins exactly this version and no other release of the model has it; policies on `latest` move to the highest remaining version.",
        None,
        Empty,
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/windows/preview",
        "Preview a maintenance window: its next occurrences in UTC (DST rules as the agent applies them).",
        Some("WindowPreviewRequest"),
        Json("WindowOccurrenceList"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/agents",
        "Enrolled agents, suspected clones flagged.",
        None,
        Json("AgentList"),
    ),
    Doc {
        query: PAGE,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/events",
            "Agent events in receive order, paged.",
            None,
            Json("EventPage"),
        )
    },
    Doc {
        query: PAGE,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/update-history",
            "Update history (update-status events), paged.",
            None,
            Json("UpdateHistoryPage"),
        )
    },
    // Groups, settings, policies, inventory and check-in.
    doc(
        POST,
        "/api/v1/agents/{agent}/checkin",
        "Agent check-in: reports users, devices and update states; answers the signed assignment.",
        Some("CheckIn"),
        Json("CheckInResponse"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/groups",
        "Custom user groups.",
        None,
        Json("GroupList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/groups",
        "Creates a group.",
        Some("Group"),
        Json("Group"),
    ),
    doc(
        PUT,
        "/api/v1/tenants/{tenant}/groups/{id}",
        "Replaces a group.",
        Some("Group"),
        Json("Group"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/groups/{id}/members",
        "Adds and removes members of a manual group (the group by id or name; names compared without case; up to 100000 members), or adds the first column of a CSV file sent as text/csv.",
        Some("MemberEdit"),
        Json("Group"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/groups/{id}",
        "Deletes a group.",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/settings",
        "Fleet settings (shared and excluded accounts, default poll interval).",
        None,
        Json("Settings"),
    ),
    doc(
        PUT,
        "/api/v1/tenants/{tenant}/settings",
        "Replaces the fleet settings.",
        Some("Settings"),
        Json("Settings"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/policies/firmware",
        "Firmware policies.",
        None,
        Json("FirmwarePolicyList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/policies/firmware",
        "Creates a firmware policy.",
        Some("FirmwarePolicy"),
        Json("FirmwarePolicy"),
    ),
    doc(
        PUT,
        "/api/v1/tenants/{tenant}/policies/firmware/{id}",
        "Replaces a firmware policy.",
        Some("FirmwarePolicy"),
        Json("FirmwarePolicy"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/policies/firmware/{id}/copy",
        "Copies a firmware policy under a new name.",
        Some("PolicyCopy"),
        Json("FirmwarePolicy"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/policies/firmware/{id}",
        "Deletes a firmware policy.",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/policies/software",
        "Software (agent) policies.",
        None,
        Json("SoftwarePolicyList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/policies/software",
        "Creates a software policy.",
        Some("SoftwarePolicy"),
        Json("SoftwarePolicy"),
    ),
    doc(
        PUT,
        "/api/v1/tenants/{tenant}/policies/software/{id}",
        "Replaces a software policy.",
        Some("SoftwarePolicy"),
        Json("SoftwarePolicy"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/policies/software/{id}",
        "Deletes a software policy.",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/devices",
        "Inventory: devices.",
        None,
        Json("DeviceList"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/devices/{id}",
        "Deletes a device (marked deleted if it has a serial number).",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/hosts",
        "Inventory: hosts.",
        None,
        Json("HostList"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/hosts/{id}",
        "Deletes a host (not its devices or users).",
        None,
        Empty,
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/users",
        "Inventory: users.",
        None,
        Json("UserList"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/users/{id}",
        "Deletes a user (and hosts and devices no one else has).",
        None,
        Empty,
    ),
    // Staged rollouts.
    doc(
        GET,
        "/api/v1/tenants/{tenant}/rollouts",
        "Staged rollouts, newest first: release, state, waves begun, why paused.",
        None,
        Json("RolloutList"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/rollouts",
        "Starts a staged rollout of one release of a model to groups (or All Users) in waves: each a share of the devices, the rest, or a group, with its own deployment type, window, start condition (immediately, approval, after_previous, {\"at\": time}) and success / error thresholds.",
        Some("RolloutInput"),
        Json("Rollout"),
    ),
    doc(
        GET,
        "/api/v1/tenants/{tenant}/rollouts/{id}",
        "A rollout with its log and status.",
        None,
        Json("Rollout"),
    ),
    Doc {
        query: REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/rollouts/{id}/status",
            "Rollout status: per wave, devices pending / downloading / waiting (by reason) / installing / installed / failed (by reason), and when it began, succeeded and ended.",
            None,
            Report("RolloutStatus"),
        )
    },
    doc(
        POST,
        "/api/v1/tenants/{tenant}/rollouts/{id}/pause",
        "Pauses a running rollout: nothing new is assigned; devices already flashing finish.",
        None,
        Json("Rollout"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/rollouts/{id}/resume",
        "Resumes a paused rollout; the failures seen now no longer count against the error thresholds.",
        None,
        Json("Rollout"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/rollouts/{id}/approve",
        "Approves the next wave (one that starts on approval).",
        None,
        Json("Rollout"),
    ),
    doc(
        POST,
        "/api/v1/tenants/{tenant}/rollouts/{id}/cancel",
        "Cancels a rollout: its devices go back to the firmware policies.",
        None,
        Json("Rollout"),
    ),
    doc(
        DELETE,
        "/api/v1/tenants/{tenant}/rollouts/{id}",
        "Deletes a cancelled or completed rollout.",
        None,
        Empty,
    ),
    // Reports (JSON or CSV).
    Doc {
        query: REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/reports/inventory",
            "Device Inventory report: every device with model, ids, serial, firmware, host, users, first / last seen, deleted and other-vendor flags.",
            None,
            Report("InventoryReport"),
        )
    },
    Doc {
        query: REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/reports/versions",
            "Version Status report: per model, the latest release and how many devices run each installed version.",
            None,
            Report("VersionStatusReport"),
        )
    },
    Doc {
        query: REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/reports/compliance",
            "Policy Compliance report: per device under an enabled firmware policy, target vs installed version and why it is not compliant.",
            None,
            Report("ComplianceReport"),
        )
    },
    Doc {
        query: REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/reports/distribution",
            "Device Distribution report: per effective group (All Users included), users and devices per model; users without a device included.",
            None,
            Report("DistributionReport"),
        )
    },
    Doc {
        query: HISTORY_REPORT,
        ..doc(
            GET,
            "/api/v1/tenants/{tenant}/reports/history",
            "Update History report: update-status events in a date range, with host names.",
            None,
            Report("UpdateHistoryReport"),
        )
    },
];
