//! `airlock secret import` and `airlock secret sync` as a subprocess, against a real vault and a real store (the
//! process environment, read through the `env://` backend exactly as a run reads it): the value lands in the vault
//! unchanged and never on any output, every read from the store is on the audit record, and drift is found, reported
//! without values, and pulled.

mod common;

use common::Airlock;

const PASS: &str = "correct horse battery staple lamp";

fn setup() -> Airlock {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    al
}

fn value(al: &Airlock, name: &str) -> Vec<u8> {
    common::resolve(&mut common::open_with_passphrase(&al.home, PASS), name)
}

/// The messages of the log's `secret.read` records.
fn reads(al: &Airlock) -> Vec<String> {
    al.call(["--json", "audit", "query"])
        .expect(0)
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["api"]["operation"] == "secret.read")
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect()
}

fn assert_never_shown(al: &Airlock, values: &[&str]) {
    let t = String::from_utf8_lossy(&al.transcript()).into_owned();
    for v in values {
        assert!(!t.contains(v), "a store's value was printed");
    }
    for file in std::fs::read_dir(al.home.join("audit/segments")).unwrap() {
        let data = String::from_utf8_lossy(&std::fs::read(file.unwrap().path()).unwrap()).into_owned();
        assert!(values.iter().all(|v| !data.contains(v)), "a store's value reached the audit log");
    }
}

#[test]
fn import_copies_a_store_value_into_the_vault_and_records_the_read() {
    let al = setup();
    let v1 = format!("ghp_{}", common::random_alnum(36));
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH", "--host", "api.github.com"])
        .env("SRC_GH", &v1)
        .expect(0)
        .out_has("Stored default/gh (version 1");
    assert_eq!(value(&al, "gh"), v1.as_bytes(), "the vault holds exactly the store's value");
    let info = al.list();
    assert_eq!(info[0]["hosts"], serde_json::json!(["api.github.com"]), "the pins given on the command line");

    // A second import is a conflict unless asked to update; an update that changes nothing says so.
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH"]).env("SRC_GH", &v1).expect(5).err_has("--update");
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH", "--update"])
        .env("SRC_GH", &v1)
        .expect(0)
        .out_has("nothing changed");
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH", "--update", "--host", "evil.example"])
        .env("SRC_GH", &v1)
        .expect(2)
        .err_has("secret pin");
    let v2 = format!("ghp_{}", common::random_alnum(36));
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH", "--update"])
        .env("SRC_GH", &v2)
        .expect(0)
        .out_has("now version 2");
    assert_eq!(value(&al, "gh"), v2.as_bytes());
    assert_eq!(al.list()[0]["hosts"], serde_json::json!(["api.github.com"]), "an update keeps the pins");

    let r = reads(&al);
    assert_eq!(r.len(), 3, "one read per import that reached the store: {r:?}");
    assert!(r.iter().all(|m| m == "secret gh read from env://SRC_GH, for `airlock secret import`"), "{r:?}");
    al.call(["audit", "query", "--type", "entity"]).expect(0).out_has("imported from env://SRC_GH");
    al.call(["audit", "verify"]).expect(0);
    assert_never_shown(&al, &[&v1, &v2]);
}

#[test]
fn import_refuses_what_is_not_a_store_and_a_store_without_the_value() {
    let al = setup();
    al.call(["secret", "import", "gh", "--from", "other_secret"]).expect(8).err_has("expected a store locator");
    al.call(["secret", "import", "gh", "--from", "bao://secret/x"]).expect(8).err_has("#FIELD");
    al.call(["secret", "import", "gh", "--from", "s3://bucket/key"]).expect(8).err_has("unknown scheme");
    al.call(["secret", "import", "gh", "--from", "env://SRC_UNSET"]).env_remove("SRC_UNSET").expect(4);
    // bao:// needs [backends.bao]: without a config there is none.
    al.call(["secret", "import", "gh", "--from", "bao://secret/app#key"]).expect(8).err_has("[backends.bao]");
    assert!(al.names().is_empty(), "nothing was stored");
}

