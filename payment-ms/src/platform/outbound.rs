//! Calls to the services beside this one (the account service, an inventory service): one
//! client shape, and their URLs built segment by segment.

use std::time::Duration;

use url::Url;

/// A client bounded by `timeout` per call (connecting within 2 s at most), following no
/// redirects, naming itself.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(2)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("payment-ms/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `base` with `segments` appended, each escaped as one segment; `None` for a base that cannot
/// take a path.
pub fn endpoint(base: &Url, segments: &[&str]) -> Option<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}
