//! Where this server may send requests on an upstream's behalf, and reading what comes back.
//!
//! Server-wide providers are the operator's: `https://`, plain http to loopback hosts, and
//! anything in development mode. Org admins' providers are anyone's: `https://` to public
//! addresses only — an IP literal is checked in the URL, a name at every connection by a
//! resolver that drops loopback, private, link-local, multicast and other non-public
//! addresses, so a name that resolves to a public address at registration and to
//! 169.254.169.254 later (DNS rebinding) still cannot reach it. `sso_allow_private_networks`
//! lifts the restriction for tests and labs. No proxy and no redirects for either, and every
//! response body is read up to [`MAX_BODY`] only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::UpstreamError;

/// The most any upstream response body may hold (discovery, JWKS, token, userinfo).
pub const MAX_BODY: usize = 1024 * 1024;

/// Outgoing requests to upstreams give up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Who configured the upstream, and so how far requests for it may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A server-wide provider (the operator's configuration).
    Operator { dev: bool },
    /// An org admin's provider.
    Org { allow_private: bool },
}

impl Reach {
    /// Checks a URL this server would fetch; Err says why not (for an admin or the log).
    pub fn check(&self, raw: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(raw).map_err(|_| format!("{raw} is not a URL"))?;
        let Some(host) = url.host() else {
            return Err(format!("{raw} has no host"));
        };
        match *self {
            Reach::Operator { dev } => match url.scheme() {
                "https" => Ok(url),
                "http" if dev || is_loopback_host(&host) => Ok(url),
                _ => Err(format!(
                    "{raw} is not https (plain http is allowed only for loopback hosts or in development mode)"
                )),
            },
            Reach::Org {
                allow_private: true,
            } => match url.scheme() {
                "https" | "http" => Ok(url),
                _ => Err(format!("{raw} is not an http(s) URL")),
            },
            Reach::Org {
                allow_private: false,
            } => {
                if url.scheme() != "https" {
                    return Err(format!("{raw} is not https"));
                }
                let public = match host {
                    url::Host::Ipv4(ip) => is_public(IpAddr::V4(ip)),
                    url::Host::Ipv6(ip) => is_public(IpAddr::V6(ip)),
                    url::Host::Domain(d) => {
                        let d = d.trim_end_matches('.').to_ascii_lowercase();
                        d != "localhost" && !d.ends_with(".localhost")
                    }
                };
                if public {
                    Ok(url)
                } else {
                    Err(format!(
                        "{raw} names a loopback, private or other non-public address"
                    ))
                }
            }
        }
    }
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918,
/// unique local), link-local, shared (CGNAT), multicast, broadcast, unspecified,
/// documentation or otherwise reserved — and IPv4 addresses in IPv6 clothing are judged
/// by their IPv4 part.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            if s[0] == 0x2002 {
                return is_public_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0) // IETF protocol assignments, incl. 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// A resolver that hands the connector public addresses only (and loopback ones when
/// `loopback`: outgoing webhooks in development mode). Org SSO providers and webhook
/// endpoints share it, so both are held to one definition of "public".
struct PublicOnly {
    loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let loopback = self.loopback;
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| is_public(a.ip()) || (loopback && a.ip().is_loopback()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (this server may not reach private networks for it)"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for requests anyone may point this server at (outgoing webhooks): no proxy, no
/// redirects, `timeout` per request, and unless `allow_private`, connections only to
/// public addresses (and loopback ones when `loopback`), checked at every connection.
pub fn guarded_client(
    timeout: Duration,
    allow_private: bool,
    loopback: bool,
) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly { loopback }));
    }
    builder.build().map_err(|e| e.to_string())
}

/// An HTTP client for upstream requests with the rules of one [`Reach`].
pub struct Fetcher {
    client: reqwest::Client,
    reach: Reach,
}

impl Fetcher {
    pub fn new(reach: Reach) -> Result<Self, String> {
        // reqwest is built without a default TLS provider; a second install attempt (another
        // server in the same process) reports "already installed", which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address filter.
            .no_proxy()
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if reach
            == (Reach::Org {
                allow_private: false,
            })
        {
            builder = builder.dns_resolver(Arc::new(PublicOnly { loopback: false }));
        }
        Ok(Self {
            client: builder.build().map_err(|e| e.to_string())?,
            reach,
        })
    }

    pub fn reach(&self) -> Reach {
        self.reach
    }

    fn url(&self, raw: &str) -> Result<url::Url, UpstreamError> {
        self.reach.check(raw).map_err(UpstreamError::Failed)
    }

