//! TLS with rustls: the client configuration (CA files or the system's roots, client
//! certificates, `--insecure`) and the handshake over a connected socket.

use std::net::TcpStream;
use std::sync::Arc;

use super::error::ErrorKind;
use super::options::TlsOptions;

pub(super) fn tls_connect(
    tcp: TcpStream,
    host: &str,
    t: &TlsOptions,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, (ErrorKind, String)> {
    let config = tls_config(t).map_err(|m| (ErrorKind::Config, m))?;
    let sni = t.sni.as_deref().unwrap_or(host).to_owned();
    let server_name = rustls::pki_types::ServerName::try_from(sni.clone())
        .map_err(|_| (ErrorKind::Config, format!("{sni:?} is not a valid TLS server name (--sni)")))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| (ErrorKind::Tls, format!("TLS: {e}")))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now, so that a certificate problem is reported as such.
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            use rustls::{CertificateError as C, Error as R};
            let mut m = format!("TLS handshake: {e}");
            let hint = match e.get_ref().and_then(|x| x.downcast_ref::<R>()) {
                Some(R::InvalidCertificate(C::UnknownIssuer)) => {
                    " (the server's certificate is not signed by a trusted CA: give its CA with --cacert)"
                }
                Some(R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
                    " (the certificate is for another name: see --sni)"
                }
                Some(R::AlertReceived(rustls::AlertDescription::CertificateRequired)) => {
                    " (the server requires a client certificate: --cert and --key)"
                }
                _ => "",
            };
            m.push_str(hint);
            return Err((ErrorKind::Tls, m));
        }
    }
    Ok(s)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(t: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let p = provider();
    let builder = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if t.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoCheck(p)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &t.ca_pem {
            Some(pem) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--cacert: not a PEM certificate file ({e})"))?;
                if certs.is_empty() {
                    return Err("--cacert: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into());
                }
                for c in certs {
                    roots.add(c).map_err(|e| format!("--cacert: {e}"))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&t.cert_pem, &t.key_pem) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--cert: not a PEM certificate file ({e})"))?;
            if chain.is_empty() {
                return Err("--cert: no PEM certificate in the file".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("--key: no PEM private key ({e})"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("--cert/--key: {e}"))
        }
        _ => Err("--cert and --key go together".into()),
    }
}

/// `--insecure`: accepts any certificate (the signatures of the handshake are still checked).
#[derive(Debug)]
struct NoCheck(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
