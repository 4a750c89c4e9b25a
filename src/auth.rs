//! Security: who may call (`access`: console users, sessions, API keys, the activity log),
//! passwords, login throttling, and sealing secrets at rest.

pub mod access;
pub mod api_key;
pub mod client_ip;
pub mod password;
pub mod seal;
pub mod throttle;

pub use access::{
    Access, AccessError, Actor, AddedMember, Caller, InstallAdmin, NewSession, ProgramAccess,
    SessionPolicy,
};

/// The client address a request came from, as `client_ip::client_address` worked it out (put in
/// the request's extensions in front of the console).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub std::net::IpAddr);

/// The value of cookie `name` among `Cookie` header values.
pub fn cookie<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<String> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}