    /// GET `url` (with a bearer token, if any) and parse its JSON body; non-2xx is an error.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, UpstreamError> {
        let mut request = self
            .client
            .get(self.url(url)?)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| UpstreamError::Failed(format!("GET {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Failed(format!(
                "GET {url}: HTTP {}",
                status.as_u16()
            )));
        }
        let body = read_capped(response, url).await?;
        serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Failed(format!("GET {url}: unreadable JSON: {e}")))
    }

    /// POST a form to `url`; the status and the JSON body, whatever the status.
    pub async fn post_form(
        &self,
        url: &str,
        authorization: Option<String>,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, serde_json::Value), UpstreamError> {
        let mut request = self
            .client
            .post(self.url(url)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| UpstreamError::Failed(format!("POST {url}: {e}")))?;
        let status = response.status();
        let body = read_capped(response, url).await?;
        let json = serde_json::from_slice(&body).map_err(|e| {
            UpstreamError::Failed(format!("POST {url} answered unreadable JSON: {e}"))
        })?;
        Ok((status, json))
    }
}

/// The body, refused as soon as it passes [`MAX_BODY`] (by its `Content-Length` or while
/// reading), so an upstream cannot make us buffer without bound.
async fn read_capped(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, UpstreamError> {
    let too_big = || {
        UpstreamError::Failed(format!(
            "{url} answered more than {MAX_BODY} bytes; refused"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| UpstreamError::Failed(format!("{url}: {e}")))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn url_rules_per_reach() {
        let operator = Reach::Operator { dev: false };
        assert!(operator.check("https://accounts.google.com").is_ok());
        assert!(operator.check("http://127.0.0.1:9000/").is_ok());
        assert!(operator.check("http://localhost:9000/").is_ok());
        assert!(operator.check("http://[::1]:9000/").is_ok());
        assert!(operator.check("http://idp.example.com/").is_err());
        assert!(
            Reach::Operator { dev: true }
                .check("http://idp.example.com/")
                .is_ok()
        );
        assert!(
            Reach::Operator { dev: true }
                .check("ftp://idp.example.com/")
                .is_err()
        );
        assert!(operator.check("not a url").is_err());

        let org = Reach::Org {
            allow_private: false,
        };
        assert!(org.check("https://idp.example.com/x").is_ok());
        assert!(org.check("https://8.8.8.8/").is_ok());
        for refused in [
            "http://idp.example.com/",
            "https://127.0.0.1:9000/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://a.localhost/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://0x7f.1/",
            "https://2130706433/",
        ] {
            assert!(org.check(refused).is_err(), "{refused}");
        }
        let lab = Reach::Org {
            allow_private: true,
        };
        assert!(lab.check("http://127.0.0.1:9000/").is_ok());
        assert!(lab.check("https://10.0.0.1/").is_ok());
        assert!(lab.check("ftp://10.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_addresses() {
        use reqwest::dns::Resolve;
        let err = match (PublicOnly { loopback: false })
            .resolve("localhost".parse().unwrap())
            .await
        {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
    }

    #[tokio::test]
    async fn an_org_client_never_connects_to_a_name_of_a_private_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        let org = Fetcher::new(Reach::Org {
            allow_private: false,
        })
        .unwrap();
        // Rebinding as seen from here: the URL passes (a name), its address does not.
        let org_with_name = Fetcher {
            reach: Reach::Org {
                allow_private: true,
            },
            ..org
        };
        let err = org_with_name
            .get_json::<serde_json::Value>(&format!("http://localhost:{port}/x"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("GET"), "{err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!accepted.is_finished(), "a connection reached the listener");
        accepted.abort();
    }

    #[tokio::test]
    async fn the_webhook_client_reaches_loopback_names_only_in_development_mode() {
        let strict = guarded_client(Duration::from_secs(2), false, false).unwrap();
        let dev = guarded_client(Duration::from_secs(2), false, true).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        // Production: the name resolves to loopback only, so no connection is made.
        let err = strict
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!accepted.is_finished(), "a connection reached the listener");
        // Development mode: the same name connects.
        let _ = dev
            .post(format!("http://localhost:{port}/hook"))
            .timeout(Duration::from_millis(500))
            .send()
            .await;
        assert!(accepted.await.unwrap(), "development mode reaches loopback");
    }

    #[tokio::test]
    async fn bodies_are_capped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for chunked in [false, true] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let body = format!("{{\"pad\":\"{}\"}}", " ".repeat(MAX_BODY));
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_owned()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                };
                let _ = s.write_all(head.as_bytes()).await;
                if chunked {
                    for part in body.as_bytes().chunks(64 * 1024) {
                        let _ = s
                            .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                            .await;
                        let _ = s.write_all(part).await;
                        let _ = s.write_all(b"\r\n").await;
                    }
                    let _ = s.write_all(b"0\r\n\r\n").await;
                } else {
                    let _ = s.write_all(body.as_bytes()).await;
                }
            }
        });
        let f = Fetcher::new(Reach::Operator { dev: false }).unwrap();
        for _ in 0..2 {
            let err = f
                .get_json::<serde_json::Value>(&format!("http://127.0.0.1:{port}/big"), None)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("more than 1048576 bytes"), "{err}");
        }
    }
}
