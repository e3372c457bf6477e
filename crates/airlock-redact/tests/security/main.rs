//! Attacks on the redaction engine, one file each, named after the attack.

mod common;

mod flood_the_stream_with_one_endless_line;
mod hide_a_known_value_in_an_encoding;
mod hide_a_token_in_invalid_utf8;
mod print_a_private_key_one_byte_at_a_time;
mod split_a_token_across_output_chunks;
mod stall_the_scanner_with_keyword_floods;
