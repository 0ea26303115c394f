//! The webhook's certificates: a self-signed CA and the serving certificate it signs (generated
//! with `rcgen`), the PEM bundle kept in the webhook Secret, and the pure check of whether a
//! bundle is still good.
//!
//! Keys and names follow MetalLB's cert rotation (open-policy-agent cert-controller): the Secret
//! holds `ca.crt`, `ca.key`, `tls.crt`, `tls.key`; the serving certificate is valid for the
//! webhook Service's DNS names; CA and certificate last ten years and are both replaced when
//! either has less than [`RENEW_BEFORE`] left, cannot be read, or no longer matches the names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

/// Secret key of the CA certificate (PEM).
pub const CA_CRT: &str = "ca.crt";
/// Secret key of the CA private key (PEM).
pub const CA_KEY: &str = "ca.key";
/// Secret key (and file name in `--cert-dir`) of the serving certificate (PEM).
pub const TLS_CRT: &str = "tls.crt";
/// Secret key (and file name in `--cert-dir`) of the serving key (PEM).
pub const TLS_KEY: &str = "tls.key";

/// Lifetime of the CA and of the serving certificate (cert-controller's ten years).
pub const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A bundle with less than this left is replaced (cert-controller's 90-day look-ahead).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);
/// Certificates are valid from this long before their creation, for clocks slightly behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why certificates could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// `rcgen` refused the parameters.
    #[error("generating the {what}: {source}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// Why.
        source: rcgen::Error,
    },
    /// A PEM field is missing or unreadable.
    #[error("reading {field}: {reason}")]
    Pem {
        /// The Secret key or file.
        field: String,
        /// Why.
        reason: String,
    },
    /// The bundle does not verify.
    #[error("the serving certificate does not verify for {name}: {reason}")]
    Verify {
        /// The DNS name checked.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The four PEM texts of the webhook Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// CA certificate; also the ValidatingWebhookConfiguration's `caBundle`.
    pub ca_crt: String,
    /// CA private key, to keep the Secret complete as MetalLB's (not used to re-sign: a renewal
    /// replaces both).
    pub ca_key: String,
    /// Serving certificate.
    pub tls_crt: String,
    /// Serving private key.
    pub tls_key: String,
}

impl Bundle {
    /// The Secret's `data`, by key.
    pub fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        [
            (CA_CRT, &self.ca_crt),
            (CA_KEY, &self.ca_key),
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect()
    }

    /// The bundle in a Secret's `data`; `None` when a key is missing or not UTF-8.
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Option<Bundle> {
        let get = |k: &str| {
            data.get(k)
                .and_then(|v| String::from_utf8(v.clone()).ok())
                .filter(|s| !s.is_empty())
        };
        Some(Bundle {
            ca_crt: get(CA_CRT)?,
            ca_key: get(CA_KEY)?,
            tls_crt: get(TLS_CRT)?,
            tls_key: get(TLS_KEY)?,
        })
    }
}

/// The DNS names the serving certificate must carry for Service `service` in `namespace`: the
/// API server calls `service.namespace.svc`; the others are for clients inside the cluster.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_owned(),
    ]
}

fn to_offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// A new CA and a serving certificate for `names` (the first is the one that must verify),
/// valid from `now` minus an hour for [`VALIDITY`].
pub fn generate(names: &[String], now: SystemTime) -> Result<Bundle, CertError> {
    let gen = |what: &'static str| move |source| CertError::Generate { what, source };
    let not_before = to_offset(now - BACKDATE);
    let not_after = to_offset(now + VALIDITY);

    let ca_key = KeyPair::generate().map_err(gen("CA key"))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen("CA"))?;
    let mut dn = DistinguishedName::new();
    // cert-controller's CA names: CN "ca", O the project.
    dn.push(DnType::CommonName, "ca");
    dn.push(DnType::OrganizationName, "ferrolb");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(gen("CA"))?;
    let issuer = Issuer::new(ca, &ca_key);

    let key = KeyPair::generate().map_err(gen("serving key"))?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(gen("serving certificate"))?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(gen("serving certificate"))?;
    Ok(Bundle {
        ca_crt: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        tls_crt: cert.pem(),
        tls_key: key.serialize_pem(),
    })
}

