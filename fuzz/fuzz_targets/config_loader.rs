//! Fuzzes the `netsvr` configuration loader with arbitrary text: it must answer a config or
//! an error naming the file (never panic), and an accepted config, printed as
//! `--check-config` prints it (secrets as `***`), must load again and print the same.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netsvr_bin::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Config::from_toml(path, text) {
        // A worker secret prints as `***`, too short to load again.
        Ok(config) if !config.worker.secret.is_empty() => {}
        Ok(config) => {
            let printed = config.to_toml();
            let again = Config::from_toml(path, &printed).expect("a printed config loads");
            assert_eq!(again.to_toml(), printed, "printing is not stable");
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{e}"),
    }
});
