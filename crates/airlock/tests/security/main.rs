//! Security tests of the real `airlock` binary: one module per attack, each named after it. They run the binary
//! as a subprocess against a throwaway `AIRLOCK_HOME` and check the result with the library.

#[path = "../common/mod.rs"]
mod common;

mod concurrent_writers;
mod freed_heap_scraped_for_secrets;
mod kill9_during_key_rotate;
mod kill9_during_secret_set;
mod memory_read_from_an_unlocked_process;
mod secret_value_leak_canary_scan;
mod secret_value_pasted_into_another_argument;
mod secret_value_via_argv_refused;
mod stale_temp_cleanup;
