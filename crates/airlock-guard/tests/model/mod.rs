//! The real classifier model for tests: `AIRLOCK_TEST_MODEL_DIR` (scripts/test.sh installs it and sets that, and
//! `AIRLOCK_REQUIRE_MODEL=1` so that a missing model fails the tests instead of skipping them).

// Each test crate uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use airlock_guard::classifier::Classifier;

pub fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AIRLOCK_TEST_MODEL_DIR").filter(|d| !d.is_empty()).map(PathBuf::from);
    if dir.is_none() {
        assert!(
            std::env::var("AIRLOCK_REQUIRE_MODEL").as_deref() != Ok("1"),
            "AIRLOCK_REQUIRE_MODEL=1 but AIRLOCK_TEST_MODEL_DIR is not set"
        );
        eprintln!("notice: AIRLOCK_TEST_MODEL_DIR is not set; skipping a classifier test (scripts/test.sh sets it)");
    }
    dir
}

/// The classifier, loaded once per test binary.
pub fn classifier() -> Option<&'static Classifier> {
    static LOADED: OnceLock<Option<Classifier>> = OnceLock::new();
    LOADED.get_or_init(|| model_dir().map(|dir| Classifier::load(&dir).expect("the test model loads").0)).as_ref()
}
