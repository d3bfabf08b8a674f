//! `/healthz` and `/readyz`, for a service manager or a load balancer.
//!
//! - `/healthz`: the process is up and its chain actor answers a read
//!   within [`ACTOR_DEADLINE`]. 200 `{"status":"ok"}`, else 503 with the
//!   reason.
//! - `/readyz`: healthy, and the node has a chain, is not catching up with
//!   a peer, and has at least one peer. 200 `{"status":"ready", ...}`, else
//!   503 `{"status":"not ready","reasons":[...]}`.

use crate::server::App;
use crate::NetView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chain_node::{Network, SyncProgress};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long the chain actor may take to answer a health check.
pub const ACTOR_DEADLINE: Duration = Duration::from_secs(2);

/// Why the chain actor is not healthy, if it is not: `answered` is the
/// outcome of a read sent to it (`None`: no answer within the deadline;
/// `Some(false)`: it has stopped).
fn actor_problem(answered: Option<bool>) -> Option<String> {
    match answered {
        Some(true) => None,
        Some(false) => Some("the node is stopping".into()),
        None => Some(format!(
            "the chain actor did not answer within {} s",
            ACTOR_DEADLINE.as_secs()
        )),
    }
}

/// Why the node is not ready to serve, empty when it is.
pub(crate) fn readiness(has_chain: bool, sync: Option<SyncProgress>, peers: usize) -> Vec<String> {
    let mut reasons = Vec::new();
    if !has_chain {
        reasons.push("no chain yet".to_string());
    }
    if let Some(p) = sync.filter(|p| !p.done) {
        reasons.push(format!("syncing: height {} of {}", p.height, p.target));
    }
    if peers == 0 {
        reasons.push("no peers".to_string());
    }
    reasons
}

async fn ask_actor<N: Network, V: NetView>(app: &App<N, V>) -> Option<String> {
    let read = app
        .node
        .chain()
        .pool(chain_node::pool_reads::PoolRequest::Ping);
    let answered = tokio::time::timeout(ACTOR_DEADLINE, read)
        .await
        .ok()
        .map(|r| r.is_some());
    actor_problem(answered)
}

pub(crate) async fn healthz<N: Network, V: NetView>(State(app): State<Arc<App<N, V>>>) -> Response {
    match ask_actor(&app).await {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy", "reason": reason})),
        )
            .into_response(),
    }
}

pub(crate) async fn readyz<N: Network, V: NetView>(State(app): State<Arc<App<N, V>>>) -> Response {
    let mut reasons: Vec<String> = ask_actor(&app).await.into_iter().collect();
    let view = app.node.chain().view();
    let peers = app.net_info().await.map_or(0, |n| n.peers.len());
    reasons.extend(readiness(view.is_some(), app.node.sync_progress(), peers));
    if reasons.is_empty() {
        Json(json!({
            "status": "ready",
            "height": view.map(|v| v.tip.height),
            "peers": peers,
        }))
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reasons": reasons})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_a_chain_a_finished_sync_and_a_peer() {
        let done = SyncProgress {
            height: 10,
            target: 10,
            done: true,
        };
        assert!(readiness(true, None, 1).is_empty());
        assert!(readiness(true, Some(done), 3).is_empty());
        let syncing = SyncProgress {
            height: 4,
            target: 10,
            done: false,
        };
        assert_eq!(
            readiness(true, Some(syncing), 1),
            vec!["syncing: height 4 of 10"]
        );
        assert_eq!(readiness(false, None, 0), vec!["no chain yet", "no peers"]);
    }

    #[test]
    fn an_actor_that_does_not_answer_is_unhealthy() {
        assert_eq!(actor_problem(Some(true)), None);
        assert!(actor_problem(Some(false)).unwrap().contains("stopping"));
        assert!(actor_problem(None).unwrap().contains("did not answer"));
    }
}
