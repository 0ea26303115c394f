//! The webhook's I/O shell: a TLS listener (rustls, ring) serving MetalLB's webhook paths over
//! HTTP/1, each request decoded, judged by [`super::admission::decide`] against the newest
//! snapshot, and answered.
//!
//! The serving certificate comes from a [`CertSource`]: either `--cert-dir` (`tls.crt` and
//! `tls.key`, read again whenever their size or modification time changes, checked at each
//! handshake with two `stat` calls, so a Secret volume update or a cert-manager renewal takes
//! effect without a restart), or set in memory by the cert rotation ([`super::rotation`]).
//!
//! Until the daemon has read the configuration once (the snapshot is `None`) every request is
//! refused with 503: judging against an empty set would let conflicting objects in.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ferrolb_api::source::Resources;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::admission::{decide, Kind};
use super::certs::{self, CertError};

/// The newest configuration snapshot; `None` until the first one is read.
pub type Snapshot = watch::Receiver<Option<Arc<Resources>>>;

/// Largest AdmissionReview body read (the API server's own request limit is 3 MiB; the review
/// carries the object twice on UPDATE).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// A client has this long to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client has this long to send each request head (the API server's webhook timeout is at
/// most 30 s for the whole call).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Size and modification time of the two files, to notice a change.
type Stamp = [(u64, Option<SystemTime>); 2];

/// Where the serving certificate comes from.
#[derive(Debug)]
pub struct CertSource {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stamp: Option<Stamp>,
    key: Option<Arc<CertifiedKey>>,
}

impl CertSource {
    /// Certificates read from `dir/tls.crt` and `dir/tls.key`, reloaded when they change.
    pub fn from_dir(dir: PathBuf) -> Self {
        Self {
            dir: Some(dir),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Certificates set with [`CertSource::set`] (the cert rotation).
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Serves `cert_pem` / `key_pem` from now on.
    pub fn set(&self, cert_pem: &str, key_pem: &str) -> Result<(), CertError> {
        let key = Arc::new(certs::certified_key(cert_pem, key_pem)?);
        self.lock().key = Some(key);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key to serve now: from the directory (reloaded if the files changed; on a read
    /// error the previous key stays), or the one last set.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        let mut inner = self.lock();
        if let Some(dir) = &self.dir {
            let stamp = stamp(dir);
            if inner.stamp != Some(stamp) {
                match load_dir(dir) {
                    Ok(key) => {
                        tracing::info!(dir = %dir.display(), "webhook certificate loaded");
                        inner.key = Some(Arc::new(key));
                        inner.stamp = Some(stamp);
                    }
                    Err(error) => {
                        tracing::warn!(dir = %dir.display(), %error,
                            "cannot load the webhook certificate; keeping the previous one");
                    }
                }
            }
        }
        inner.key.clone()
    }
}

fn stamp(dir: &Path) -> Stamp {
    let one = |name: &str| {
        std::fs::metadata(dir.join(name))
            .map(|m| (m.len(), m.modified().ok()))
            .unwrap_or((0, None))
    };
    [one(certs::TLS_CRT), one(certs::TLS_KEY)]
}

fn load_dir(dir: &Path) -> Result<CertifiedKey, CertError> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| CertError::Pem {
            field: dir.join(name).display().to_string(),
            reason: e.to_string(),
        })
    };
    certs::certified_key(&read(certs::TLS_CRT)?, &read(certs::TLS_KEY)?)
}

/// The rustls side of [`CertSource`].
#[derive(Debug)]
struct Resolver(Arc<CertSource>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

/// Binds `addr` and serves the webhook until `cancel`. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    certs: Arc<CertSource>,
    snapshot: Snapshot,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::daemon::client::install_crypto_provider();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(certs)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                () = cancel.cancelled() => return,
                p = Arc::clone(&slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (tcp, peer) = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(%error, "webhook accept failed");
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let snapshot = snapshot.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "webhook TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper::service::service_fn(move |req| {
                    let snapshot = snapshot.clone();
                    async move { Ok::<_, Infallible>(handle(req, &snapshot).await) }
                });
                // A client that opens a connection and sends nothing must not hold a slot.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), service);
                tokio::select! {
                    () = cancel.cancelled() => {}
                    r = conn => if let Err(error) = r {
                        tracing::debug!(%peer, %error, "webhook connection ended with an error");
                    },
                }
            });
        }
    });
    Ok((bound, task))
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn review_body(response: AdmissionResponse) -> Vec<u8> {
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}

async fn handle(req: Request<Incoming>, snapshot: &Snapshot) -> Response<Full<Bytes>> {
    if Kind::from_path(req.uri().path()).is_none() {
        return respond(StatusCode::NOT_FOUND, b"{}".to_vec());
    }
    if req.method() != Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, b"{}".to_vec());
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(error) => {
            return respond(
                StatusCode::BAD_REQUEST,
                review_body(AdmissionResponse::invalid(format!(
                    "reading the body: {error}"
                ))),
            )
        }
    };
    let request: AdmissionRequest<DynamicObject> =
        match serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                r.try_into()
                    .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
            }) {
            Ok(r) => r,
            Err(error) => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    review_body(AdmissionResponse::invalid(format!(
                        "not an admission.k8s.io/v1 AdmissionReview: {error}"
                    ))),
                )
            }
        };
    let current = snapshot.borrow().clone();
    let response = match current {
        Some(existing) => decide(&existing, &request),
        None => {
            let mut r = AdmissionResponse::from(&request)
                .deny("the controller has not read the configuration yet; retry shortly");
            r.result.code = 503;
            r
        }
    };
    tracing::info!(
        kind = %request.kind.kind,
        namespace = ?request.namespace,
        name = %request.name,
        operation = ?request.operation,
        allowed = response.allowed,
        message = %response.result.message,
        "admission review"
    );
    respond(StatusCode::OK, review_body(response))
}
