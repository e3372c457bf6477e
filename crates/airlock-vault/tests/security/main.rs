//! Attacks on the vault at rest, one module per attack. Each attacker here can write the vault's files but does
//! not hold a key; each test shows the attack is detected with a specific error and that nothing is lost.
//! The `bao_*`, `env_file_*`, `keyctl_*` and `sealed_file_*` modules attack the secret backends instead: what a
//! crafted locator, a planted file line or kernel key, or an edited sealed file can make Airlock read or reach.

#[path = "../common/mod.rs"]
mod common;

mod bao_path_traversal_in_locator;
mod bit_flip_anywhere_in_the_file;
mod ciphertext_moved_to_another_record;
mod ciphertext_swapped_between_records;
mod env_file_injection_of_extra_variables;
mod group_or_world_access_to_vault_files;
mod injection_recipe_targets_framing_headers;
mod kdf_parameters_inflated_to_exhaust_memory;
mod kek_slot_transplanted_from_another_vault;
mod keyctl_description_collision;
mod keyring_transplanted_from_another_vault;
mod metadata_read_without_the_key;
mod record_deleted;
mod record_rolled_back_to_an_older_version;
mod sealed_file_envelope_swap;
mod sealed_file_metadata_edited;
mod sealed_file_rollback_of_one_value;
mod sealed_file_value_planted_or_removed;
mod surrogate_generation_stalled_by_degenerate_values;
mod truncation_at_every_length;
