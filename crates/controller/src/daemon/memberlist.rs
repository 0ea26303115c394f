//! The speakers' memberlist Secret: created by the leader when it does not exist, as MetalLB's
//! controller does (`--ml-secret-name`, default `memberlist`, key `secretkey`).
//!
//! The speaker DaemonSet mounts this Secret for its gossip key (`--memberlist-secret-file`), so
//! without it no speaker Pod starts. The key is base64 text of [`KEY_BYTES`] random octets,
//! the same shape as the `openssl rand -base64 128` that MetalLB's old install step used; the
//! speaker uses the Secret's bytes as given, so an operator may pre-create any key.
//!
//! *Guarantees*
//! - An existing Secret is never read, replaced or patched: the only call is a create, and its
//!   409 `AlreadyExists` counts as success. Pre-created keys and keys already in use by running
//!   speakers survive every controller restart.
//! - Only the leader creates; a new leader tries again, so a deleted Secret comes back at the
//!   next change of leader.
//! - A failed create is retried with exponential backoff up to [`MAX_BACKOFF`] (plus jitter)
//!   while leading.
//!
//! *Caveats*: unlike MetalLB, no owner reference to the controller Deployment is set, so
//! uninstalling leaves the Secret behind (`kubectl delete secret memberlist`).

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_runtime::Backoff;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// MetalLB's default Secret name (`--ml-secret-name`).
pub const DEFAULT_SECRET_NAME: &str = "memberlist";
/// The key inside the Secret (MetalLB's).
pub const SECRET_KEY: &str = "secretkey";
/// Random octets behind the key, as MetalLB.
pub const KEY_BYTES: usize = 128;
/// Ceiling of the retry backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First retry delay.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Limit on one create; a hung API server must not stall the retries.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the Secret could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MlSecretError {
    /// The system random source failed.
    #[error("no random octets for the key of Secret {namespace}/{name}")]
    Random {
        /// `--namespace`.
        namespace: String,
        /// `--ml-secret-name`.
        name: String,
    },
    /// The API server refused the create (other than 409 AlreadyExists) or was unreachable.
    #[error("creating Secret {namespace}/{name}: {source}")]
    Create {
        /// `--namespace`.
        namespace: String,
        /// `--ml-secret-name`.
        name: String,
        /// The client's error.
        source: kube::Error,
    },
    /// No answer within the call timeout.
    #[error("creating Secret {namespace}/{name}: no answer within {timeout:?}")]
    Timeout {
        /// `--namespace`.
        namespace: String,
        /// `--ml-secret-name`.
        name: String,
        /// The limit.
        timeout: Duration,
    },
}

/// What a create attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// We created the Secret.
    Created,
    /// It existed already (409 AlreadyExists); left untouched.
    Existing,
}

/// The Secret to create (pure): type `Opaque`, `data.secretkey` = base64 of `random`.
pub fn memberlist_secret(namespace: &str, name: &str, random: &[u8; KEY_BYTES]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "ferrolb-controller".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            SECRET_KEY.to_owned(),
            ByteString(base64(random).into_bytes()),
        )])),
        ..Secret::default()
    }
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32, shift: u32| char::from(ALPHABET[((v >> shift) & 0x3f) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(v, 18));
        out.push(sextet(v, 12));
        // RFC 4648 §4: a final group of one octet ends "==", of two octets "=".
        out.push(if chunk.len() > 1 { sextet(v, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(v, 0) } else { '=' });
    }
    out
}

/// Creates the Secret unless it exists. One API call: a create, 409 meaning it exists.
pub async fn ensure(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<Ensured, MlSecretError> {
    let mut random = [0u8; KEY_BYTES];
    // ring's system random source (getrandom), the provider `client::client` installs.
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut random)
        .map_err(|_| MlSecretError::Random {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let secret = memberlist_secret(namespace, name, &random);
    let created = tokio::time::timeout(CALL_TIMEOUT, api.create(&PostParams::default(), &secret))
        .await
        .map_err(|_| MlSecretError::Timeout {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            timeout: CALL_TIMEOUT,
        })?;
    match created {
        Ok(_) => Ok(Ensured::Created),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Ensured::Existing),
        Err(source) => Err(MlSecretError::Create {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// The retry policy: doubling from 500 ms up to [`MAX_BACKOFF`], with jitter.
pub const RETRY: Backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);

/// The delay before retry number `attempt` (0-based) without its jitter: doubling from 500 ms,
/// at most [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    RETRY.base(attempt)
}

/// Each time this replica becomes leader, ensures the Secret exists (retrying while leading),
/// until `cancel`.
pub async fn run(
    api: Api<Secret>,
    namespace: String,
    name: String,
    mut leader: watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    loop {
        // Wait for a term to start.
        tokio::select! {
            () = cancel.cancelled() => return,
            led = leader.wait_for(|l| *l) => if led.is_err() { return },
        }
        let mut attempt = 0u32;
        loop {
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                outcome = ensure(&api, &namespace, &name) => outcome,
            };
            match outcome {
                Ok(Ensured::Created) => {
                    tracing::info!(%namespace, %name, "memberlist Secret created");
                    break;
                }
                Ok(Ensured::Existing) => {
                    tracing::debug!(%namespace, %name, "memberlist Secret exists; left as is");
                    break;
                }
                Err(error) => {
                    let delay = RETRY.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(%error, retry_in = ?delay, "memberlist Secret not ensured");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                        lost = leader.wait_for(|l| !*l) => {
                            if lost.is_err() { return }
                            break;
                        }
                    }
                }
            }
        }
        // Wait for the term to end; the next one checks again.
        tokio::select! {
            () = cancel.cancelled() => return,
            lost = leader.wait_for(|l| !*l) => if lost.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_section_10_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in vectors {
            assert_eq!(base64(input.as_bytes()), want, "input {input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn the_secret_is_opaque_with_a_base64_key_of_128_octets_under_secretkey() {
        let mut random = [0u8; KEY_BYTES];
        for (i, b) in random.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap_or(0);
        }
        let s = memberlist_secret("metallb-system", "memberlist", &random);
        assert_eq!(s.metadata.name.as_deref(), Some("memberlist"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("metallb-system"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        let data = s.data.expect("data");
        assert_eq!(data.keys().collect::<Vec<_>>(), vec![SECRET_KEY]);
        let key = &data[SECRET_KEY].0;
        // 128 octets = 42 groups of 3 + 2: 43 groups of 4 characters, the last "=" padded.
        assert_eq!(key.len(), 172);
        assert!(key.ends_with(b"=") && !key.ends_with(b"=="));
        assert_eq!(key, base64(&random).as_bytes());
        assert!(s.string_data.is_none());
    }

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_the_ceiling() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
