//! `[providers.NAME]` in `airlock.toml`: user-defined providers for the typed capability API.
//!
//! Why a provider is configuration and not something a tool sends: in the capability API a tool names a provider and
//! a capability (`POST /v1/capabilities/myapi/list-things`) and the broker builds the upstream request itself. The
//! host comes from `base_url` here, never from the caller, and the credential goes on the wire by `inject`, only
//! toward `hosts`. A provider therefore says everything a tool may *not* choose: where, with which secret, how the
//! secret is written, which fixed headers always go along, and which methods and paths each capability reaches.
//!
//! These are plain serde types with `deny_unknown_fields`, like [`crate::config`]: a misspelt key must be an error,
//! never a silently missing restriction. They are validated (URL, names, headers, paths) when the broker builds its
//! registry; the built-in providers (openai, anthropic, github, slack, stripe) live in the broker and a user provider
//! may reuse neither their names nor their secrets.
//!
//! ```toml
//! [providers.myapi]
//! base_url = "https://api.myco.com"
//! secret = "MYAPI_TOKEN"
//! inject = { header = "Authorization", format = "Bearer {value}" }
//! headers = { "x-api-version" = "2024-01-01" }
//!
//! [providers.myapi.capabilities.list-things]
//! methods = ["GET"]
//! paths = ["/v1/things"]
//! response_blocklist = ["token", "client_secret"]
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::InjectRecipe;

/// One upstream API a tool may call through the capability API.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `scheme://host[:port]` with no path, e.g. `"https://api.myco.com"`. Every call goes here, whatever the
    /// caller sends. `http://` is accepted (for local test servers), but policy and SSRF defence still decide the
    /// request, and the broker injects credentials only over https.
    pub base_url: String,
    /// Host patterns the provider's secret is pinned to (`"api.myco.com"`, `"*.myco.com"`). Must admit the host of
    /// `base_url`; empty means exactly that host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The vault secret used for every call. May not be one a built-in provider pins.
    pub secret: String,
    /// How the secret is written: a header (`header`, `format` with `{value}`) or a query parameter (`query`).
    /// Unset means `Authorization: Bearer {value}`.
    pub inject: Option<InjectRecipe>,
    /// Headers added to every call. A caller can neither set nor override them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The capabilities, by name (`[a-z0-9][a-z0-9-]*`, at most 63 characters).
    #[serde(default)]
    pub capabilities: BTreeMap<String, CapabilityConfig>,
}

/// One capability: the requests a call under this name may become.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityConfig {
    /// Allowed methods (`"GET"`, `"POST"`, ...); at least one.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Allowed path prefixes, matched segment by segment (`/v1/things` allows `/v1/things/7`, not `/v1/thingsx`).
    /// A `*` segment matches exactly one non-empty segment (`/repos/*/*`). At least one.
    #[serde(default)]
    pub paths: Vec<String>,
    /// JSON object keys removed from responses at any depth (exact, case-sensitive). When not empty, a response
    /// that is not JSON is refused rather than passed through unfiltered.
    #[serde(default)]
    pub response_blocklist: Vec<String>,
    /// What the capability is for, shown to people and models listing capabilities.
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        providers: BTreeMap<String, ProviderConfig>,
    }

    #[test]
    fn a_provider_table_parses() {
        let text = r#"
            [providers.myapi]
            base_url = "https://api.myco.com"
            secret = "MYAPI_TOKEN"
            inject = { header = "Authorization", format = "Bearer {value}" }
            headers = { "x-api-version" = "2024-01-01" }
            [providers.myapi.capabilities.list-things]
            methods = ["GET"]
            paths = ["/v1/things"]
            response_blocklist = ["token"]
            description = "List things"
        "#;
        let f: File = toml::from_str(text).unwrap();
        let p = &f.providers["myapi"];
        assert_eq!(p.base_url, "https://api.myco.com");
        assert!(p.hosts.is_empty());
        assert_eq!(p.inject.as_ref().and_then(|i| i.header.as_deref()), Some("Authorization"));
        assert_eq!(p.headers["x-api-version"], "2024-01-01");
        let c = &p.capabilities["list-things"];
        assert_eq!(c.methods, ["GET"]);
        assert_eq!(c.paths, ["/v1/things"]);
        assert_eq!(c.response_blocklist, ["token"]);
    }

    #[test]
    fn unknown_keys_and_missing_required_keys_are_errors() {
        let misspelt = "[providers.x]\nbase_url = \"https://a.example\"\nsecret = \"S\"\nhots = [\"a.example\"]\n";
        assert!(toml::from_str::<File>(misspelt).unwrap_err().to_string().contains("hots"));
        let cap = "[providers.x]\nbase_url = \"https://a.example\"\nsecret = \"S\"\n\
                   [providers.x.capabilities.c]\nmethod = [\"GET\"]\n";
        assert!(toml::from_str::<File>(cap).is_err());
        assert!(toml::from_str::<File>("[providers.x]\nbase_url = \"https://a.example\"\n").is_err());
        assert!(toml::from_str::<File>("[providers.x]\nsecret = \"S\"\n").is_err());
    }

    #[test]
    fn the_schema_describes_both_types() {
        let schema = serde_json::to_string(&schemars::schema_for!(ProviderConfig)).unwrap();
        assert!(schema.contains("base_url") && schema.contains("response_blocklist"), "{schema}");
    }
}
