//! Entry points for the fuzz targets (feature `fuzzing`): internals driven with arbitrary
//! input. Not a stable API.

use crate::config::GatewayConfig;

/// Parses `head` as an HTTP/1 request head with `httparse` (the parser hyper uses) and runs
/// the gateway's upgrade checks on it. `None`: not a complete, valid request head (hyper
/// would answer 400 itself); `Some(Ok(()))`: the request goes on to admission;
/// `Some(Err(status))`: the gateway answers `status`.
pub fn check_upgrade_head(
    cfg: &GatewayConfig,
    head: &[u8],
    draining: bool,
) -> Option<Result<(), u16>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut builder = hyper::Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    let request = builder.body(()).ok()?;
    Some(crate::transport::request::check(cfg, &request, draining).map_err(|a| a.status.as_u16()))
}