fn first_cert(field: &str, pem: &str) -> Result<CertificateDer<'static>, CertError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| CertError::Pem {
            field: field.to_owned(),
            reason: "no CERTIFICATE block".into(),
        })?
        .map_err(|e| CertError::Pem {
            field: field.to_owned(),
            reason: e.to_string(),
        })
}

/// Whether `bundle` is good until `now + RENEW_BEFORE`: the serving certificate chains to the
/// CA, is valid for `name` and neither expires before then. Pure (the time is a parameter).
pub fn check(bundle: &Bundle, name: &str, now: SystemTime) -> Result<(), CertError> {
    let verify = |reason: String| CertError::Verify {
        name: name.to_owned(),
        reason,
    };
    let ca = first_cert(CA_CRT, &bundle.ca_crt)?;
    let leaf = first_cert(TLS_CRT, &bundle.tls_crt)?;
    // The key must be readable too, or serving would fail later.
    certified_key(&bundle.tls_crt, &bundle.tls_key)?;
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|e| verify(e.to_string()))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| verify(e.to_string()))?;
    let server = ServerName::try_from(name.to_owned()).map_err(|e| verify(e.to_string()))?;
    for at in [now, now + RENEW_BEFORE] {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        verifier
            .verify_server_cert(&leaf, &[], &server, &[], UnixTime::since_unix_epoch(since))
            .map_err(|e| verify(e.to_string()))?;
    }
    Ok(())
}

/// The rustls serving key for a PEM certificate chain and key.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem {
            field: TLS_CRT.into(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            field: TLS_CRT.into(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::Pem {
        field: TLS_KEY.into(),
        reason: e.to_string(),
    })?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| CertError::Pem {
            field: TLS_KEY.into(),
            reason: e.to_string(),
        })?;
    Ok(CertifiedKey::new(chain, signer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn names() -> Vec<String> {
        dns_names("ferrolb-webhook-service", "metallb-system")
    }

    #[test]
    fn a_fresh_bundle_verifies_for_the_service_name() {
        let now = SystemTime::now();
        let b = generate(&names(), now).expect("generate");
        check(&b, "ferrolb-webhook-service.metallb-system.svc", now).expect("valid");
        assert!(b.ca_crt.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(b.tls_key.contains("PRIVATE KEY"));
        certified_key(&b.tls_crt, &b.tls_key).expect("servable");
    }

    #[test]
    fn another_name_a_near_expiry_and_a_foreign_ca_are_rejected() {
        let now = SystemTime::now();
        let b = generate(&names(), now).expect("generate");
        assert!(check(&b, "other.metallb-system.svc", now).is_err());
        // 10 years minus 89 days later: inside the renewal window.
        let late = now + VALIDITY - 89 * DAY;
        assert!(check(&b, &names()[0], late).is_err());
        assert!(check(&b, &names()[0], now + VALIDITY - 91 * DAY).is_ok());
        let other = generate(&names(), now).expect("generate");
        let mixed = Bundle {
            ca_crt: other.ca_crt,
            ..b.clone()
        };
        assert!(check(&mixed, &names()[0], now).is_err());
    }

    #[test]
    fn secret_data_round_trips_and_a_missing_key_is_none() {
        let b = generate(&names(), SystemTime::now()).expect("generate");
        let mut data = b.to_data();
        assert_eq!(Bundle::from_data(&data), Some(b));
        data.remove(CA_KEY);
        assert_eq!(Bundle::from_data(&data), None);
    }

    #[test]
    fn garbage_pem_is_an_error_naming_the_field() {
        let b = Bundle {
            ca_crt: "x".into(),
            ca_key: "x".into(),
            tls_crt: "x".into(),
            tls_key: "x".into(),
        };
        let e = check(&b, "a.b.svc", SystemTime::now()).expect_err("garbage");
        assert!(e.to_string().contains(CA_CRT), "{e}");
    }
}
