//! The rustls client configuration for `mqtt.tls: true`: which roots to trust, the optional
//! client certificate, and the server name check.
//!
//! Built once at start, so a missing or malformed PEM file is a [`ConfigError`] (exit 2)
//! naming the key and the file, not a failure on every reconnection. The crypto provider is
//! `ring`, chosen explicitly: no process-wide default to install, no cmake or system library
//! in the build. What happens on the wire (an untrusted certificate, a refused login) is the
//! connection's business, logged and retried by [`super::publisher`].

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ConfigError, MqttConfig};

/// The client configuration `mqtt` describes; `None` when `mqtt.tls` is off.
pub fn client_config(mqtt: &MqttConfig) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    if !mqtt.tls {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(match &mqtt.ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    });
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("mqtt.tls", format!("no usable TLS version: {e}")))?;
    let builder = if mqtt.tls_server_name_check {
        builder.with_root_certificates(roots)
    } else {
        tracing::warn!(
            "mqtt.tls_server_name_check is off: any certificate from a trusted CA is accepted \
             as {}, so whoever holds one can pose as the broker; add the host to the broker's \
             certificate and turn the check back on",
            mqtt.host
        );
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| bad("mqtt.ca_file", format!("cannot use these roots: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
    };
    let config = match (&mqtt.client_cert, &mqtt.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "mqtt.client_cert")?;
            let key = private_key(key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                bad(
                    "mqtt.client_key",
                    format!("does not go with `mqtt.client_cert`: {e}"),
                )
            })?
        }
        // Validation refused one without the other.
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

fn bad(key: &str, problem: String) -> ConfigError {
    ConfigError::BadValue {
        key: key.into(),
        origin: None,
        problem,
    }
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))
}

/// Every certificate of a PEM file; at least one.
fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(key, format!("{} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(
            key,
            format!(
                "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "mqtt.ca_file")? {
        roots.add(cert).map_err(|e| {
            bad(
                "mqtt.ca_file",
                format!("{} holds an unusable certificate: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(bad(
            "mqtt.ca_file",
            "not set, and no system CA certificates were found (install ca-certificates) \
             : name the broker's CA file"
                .into(),
        ));
    }
    Ok(roots)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read(path, "mqtt.client_key")?;
    // The key's own error names nothing secret, but the PEM text is never echoed.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        bad(
            "mqtt.client_key",
            format!("{} holds no usable private key in PEM: {e}", path.display()),
        )
    })
}

/// `tls_server_name_check: false`: the chain must still lead to a trusted root, but the
/// certificate need not name the host we dialled.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(extra: impl FnOnce(&mut MqttConfig)) -> MqttConfig {
        let mut mqtt = MqttConfig {
            tls: true,
            ..MqttConfig::default()
        };
        extra(&mut mqtt);
        mqtt
    }

    fn error_of(mqtt: &MqttConfig) -> String {
        match client_config(mqtt) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_tls_means_no_client_config() {
        assert!(client_config(&MqttConfig::default()).unwrap().is_none());
    }

    #[test]
    fn an_unreadable_ca_file_names_the_key_and_the_file() {
        let message = error_of(&tls(|m| m.ca_file = Some("/nonexistent/ca.pem".into())));
        assert!(message.contains("`mqtt.ca_file`"), "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn a_ca_file_without_a_certificate_says_so() {
        let path = std::env::temp_dir().join(format!("linkymon-not-pem-{}", std::process::id()));
        std::fs::write(&path, "hello\n").unwrap();
        let message = error_of(&tls(|m| m.ca_file = Some(path.clone())));
        std::fs::remove_file(&path).unwrap();
        assert!(message.contains("`mqtt.ca_file`"), "{message}");
        assert!(message.contains("no certificate"), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}
