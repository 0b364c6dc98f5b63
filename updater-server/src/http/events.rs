//! Agent events: ingestion (`POST /api/v1/agents/{agent}/events`) and the
//! tenant's views (`…/events`, `…/update-history`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::Json;
use catalog::events::{EventAck, EventBatch};
use serde::Deserialize;
use serde_json::Value;

use super::errors::{blocking, error, internal, ApiError, JsonBody};
use super::Shared;
use crate::auth::Principal;
use crate::events::{self, EventsError, Filter, DEFAULT_PAGE};
use crate::store::Agent;

impl From<EventsError> for ApiError {
    fn from(e: EventsError) -> Self {
        ApiError::new(match &e {
            EventsError::Invalid(_) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &e.to_string(),
            ),
            EventsError::Busy => error(StatusCode::SERVICE_UNAVAILABLE, "busy", &e.to_string()),
            EventsError::Store(_) | EventsError::Corrupt(..) => internal(&e),
        })
    }
}

/// `POST /api/v1/agents/{agent}/events`: stores the batch durably (the
/// commit is fsynced before this answers) and acknowledges its ids.
pub(crate) async fn post_events(
    State(state): State<Shared>,
    Extension(agent): Extension<Agent>,
    JsonBody(batch): JsonBody<EventBatch>,
) -> Result<Json<EventAck>, ApiError> {
    let metrics_state = state.clone();
    let ack = blocking(move || {
        let now = state.accounts.now();
        let store = state.accounts.store();
        let ack = events::ingest(store, &agent.tenant, &agent.id, &batch, now)?;
        // After the events are durable: a failure here loses no event (the
        // next check-in observes the device again).
        if let Err(e) = super::fleet::fleet(&state).record_rollout_events(
            &agent.tenant,
            &agent.id,
            &batch.events,
        ) {
            tracing::warn!(error = %e, agent = %agent.id, "rollout states from events");
        }
        Ok(ack)
    })
    .await?;
    metrics_state.metrics.events(ack.accepted, ack.duplicates);
    Ok(Json(ack))
}

/// `?since=<seq>&limit=<n>&agent=<id>&device=<identity>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    since: Option<u64>,
    limit: Option<usize>,
    agent: Option<String>,
    device: Option<String>,
}

fn page_query(
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<(Option<u64>, usize, Filter), ApiError> {
    let Query(q) = q.map_err(|r| {
        ApiError::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &r.body_text(),
        ))
    })?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=events::MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("limit must be 1 to {}", events::MAX_PAGE),
        )));
    }
    let filter = Filter {
        agent: q.agent,
        device: q.device,
    };
    Ok((q.since, limit, filter))
}

/// `GET /api/v1/tenants/{tenant}/events?since=&limit=&agent=&device=`.
pub(crate) async fn list_events(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (since, limit, filter) = page_query(q)?;
    blocking(move || {
        let page = events::list_events(state.accounts.store(), &p.tenant, since, limit, &filter)?;
        Ok(Json(
            serde_json::to_value(page).map_err(|e| ApiError::new(internal(&e)))?,
        ))
    })
    .await
}

/// `GET /api/v1/tenants/{tenant}/update-history?since=&limit=&agent=&device=`.
pub(crate) async fn update_history(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (since, limit, filter) = page_query(q)?;
    blocking(move || {
        let page = events::list_history(state.accounts.store(), &p.tenant, since, limit, &filter)?;
        Ok(Json(
            serde_json::to_value(page).map_err(|e| ApiError::new(internal(&e)))?,
        ))
    })
    .await
}
