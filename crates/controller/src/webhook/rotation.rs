//! Cert rotation in Kubernetes mode (unless `--disable-cert-rotation`), as MetalLB's controller
//! does with cert-controller: the CA and serving certificate live in a Secret (created when
//! missing, replaced when [`certs::check`] finds them expiring, unreadable or for another name),
//! every replica serves the certificate from the Secret, and the ValidatingWebhookConfiguration's
//! `caBundle` is set to the Secret's CA.
//!
//! *Guarantees*
//! - Nothing is created while the ValidatingWebhookConfiguration is missing (a controller
//!   installed without the webhook writes no Secret); its appearance is awaited with backoff.
//! - All replicas converge on one Secret: a create that meets 409 AlreadyExists, or a replace that
//!   meets 409 Conflict, re-reads and uses what another replica wrote.
//! - `caBundle` is written only when it differs (a replace guarded by resourceVersion).
//! - Checked again on every change of the Secret (a watch by name) and every [`RECHECK`]; a
//!   failure is retried with backoff up to [`MAX_BACKOFF`].
//!
//! *Caveats*: a renewal replaces the CA too, so for the moment between the new Secret and the
//! new `caBundle` the API server may reject the new certificate (with failurePolicy Fail a
//! configuration write then fails and is retried by the client). With ten-year certificates
//! renewed 90 days early this happens once a decade, or when the Secret is deleted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrolb_runtime::Backoff;
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio_util::sync::CancellationToken;

use super::certs::{self, Bundle, CertError};
use super::server::CertSource;

/// How often the Secret and `caBundle` are checked again (besides every change of the Secret):
/// a re-created ValidatingWebhookConfiguration gets its `caBundle` back within this time.
pub const RECHECK: Duration = Duration::from_secs(300);
/// Ceiling of the retry backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
/// Re-reads after a 409 before giving up until the next retry.
const MAX_CONFLICTS: u32 = 5;

/// What the rotation manages.
#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// Namespace of the Secret and the Service.
    pub namespace: String,
    /// The Secret holding the CA and serving certificate.
    pub secret_name: String,
    /// The webhook Service (the certificate's DNS names).
    pub service_name: String,
    /// The ValidatingWebhookConfiguration whose `caBundle` is set.
    pub webhook_configuration: String,
}

/// Why one rotation round failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// Why.
        source: kube::Error,
    },
    /// Certificates could not be generated or served.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The ValidatingWebhookConfiguration does not exist (not installed, or not yet): no
    /// certificate is made, so a controller run without the webhook writes no Secret.
    #[error("ValidatingWebhookConfiguration {0} not found; no certificate made")]
    NotInstalled(String),
    /// Other replicas kept changing the object.
    #[error("{0}: still conflicting after {MAX_CONFLICTS} re-reads")]
    Conflicts(String),
}

/// `vwc` with every webhook's `clientConfig.caBundle` set to `ca_pem`, or `None` when they all
/// have it already. Pure.
pub fn with_ca_bundle(
    vwc: &ValidatingWebhookConfiguration,
    ca_pem: &str,
) -> Option<ValidatingWebhookConfiguration> {
    let want = ByteString(ca_pem.as_bytes().to_vec());
    let mut out = vwc.clone();
    let mut changed = false;
    for hook in out.webhooks.iter_mut().flatten() {
        if hook.client_config.ca_bundle.as_ref() != Some(&want) {
            hook.client_config.ca_bundle = Some(want.clone());
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Runs the rotation until `cancel`: first round at once, then every [`RECHECK`].
pub async fn run(
    client: Client,
    opts: RotationOptions,
    source: Arc<CertSource>,
    cancel: CancellationToken,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    let mut secret_events = watcher(
        secrets,
        watcher::Config::default().fields(&format!("metadata.name={}", opts.secret_name)),
    )
    .default_backoff()
    .boxed();
    let mut failures = 0u32;
    loop {
        let wait = match round(&client, &opts, &source).await {
            Ok(()) => {
                failures = 0;
                RECHECK
            }
            Err(error @ RotationError::NotInstalled(_)) => {
                if failures == 0 {
                    tracing::info!(%error, "webhook cert rotation waits for the webhook configuration");
                }
                failures = failures.saturating_add(1);
                RETRY.delay(failures - 1)
            }
            Err(error) => {
                tracing::warn!(%error, "webhook cert rotation failed; retrying");
                failures = failures.saturating_add(1);
                RETRY.delay(failures - 1)
            }
        };
        // The Secret changing (deleted, renewed by another replica) starts a round at once,
        // so every replica serves the Secret's certificate within moments, not at the recheck.
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = next_secret_change(&mut secret_events) => {}
        }
    }
}

/// Waits for the next change of the watched Secret; never returns once the watch has ended.
async fn next_secret_change(
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<Secret>, watcher::Error>> + Unpin),
) {
    loop {
        match events.next().await {
            Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))) => return,
            Some(Ok(_)) => {}
            // The watcher retries with backoff by itself; the recheck covers the gap.
            Some(Err(error)) => tracing::debug!(%error, "webhook Secret watch failed"),
            None => std::future::pending().await,
        }
    }
}

