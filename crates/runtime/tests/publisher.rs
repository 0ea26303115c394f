//! The Event publisher against a stub API server (a `tower` service behind `kube::Client`):
//! each distinct error list is posted once, a repeat is not, a failed post is counted and
//! retried with backoff (paused time: the retry waits no wall-clock time).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_api::error::{ConfigError, Reason};
use ferrolb_runtime::events::{run_publisher, Rejection};
use kube::runtime::events::Reporter;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const NS: &str = "metallb-system";

fn error(name: &str, path: &str) -> ConfigError {
    ConfigError {
        kind: "IPAddressPool".into(),
        namespace: NS.into(),
        name: name.into(),
        path: path.into(),
        value: "x".into(),
        reason: Reason::Required,
    }
}

fn rejection(errors: Vec<ConfigError>) -> Rejection {
    Rejection {
        errors,
        uids: BTreeMap::from([(
            ("IPAddressPool".into(), NS.into(), "a".into()),
            "uid-a".into(),
        )]),
    }
}

/// A stub that answers `fail_first` posts with 500, the rest with 201, and hands every posted
/// Event to `posted`.
fn client(fail_first: usize, posted: mpsc::UnboundedSender<Value>) -> kube::Client {
    let failures_left = Arc::new(Mutex::new(fail_first));
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let posted = posted.clone();
        let failures_left = Arc::clone(&failures_left);
        async move {
            let path = req.uri().path().to_string();
            let body = req.into_body().collect_bytes().await.unwrap_or_default();
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let fail = {
                let mut left = failures_left.lock().unwrap_or_else(|p| p.into_inner());
                let fail = *left > 0;
                *left = left.saturating_sub(1);
                fail
            };
            let _ = posted.send(serde_json::json!({"path": path, "event": event, "failed": fail}));
            let mut resp: http::Response<kube::client::Body> = if fail {
                let status = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "reason": "InternalError", "code": 500, "message": "stub"});
                http::Response::new(kube::client::Body::from(
                    serde_json::to_vec(&status).unwrap_or_default(),
                ))
            } else {
                http::Response::new(kube::client::Body::from(body.to_vec()))
            };
            *resp.status_mut() = if fail {
                http::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                http::StatusCode::CREATED
            };
            Ok::<_, Infallible>(resp)
        }
    });
    kube::Client::new(service, NS)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(600), rx.recv())
        .await
        .expect("a post")
        .expect("the stub is alive")
}

fn note(posted: &Value) -> String {
    posted["event"]["note"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn each_distinct_error_list_is_posted_once() {
    let (posted_tx, mut posted) = mpsc::unbounded_channel();
    let failures = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = watch::channel(Rejection::default());
    let cancel = CancellationToken::new();
    let counted = Arc::clone(&failures);
    let task = tokio::spawn(run_publisher(
        client(0, posted_tx),
        Reporter {
            controller: "ferrolb-test".into(),
            instance: Some("t-0".into()),
        },
        NS.into(),
        rx,
        move |_: &kube::Error| {
            counted.fetch_add(1, Ordering::Relaxed);
        },
        cancel.clone(),
    ));

    // Two errors: two Events, about the pool with its UID.
    tx.send_replace(rejection(vec![
        error("a", "spec.addresses[0]"),
        error("a", "spec.addresses[1]"),
    ]));
    let first = next(&mut posted).await;
    let second = next(&mut posted).await;
    assert_eq!(
        first["path"],
        format!("/apis/events.k8s.io/v1/namespaces/{NS}/events")
    );
    assert_eq!(first["event"]["reason"], "ConfigurationRejected");
    assert_eq!(first["event"]["regarding"]["uid"], "uid-a");
    assert!(note(&first).contains("spec.addresses[0]"), "{first}");
    assert!(note(&second).contains("spec.addresses[1]"), "{second}");

    // The same list again: nothing. A different one: posted (and the next post is it, so the
    // repeat posted nothing in between).
    tx.send_replace(rejection(vec![
        error("a", "spec.addresses[0]"),
        error("a", "spec.addresses[1]"),
    ]));
    tx.send_replace(rejection(vec![error("a", "spec.autoAssign")]));
    let third = next(&mut posted).await;
    assert!(note(&third).contains("spec.autoAssign"), "{third}");

    // Accepted, then the same list again: news again.
    tx.send_replace(Rejection::default());
    // Run until every task waits (the test runtime has one thread and a paused clock, so the
    // sleep returns only when the publisher is idle again, having taken the empty list); the
    // publisher gives no other sign of an empty list.
    tokio::time::sleep(Duration::from_millis(1)).await;
    tx.send_replace(rejection(vec![error("a", "spec.autoAssign")]));
    let fourth = next(&mut posted).await;
    assert!(note(&fourth).contains("spec.autoAssign"), "{fourth}");
    assert_eq!(failures.load(Ordering::Relaxed), 0);

    cancel.cancel();
    task.await.expect("join");
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_is_counted_and_retried() {
    let (posted_tx, mut posted) = mpsc::unbounded_channel();
    let failures = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = watch::channel(rejection(vec![error("a", "spec.addresses[0]")]));
    let cancel = CancellationToken::new();
    let counted = Arc::clone(&failures);
    let task = tokio::spawn(run_publisher(
        client(1, posted_tx),
        Reporter {
            controller: "ferrolb-test".into(),
            instance: None,
        },
        NS.into(),
        rx,
        move |_: &kube::Error| {
            counted.fetch_add(1, Ordering::Relaxed);
        },
        cancel.clone(),
    ));
    // The value present before the task started is published too.
    let failed = next(&mut posted).await;
    assert_eq!(failed["failed"], true);
    let retried = next(&mut posted).await;
    assert_eq!(retried["failed"], false);
    assert_eq!(note(&retried), note(&failed), "the same Event, retried");
    assert_eq!(failures.load(Ordering::Relaxed), 1);
    drop(tx);
    task.await.expect("the publisher ends with its sender");
    cancel.cancel();
}
