//! Logging: the subscriber installs once, and its level changes at runtime through the
//! handle (what SIGHUP does); a bad level is refused and the old one stays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use netsvr_bin::config::{LogFormat, LogSection};
use netsvr_bin::logging;

#[test]
fn the_level_reloads_and_bad_levels_are_refused() {
    let section = LogSection {
        level: "info".to_owned(),
        format: LogFormat::Json,
    };
    let handle = logging::init(&section).unwrap();
    assert_eq!(handle.level().as_deref(), Some("info"));
    assert!(tracing::enabled!(tracing::Level::INFO));
    handle.set_level("warn,netsvr_core=debug").unwrap();
    assert_eq!(handle.level().as_deref(), Some("netsvr_core=debug,warn"));
    assert!(!tracing::enabled!(tracing::Level::INFO));
    let err = handle.set_level("verbose").unwrap_err().to_string();
    assert!(err.contains("log.level `verbose`"), "{err}");
    assert!(handle.level().unwrap().contains("warn"));
    // Only one global subscriber per process.
    assert!(logging::init(&section).is_err());
}