/// One round: the Secret made good, its certificate served, `caBundle` set. Nothing is
/// written while the ValidatingWebhookConfiguration does not exist.
pub async fn round(
    client: &Client,
    opts: &RotationOptions,
    source: &CertSource,
) -> Result<(), RotationError> {
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    if vwc
        .get_opt(&opts.webhook_configuration)
        .await
        .map_err(api_err(format!(
            "reading ValidatingWebhookConfiguration {}",
            opts.webhook_configuration
        )))?
        .is_none()
    {
        return Err(RotationError::NotInstalled(
            opts.webhook_configuration.clone(),
        ));
    }
    let bundle = ensure_secret(client, opts).await?;
    source.set(&bundle.tls_crt, &bundle.tls_key)?;
    patch_ca_bundle(client, opts, &bundle.ca_crt).await
}

fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> RotationError {
    let action = action.into();
    move |source| RotationError::Api { action, source }
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

async fn ensure_secret(client: &Client, opts: &RotationOptions) -> Result<Bundle, RotationError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &opts.namespace);
    let names = certs::dns_names(&opts.service_name, &opts.namespace);
    let what = format!("Secret {}/{}", opts.namespace, opts.secret_name);
    for _ in 0..=MAX_CONFLICTS {
        let current = api
            .get_opt(&opts.secret_name)
            .await
            .map_err(api_err(format!("reading {what}")))?;
        let now = SystemTime::now();
        if let Some(secret) = &current {
            let data = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            if let Some(bundle) = Bundle::from_data(&data) {
                match certs::check(&bundle, &names[0], now) {
                    Ok(()) => return Ok(bundle),
                    Err(error) => {
                        tracing::info!(%error, secret = %what, "replacing the webhook certificate")
                    }
                }
            } else {
                tracing::info!(secret = %what, "the webhook Secret lacks a certificate; filling it");
            }
        }
        let bundle = certs::generate(&names, now)?;
        let data = bundle
            .to_data()
            .into_iter()
            .map(|(k, v)| (k, ByteString(v)))
            .collect();
        let written = match current {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(opts.secret_name.clone()),
                        namespace: Some(opts.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(data),
                    ..Secret::default()
                };
                api.create(&PostParams::default(), &secret).await
            }
            Some(mut secret) => {
                // metadata.resourceVersion is kept: a concurrent writer makes this a 409.
                secret.data = Some(data);
                api.replace(&opts.secret_name, &PostParams::default(), &secret)
                    .await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = %what, "webhook certificate written");
                return Ok(bundle);
            }
            Err(e) if is_code(&e, 409) => continue,
            Err(e) => return Err(api_err(format!("writing {what}"))(e)),
        }
    }
    Err(RotationError::Conflicts(what))
}

async fn patch_ca_bundle(
    client: &Client,
    opts: &RotationOptions,
    ca_pem: &str,
) -> Result<(), RotationError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let what = format!(
        "ValidatingWebhookConfiguration {}",
        opts.webhook_configuration
    );
    for _ in 0..=MAX_CONFLICTS {
        let Some(vwc) = api
            .get_opt(&opts.webhook_configuration)
            .await
            .map_err(api_err(format!("reading {what}")))?
        else {
            tracing::warn!(object = %what, "not installed; caBundle not set");
            return Ok(());
        };
        let Some(updated) = with_ca_bundle(&vwc, ca_pem) else {
            return Ok(());
        };
        match api
            .replace(
                &opts.webhook_configuration,
                &PostParams::default(),
                &updated,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(object = %what, "caBundle set");
                return Ok(());
            }
            Err(e) if is_code(&e, 409) => continue,
            Err(e) => return Err(api_err(format!("writing {what}"))(e)),
        }
    }
    Err(RotationError::Conflicts(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, WebhookClientConfig};

    fn vwc(bundles: &[Option<&str>]) -> ValidatingWebhookConfiguration {
        ValidatingWebhookConfiguration {
            webhooks: Some(
                bundles
                    .iter()
                    .map(|b| ValidatingWebhook {
                        name: "x.metallb.io".into(),
                        client_config: WebhookClientConfig {
                            ca_bundle: b.map(|b| ByteString(b.as_bytes().to_vec())),
                            ..WebhookClientConfig::default()
                        },
                        ..ValidatingWebhook::default()
                    })
                    .collect(),
            ),
            ..ValidatingWebhookConfiguration::default()
        }
    }

    #[test]
    fn every_webhook_gets_the_ca_and_an_up_to_date_one_is_left_alone() {
        let updated = with_ca_bundle(&vwc(&[None, Some("old")]), "CA").expect("changed");
        for hook in updated.webhooks.iter().flatten() {
            assert_eq!(
                hook.client_config.ca_bundle,
                Some(ByteString(b"CA".to_vec()))
            );
        }
        assert!(with_ca_bundle(&updated, "CA").is_none());
        assert!(with_ca_bundle(&vwc(&[Some("CA"), Some("other")]), "CA").is_some());
    }
}
