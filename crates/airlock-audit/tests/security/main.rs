//! Attacks on the audit log, one file per attack, each named after it. Every test builds a real log on disk,
//! attacks the files the way someone with write access to them could, and asserts that `verify` (or the
//! writer) catches it — naming the first bad record where the attack touches one.

#[path = "../common/mod.rs"]
mod common;

mod delete_a_middle_record;
mod delete_a_segment_file;
mod disk_full_during_append;
mod drop_the_tail;
mod flip_one_byte_anywhere;
mod kill_the_writer_mid_append;
mod reorder_two_records;
mod replace_the_log_with_a_forged_one;
mod roll_the_clock_back;
mod sensitive_value_in_a_record;
mod truncate_then_append_forged_records;
