//! The outbound guard (SSRF): webhook URLs are typed by users, so Herald refuses to send to
//! loopback, private, link-local (including cloud metadata at 169.254.169.254), multicast,
//! unspecified and other non-public addresses, unless private targets are allowed (local
//! development and tests). The check runs when a webhook is saved and again on every request,
//! inside the HTTP client's DNS resolver, so a name re-pointed at an internal address after saving
//! is still refused.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why a target was refused, in words for the person who typed the URL.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("{host} resolves to {ip}, a private or reserved address; Herald only sends to public addresses")]
    Private { host: String, ip: IpAddr },
    #[error("{host} could not be resolved")]
    Unresolvable { host: String },
    #[error("{host} did not resolve within {seconds} s (its DNS servers did not answer)")]
    SlowDns { host: String, seconds: u64 },
    #[error("only https:// URLs are allowed (HERALD_REQUIRE_HTTPS)")]
    HttpsRequired,
}

/// Whether an address is one Herald may send to without private targets allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed internally)
        || seg[0] == 0x2001 && seg[1] == 0x0db8 // documentation
        || seg[0] == 0x2001 && seg[1] == 0x0000 // Teredo: the tunnel hides where it lands
        || seg[0] == 0x2001 && seg[1] < 0x0200 // other IETF protocol assignments
        || seg[0] == 0x0100 && seg[1..4] == [0, 0, 0] // discard-only
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4))) // IPv4-compatible
}

/// The IPv4 address an IPv6 address leads to by translation: NAT64 (`64:ff9b::/96` and the
/// local-use `64:ff9b:1::/48`) carries it in the low 32 bits, 6to4 (`2002::/16`) in bits 16–47.
/// A translator would deliver to that IPv4 address, so it is what the guard must judge.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let low = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    match seg {
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x0064, 0xff9b, 0x0001, ..] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The policy the engine runs with.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardPolicy {
    pub allow_private: bool,
    pub require_https: bool,
}

impl GuardPolicy {
    /// Checks a URL: scheme policy, then every address its host resolves to.
    pub async fn check_url(&self, url: &str) -> Result<(), GuardError> {
        if self.require_https && !url.starts_with("https://") {
            return Err(GuardError::HttpsRequired);
        }
        if self.allow_private {
            return Ok(());
        }
        let parsed =
            url::Url::parse(url).map_err(|_| GuardError::Unresolvable { host: url.into() })?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let ips = resolve(&host, port).await?;
        ips.into_iter().try_for_each(|ip| check_ip(&host, ip))
    }
}

impl GuardPolicy {
    /// The send-time check that needs no DNS: scheme policy, and IP-literal hosts (which never
    /// reach the resolver). Hostnames are checked by `PublicOnlyResolver` as they connect.
    pub fn check_literal(&self, parsed: &url::Url) -> Result<(), GuardError> {
        if self.require_https && parsed.scheme() != "https" {
            return Err(GuardError::HttpsRequired);
        }
        if self.allow_private {
            return Ok(());
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        check_ip(parsed.host_str().unwrap_or_default(), ip)
    }
}

fn check_ip(host: &str, ip: IpAddr) -> Result<(), GuardError> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(GuardError::Private {
            host: host.to_owned(),
            ip,
        })
    }
}

/// The longest a look-up may take: the system resolver may retry each of its servers for
/// several seconds, and a webhook's save (or a request, within its connect timeout) should say
/// so rather than wait for it.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, GuardError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    look_up_within(host, DNS_TIMEOUT, tokio::net::lookup_host((bare, port))).await
}

/// The addresses `lookup` finds for `host`, refused if it takes longer than `limit`.
async fn look_up_within<I>(
    host: &str,
    limit: Duration,
    lookup: impl std::future::Future<Output = std::io::Result<I>>,
) -> Result<Vec<IpAddr>, GuardError>
where
    I: Iterator<Item = SocketAddr>,
{
    let addrs: Vec<IpAddr> = tokio::time::timeout(limit, lookup)
        .await
        .map_err(|_| GuardError::SlowDns {
            host: host.into(),
            seconds: limit.as_secs(),
        })?
        .map_err(|_| GuardError::Unresolvable { host: host.into() })?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(GuardError::Unresolvable { host: host.into() });
    }
    Ok(addrs)
}

/// A DNS resolver for the HTTP client that drops non-public addresses, so the check holds at
/// connect time. (IP-literal URLs never reach a resolver; `check_url` covers those.)
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = resolve(&host, 0).await?;
            let public: Vec<SocketAddr> = ips
                .iter()
                .filter(|ip| is_public(**ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if public.is_empty() {
                let ip = ips[0];
                return Err(Box::new(GuardError::Private { host, ip }) as Box<_>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The resolver to install, or `None` for the system default when private targets are allowed.
pub fn resolver(policy: GuardPolicy) -> Option<Arc<PublicOnlyResolver>> {
    (!policy.allow_private).then(|| Arc::new(PublicOnlyResolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_and_reserved_targets_are_refused_unless_allowed() {
        let strict = GuardPolicy::default();
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://localhost:9/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[fec0::1]/",
        ] {
            let err = strict.check_url(url).await.unwrap_err();
            assert!(matches!(err, GuardError::Private { .. }), "{url}: {err:?}");
            assert!(err.to_string().contains("private"), "{err}");
        }
        assert!(strict.check_url("http://93.184.216.34/").await.is_ok());
        assert!(strict.check_url("http://[2606:4700::1111]/").await.is_ok());
        // Translated addresses of public IPv4 hosts stay allowed.
        assert!(strict
            .check_url("http://[64:ff9b::5db8:d822]/")
            .await
            .is_ok());
        assert!(strict
            .check_url("http://[2002:5db8:d822::1]/")
            .await
            .is_ok());
        let open = GuardPolicy {
            allow_private: true,
            require_https: false,
        };
        assert!(open.check_url("http://127.0.0.1/x").await.is_ok());
        let https = GuardPolicy {
            allow_private: true,
            require_https: true,
        };
        assert_eq!(
            https.check_url("http://127.0.0.1/").await,
            Err(GuardError::HttpsRequired)
        );
    }

    #[tokio::test]
    async fn a_look_up_that_takes_too_long_is_refused_naming_the_limit() {
        let never = std::future::pending::<std::io::Result<std::vec::IntoIter<SocketAddr>>>();
        let err = look_up_within("hooks.example.com", Duration::from_millis(20), never)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            GuardError::SlowDns {
                host: "hooks.example.com".into(),
                seconds: 0
            }
        );
        assert!(err.to_string().contains("did not resolve within"), "{err}");
        let quick =
            async { Ok(vec!["93.184.216.34:443".parse::<SocketAddr>().unwrap()].into_iter()) };
        assert_eq!(
            look_up_within("hooks.example.com", Duration::from_millis(20), quick).await,
            Ok(vec!["93.184.216.34".parse::<IpAddr>().unwrap()])
        );
    }
}
