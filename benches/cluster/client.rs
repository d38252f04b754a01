//! The benchmark's client side: the tests' keep-alive HTTP client (tests/util/http.rs),
//! the same one for dshare and for the bare tiny_http server, so the two are compared
//! on equal terms; and the bodies it sends.

use crate::{BODY_LEN, PATIENCE};

pub(crate) use crate::util::http::Conn;

/// A keep-alive connection to `url` that waits up to [`PATIENCE`] for an answer.
pub(crate) fn connect(url: &str) -> std::io::Result<Conn> {
    Conn::connect(url, PATIENCE)
}

/// A message body of [`BODY_LEN`] bytes starting with `tag`.
pub(crate) fn body(tag: &str) -> String {
    let mut b = format!("{tag} ");
    while b.len() < BODY_LEN {
        b.push_str("the quick brown fox jumps over the lazy dog; ");
    }
    b.truncate(BODY_LEN);
    b
}
