//! The store: the code that talks to Redis. Replies walked as Redis sent them
//! ([`reply`]), task entries decoded ([`codec`]), `XINFO` and the stream scan
//! ([`xinfo`]), dead letters written ([`dlq`]) and read ([`letters`]).
//!
//! Nothing here knows about HTTP, WebSocket or the CLI; the engine and the transports
//! call it.

pub(crate) mod codec;
pub mod dlq;
pub(crate) mod letters;
pub(crate) mod reply;
pub(crate) mod xinfo;

/// `url` with its password replaced by `****`.
pub fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:****{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
