//! A failed MQTT connection in words that say what to fix in the configuration.

use rumqttc::ConnectionError;

/// The connection error in words that say what to fix. `tls` is whether `mqtt.tls` is on: a
/// connection reset at once usually means the two ends disagree about TLS.
pub fn describe(e: &ConnectionError, tls: bool) -> String {
    use rumqttc::ConnectReturnCode::{BadUserNamePassword, NotAuthorized};
    match e {
        ConnectionError::ConnectionRefused(code) => {
            refused(code, matches!(code, BadUserNamePassword | NotAuthorized))
        }
        _ => describe_transport(e, tls),
    }
}

/// [`describe`] for an MQTT 5 connection (the logger's).
pub fn describe_v5(e: &rumqttc::v5::ConnectionError, tls: bool) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode::{BadUserNamePassword, NotAuthorized};
    match e {
        rumqttc::v5::ConnectionError::ConnectionRefused(code) => {
            refused(code, matches!(code, BadUserNamePassword | NotAuthorized))
        }
        _ => describe_transport(e, tls),
    }
}

/// A refused connection; `login` is whether the code says the login was refused.
fn refused(code: &dyn std::fmt::Debug, login: bool) -> String {
    if login {
        format!("the broker refused the login ({code:?}): check mqtt.username and mqtt.password")
    } else {
        format!("the broker refused the connection ({code:?})")
    }
}

/// A connection error below MQTT (TCP, TLS) in words, for either protocol version.
fn describe_transport(e: &(dyn std::error::Error + 'static), tls: bool) -> String {
    if let Some(rustls::Error::InvalidCertificate(why)) = find_rustls_error(e) {
        return format!(
            "the broker's TLS certificate is not trusted ({why:?}): set mqtt.ca_file to the CA \
             that signed it, and check that it names mqtt.host"
        );
    }
    if let Some(other) = find_rustls_error(e) {
        return format!("the TLS handshake failed: {other}");
    }
    let reset = find_io_error(e).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        )
    });
    match (reset, tls) {
        (true, true) => format!(
            "the broker closed the connection during the TLS handshake ({e}): is this port a \
             TLS listener? If not, set mqtt.tls: false or use the broker's TLS port"
        ),
        (true, false) => format!(
            "the broker closed the connection ({e}): if this port expects TLS, set mqtt.tls: true"
        ),
        (false, _) => e.to_string(),
    }
}

/// The rustls error behind a connection error, however deep rumqttc wrapped it (an I/O error
/// built from a rustls error keeps it in `get_ref`, not in `source`).
fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        next = e.source();
    }
    None
}

/// The innermost I/O error behind a connection error.
fn find_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut found = None;
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        next = e.source();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::ConnectReturnCode;

    #[test]
    fn a_refused_login_points_at_the_credentials() {
        let e = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        let message = describe(&e, true);
        assert!(message.contains("refused the login"), "{message}");
        assert!(message.contains("mqtt.password"), "{message}");
        let e = rumqttc::v5::ConnectionError::ConnectionRefused(
            rumqttc::v5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword,
        );
        let message = describe_v5(&e, false);
        assert!(message.contains("refused the login"), "{message}");
    }

    #[test]
    fn an_untrusted_certificate_points_at_the_ca_file() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        let e = ConnectionError::Tls(rumqttc::TlsError::Io(io));
        let message = describe(&e, true);
        assert!(message.contains("not trusted (UnknownIssuer)"), "{message}");
        assert!(message.contains("mqtt.ca_file"), "{message}");
    }

    #[test]
    fn a_reset_during_the_handshake_asks_whether_the_port_speaks_tls() {
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = ConnectionError::Tls(rumqttc::TlsError::Io(reset()));
        assert!(describe(&e, true).contains("is this port a TLS listener?"));
        let e = ConnectionError::Io(reset());
        assert!(describe(&e, false).contains("set mqtt.tls: true"));
    }
}
