//! HTTP clients for everything switchboard sends (Vapi, the pre-dial hook, the simulator's
//! webhooks, tests). reqwest is built with rustls and no bundled crypto provider; the first
//! client built installs rustls' ring provider for the process.

/// Installs rustls' ring provider as the process default (once; a provider someone else
/// installed first is kept).
pub fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder whose TLS is ready.
pub fn builder() -> reqwest::ClientBuilder {
    ensure_tls_provider();
    reqwest::Client::builder()
}

/// A client with reqwest's defaults.
pub fn client() -> reqwest::Client {
    ensure_tls_provider();
    reqwest::Client::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_the_ring_provider_installed() {
        let _ = super::client();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        super::builder()
            .https_only(true)
            .build()
            .expect("an https-only client builds");
    }
}
