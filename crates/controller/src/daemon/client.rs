//! Building the Kubernetes client: the TLS crypto provider and the kubeconfig.
//!
//! The workspace's `kube` enables `rustls-tls` without choosing a crypto provider; rustls then
//! panics on the first HTTPS connection ("no process-level CryptoProvider available"). This
//! crate enables kube's `ring` feature and [`install_crypto_provider`] makes ring the process
//! default before any client is built, so in-cluster HTTPS works even if another crate in the
//! build ever enables a second provider (rustls cannot pick one by itself then).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file cannot be read or parsed.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No in-cluster environment and no usable default kubeconfig.
    #[error("inferring the Kubernetes config: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The config is unusable (bad certificates, bad URL, ...).
    #[error("building the Kubernetes client: {0}")]
    Build(#[from] kube::Error),
}

/// Installs ring as the process-wide rustls provider. Idempotent: a provider already installed
/// (by an earlier call) is kept.
pub fn install_crypto_provider() {
    // `Err` means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client config: from `kubeconfig` when given, else in-cluster or `$KUBECONFIG` /
/// `~/.kube/config` (kube's inference order).
pub async fn config(kubeconfig: Option<&Path>) -> Result<Config, ClientError> {
    match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })
        }
        None => Ok(Config::infer().await?),
    }
}

/// A client for `config`, with the crypto provider installed first.
pub fn client(config: Config) -> Result<Client, ClientError> {
    install_crypto_provider();
    Ok(Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_for_an_https_kubeconfig_builds_and_handshakes_without_panicking() {
        // A loopback "server" that answers the TLS ClientHello with plain text: the client
        // must get as far as the handshake (which needs the crypto provider) and fail cleanly.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
contexts:
- name: x
  context: {{cluster: c, user: u, namespace: metallb-system}}
current-context: x
users:
- name: u
  user: {{token: abc}}
"#
            ),
        )
        .expect("write");
        let cfg = config(Some(&path)).await.expect("config");
        assert_eq!(cfg.cluster_url.scheme_str(), Some("https"));
        let client = client(cfg).expect("client");
        let err = client
            .apiserver_version()
            .await
            .expect_err("plain text is not TLS");
        assert!(!err.to_string().is_empty());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_file() {
        let err = config(Some(Path::new("/nonexistent/kubeconfig")))
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
    }
}