#[test]
fn sync_reports_drift_without_values_and_pull_brings_the_copy_up_to_date() {
    let al = setup();
    std::fs::write(
        al.home.join("airlock.toml"),
        "version = 1\n[secrets.gh]\nhosts = [\"api.github.com\"]\nsource = \"env://SRC_GH\"\n\
         [secrets.npm]\nhosts = [\"registry.npmjs.org\"]\nsource = \"env://SRC_NPM\"\n",
    )
    .unwrap();
    let gh = format!("ghp_{}", common::random_alnum(36));
    let npm = format!("npm_{}", common::random_alnum(36));
    al.call(["secret", "import", "gh", "--from", "env://SRC_GH", "--host", "api.github.com"])
        .env("SRC_GH", &gh)
        .expect(0);
    al.call(["secret", "import", "npm", "--from", "env://SRC_NPM", "--host", "registry.npmjs.org"])
        .env("SRC_NPM", &npm)
        .expect(0);
    let sync = |gh_now: &str, extra: &[&str]| {
        al.call(["--json", "secret", "sync"]).args(extra).env("SRC_GH", gh_now).env("SRC_NPM", &npm)
    };
    let states = |out: String| -> Vec<(String, String)> {
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .unwrap()
            .iter()
            .map(|p| (p["secret"].as_str().unwrap().to_string(), p["state"].as_str().unwrap().to_string()))
            .collect()
    };
    let pair = |s: &str, st: &str| (s.to_string(), st.to_string());

    assert_eq!(states(sync(&gh, &[]).expect(0).out()), [pair("default/gh", "in-sync"), pair("default/npm", "in-sync")]);

    // The store's value moves on: drift, exit 16, and neither value is shown.
    let gh2 = format!("ghp_{}", common::random_alnum(36));
    assert_eq!(
        states(sync(&gh2, &[]).expect(16).out()),
        [pair("default/gh", "drifted"), pair("default/npm", "in-sync")]
    );
    assert_eq!(value(&al, "gh"), gh.as_bytes(), "a check changes nothing");
    al.call(["secret", "sync", "gh"]).env("SRC_GH", &gh2).expect(16).out_has("drifted");

    // --pull gives the local copy the store's value as a new version; then it is in sync.
    assert_eq!(
        states(sync(&gh2, &["--pull"]).expect(0).out()),
        [pair("default/gh", "pulled"), pair("default/npm", "in-sync")]
    );
    assert_eq!(value(&al, "gh"), gh2.as_bytes());
    assert_eq!(
        states(sync(&gh2, &[]).expect(0).out()),
        [pair("default/gh", "in-sync"), pair("default/npm", "in-sync")]
    );

    // Gone from the store: reported as such, not as drift of an empty value.
    let out = al.call(["--json", "secret", "sync", "gh"]).env_remove("SRC_GH").expect(16).out();
    assert_eq!(states(out), [pair("default/gh", "missing-in-store")]);

    // --against compares one named secret with any store.
    al.call(["secret", "sync", "npm", "--against", "env://OTHER"]).env("OTHER", &npm).expect(0).out_has("in-sync");
    al.call(["secret", "sync", "gh", "npm", "--against", "env://OTHER"]).expect(2).err_has("exactly one");
    al.call(["secret", "sync", "nosuch"]).expect(8).err_has("no [secrets.nosuch] source");

    let r = reads(&al);
    assert!(r.iter().any(|m| m == "secret gh read from env://SRC_GH, for `airlock secret sync`"), "{r:?}");
    al.call(["audit", "query", "--type", "entity"]).expect(0).out_has("pulled from env://SRC_GH");
    al.call(["audit", "verify"]).expect(0);
    assert_never_shown(&al, &[&gh, &gh2, &npm]);
}

#[test]
fn import_and_sync_against_a_real_openbao_name_its_versions() {
    let Some(bao) = common::bao::Bao::dev() else { return };
    let al = setup();
    let token = bao.client_token("reader", "path \"secret/data/team/*\" { capabilities = [\"read\"] }");
    std::fs::write(
        al.home.join("airlock.toml"),
        format!(
            "version = 1\n[backends.bao]\naddress = \"{}\"\nauth = {{ method = \"token\", token_env = \"TEAM_BAO_TOKEN\" }}\n\
             [secrets.openai]\nhosts = [\"api.openai.com\"]\nsource = \"bao://secret/team/openai#api_key\"\n",
            bao.addr
        ),
    )
    .unwrap();
    let v1 = format!("sk-proj-{}", common::random_alnum(48));
    bao.kv_put("team/openai", &serde_json::json!({"api_key": v1, "org": "example"}));
    let cli = |args: &[&str]| al.call(args).env("TEAM_BAO_TOKEN", &token);

    cli(&["secret", "import", "openai", "--from", "bao://secret/team/openai#api_key", "--host", "api.openai.com"])
        .expect(0);
    assert_eq!(value(&al, "openai"), v1.as_bytes());
    cli(&["secret", "sync"]).expect(0).out_has("in-sync");

    // Rotated in OpenBao: the vault's copy is now behind, by version.
    let v2 = format!("sk-proj-{}", common::random_alnum(48));
    bao.kv_put("team/openai", &serde_json::json!({"api_key": v2, "org": "example"}));
    let out = cli(&["--json", "secret", "sync"]).expect(16).json();
    assert_eq!(out[0]["state"], "drifted");
    assert_eq!((out[0]["local_version"].as_u64(), out[0]["store_version"].as_u64()), (Some(1), Some(2)));
    cli(&["secret", "sync", "--pull"]).expect(0).out_has("pulled");
    assert_eq!(value(&al, "openai"), v2.as_bytes());

    // A token the store refuses is an error naming the store, not drift, and not a change.
    al.call(["secret", "sync"]).env("TEAM_BAO_TOKEN", "s.not-a-token").expect(1).out_has("unreadable");
    let r = reads(&al);
    assert!(
        r.contains(
            &"secret openai read from bao://secret/team/openai#api_key, version 2, for `airlock secret sync`"
                .to_string()
        ),
        "{r:?}"
    );
    al.call(["audit", "verify"]).expect(0);
    assert_never_shown(&al, &[&v1, &v2, &token]);
}

#[test]
fn a_store_that_is_down_is_try_again_later_for_import_and_sync() {
    let al = setup();
    std::fs::write(
        al.home.join("airlock.toml"),
        format!(
            "version = 1\n{}[secrets.openai]\nhosts = [\"api.openai.com\"]\nsource = \"bao://secret/team/openai#api_key\"\n",
            common::bao::unreachable_backend("TEAM_BAO_TOKEN")
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| al.call(args).env("TEAM_BAO_TOKEN", "s.not-a-real-token");
    cli(&["secret", "import", "openai", "--from", "bao://secret/team/openai#api_key"])
        .expect(17)
        .err_has("unavailable");
    assert!(al.list().is_empty(), "nothing was stored");
    al.set("openai", b"sk-proj-local-copy");
    // Exit 17, not 1 (an error) or 16 (drift): nothing was compared, and asking again later may work.
    // (A store that refuses the token is not "later": exit 1, in the OpenBao test above.)
    cli(&["secret", "sync"]).expect(17).out_has("unreadable");
    assert_eq!(value(&al, "openai"), b"sk-proj-local-copy", "the vault's copy is untouched");
}
