//! Attacks on the prompt-injection guard, one file per attack, each named after it. Each test plays the attacker
//! against the real normaliser, heuristics and (where the model is installed) classifier, and asserts the guard's
//! verdict and explanation.

#[path = "../model/mod.rs"]
mod common_model;

mod disguise_an_image_as_a_link_with_a_code_span;
mod encode_an_override_in_base64;
mod exfiltrate_data_through_a_markdown_image;
mod exfiltrate_data_through_a_reference_style_image;
mod forge_a_chat_template_delimiter;
mod hide_an_override_in_tag_characters;
mod hide_the_exfiltration_host_behind_userinfo;
mod leak_a_canary_in_model_output;
mod leak_a_secret_in_model_output;
mod smuggle_an_exfiltration_link_in_markdown;
mod spell_an_override_with_lookalike_letters;
mod split_an_override_with_zero_width_characters;
mod swap_the_classifier_model;
mod write_an_override_in_leetspeak;

use airlock_guard::heuristics::Heuristics;
use airlock_guard::score::{Assessment, Thresholds, assess};

/// The heuristics' assessment at the default profile.
pub fn heuristics(text: &str) -> Assessment {
    assess(Heuristics::builtin(), text, None, Thresholds::DEFAULT)
}

/// The ids of the evidence.
pub fn ids(a: &Assessment) -> Vec<&str> {
    a.evidence.iter().map(|e| e.id.as_str()).collect()
}
