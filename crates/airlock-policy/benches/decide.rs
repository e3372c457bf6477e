//! Decision benchmarks, printed as a table (recorded in docs/benchmarks.md).
//!
//! Run: `cargo bench -p airlock-policy --bench decide`
//!
//! For configs with 10, 100 and 1,000 tools (each with network, fs, exec, secret and limit blocks; one agent
//! granted every tool), measures per decision:
//! - uncached: Cedar evaluation of an already-normalised request (`Engine::evaluate`), the engine's real
//!   miss path;
//! - cached: a cache hit (`Engine::decide_normalized`);
//! - normalise: turning a raw URL request into its canonical form (paid on every call, hit or miss);
//! - end to end: `Engine::decide` on a raw request that hits the cache;
//!
//! And the time to load, validate, compile and lint the whole config (what a hot reload costs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use airlock_policy::{Engine, LoadOptions, NormalizedRequest, Request};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn config(tools: usize) -> String {
    let mut c = String::from("version = 1\n[limits]\nmemory = \"512MiB\"\ncpu_seconds = 60\n\n");
    c.push_str("[network]\ndeny = [\"*.evil.example\"]\n\n[secrets.TOKEN]\nhosts = [\"api.service0.example\"]\n\n");
    c.push_str("[agents.bench]\ntools = [\"*\"]\n\n");
    for i in 0..tools {
        c.push_str(&format!(
            "[tools.t{i}]\nsecrets = [\"TOKEN\"]\n\
             [[tools.t{i}.network]]\nhosts = [\"api.service{i}.example\", \"*.cdn{i}.example\"]\nmethods = [\"GET\", \"POST\"]\npaths = [\"/v1/\", \"/v2/items\"]\nmax_request_bytes = \"1MiB\"\n\
             [tools.t{i}.fs]\nread = [\"${{WORKSPACE}}\", \"!${{WORKSPACE}}/.env\", \"!**/*.key\"]\nwrite = [\"${{WORKSPACE}}/out\"]\ndeny = [\"${{WORKSPACE}}/private\"]\n\
             [tools.t{i}.exec]\nallow = [\"sh\", \"ls\"]\ndeny = [\"rm\"]\n\n"
        ));
    }
    c
}

/// Median time for `PolicyStore::reload` after one tool's host changes (parsed policies are reused).
fn reload_one_changed(dir: &std::path::Path, tools: usize) -> Duration {
    let path = dir.join(format!("reload-{tools}.toml"));
    let text = config(tools);
    std::fs::write(&path, &text).unwrap();
    let opts = LoadOptions {
        profile_flag: Some("dev".into()),
        profile_env: None,
        workspace: dir.to_path_buf(),
        home: dir.join("home"),
    };
    let store = airlock_policy::PolicyStore::open(&path, opts).unwrap();
    let mut times = Vec::new();
    for round in 0..5 {
        let changed = text.replace("api.service0.example\"", &format!("api.service0-{round}.example\""));
        std::fs::write(&path, changed).unwrap();
        let t = Instant::now();
        store.reload().unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

fn load(dir: &std::path::Path, tools: usize) -> (Engine, Duration) {
    let path = dir.join(format!("airlock-{tools}.toml"));
    std::fs::write(&path, config(tools)).unwrap();
    let opts = LoadOptions {
        profile_flag: Some("dev".into()),
        profile_env: None,
        workspace: dir.to_path_buf(),
        home: dir.join("home"),
    };
    let mut times = Vec::new();
    let mut engine = None;
    for _ in 0..5 {
        let t = Instant::now();
        let e = airlock_policy::load_engine(&path, &opts).unwrap();
        times.push(t.elapsed());
        engine = Some(e);
    }
    times.sort();
    (engine.unwrap(), percentile(&times, 0.5))
}

fn measure(mut f: impl FnMut(usize), n: usize) -> (Duration, Duration) {
    for i in 0..n / 10 {
        f(i);
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i);
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    // `DECIDE_PROFILE=1`: only the uncached loop, long enough for `perf record`.
    if let Some(n) = std::env::var_os("DECIDE_LOAD") {
        // Where a reload's time goes, phase by phase.
        let tools: usize = n.to_str().and_then(|s| s.parse().ok()).unwrap_or(1000);
        let path = ws.join("phases.toml");
        std::fs::write(&path, config(tools)).unwrap();
        let opts = LoadOptions { profile_flag: None, profile_env: None, workspace: ws.clone(), home: ws.join("home") };
        let t = Instant::now();
        let doc = airlock_policy::load::load_file(&path, &opts).unwrap();
        println!("parse   {:?}", t.elapsed());
        let t = Instant::now();
        let (model, _) = airlock_policy::model::build(&doc).unwrap();
        println!("model   {:?}", t.elapsed());
        let t = Instant::now();
        let compiled = airlock_policy::compile::compile(model, &doc.source, &doc.cedar, &Default::default()).unwrap();
        println!("compile {:?}", t.elapsed());
        let texts: Vec<String> =
            compiled.all.policies().map(|p| compiled.policy_text(&p.id().to_string()).unwrap().to_string()).collect();
        let t = Instant::now();
        for (i, text) in texts.iter().enumerate() {
            black_box(cedar_policy::Policy::parse(Some(cedar_policy::PolicyId::new(format!("p{i}"))), text).unwrap());
        }
        println!("parse one by one {:?}", t.elapsed());
        let big = texts.join("\n");
        let t = Instant::now();
        black_box(big.parse::<cedar_policy::PolicySet>().unwrap());
        println!("parse as one set {:?}", t.elapsed());
        let t = Instant::now();
        let lints = airlock_policy::lint::lint(&compiled.model, &compiled, &doc.source);
        println!("lint    {:?} ({} findings)", t.elapsed(), lints.len());
        return;
    }
    if let Some(n) = std::env::var_os("DECIDE_MIX") {
        let tools: usize = n.to_str().and_then(|s| s.parse().ok()).unwrap_or(10);
        let (engine, _) = load(&ws, tools);
        let raw: Vec<Request> = (0..256)
            .map(|i| {
                let t = (i * 7919) % tools;
                match i % 4 {
                    0 => {
                        Request::http("bench", &format!("t{t}"), "GET", &format!("https://api.service{t}.example/v1/x"))
                    }
                    1 => Request::http(
                        "bench",
                        &format!("t{t}"),
                        "DELETE",
                        &format!("https://api.service{t}.example/v1/x"),
                    ),
                    2 => {
                        Request::http("bench", &format!("t{t}"), "GET", &format!("https://a.cdn{t}.example/v2/items/3"))
                    }
                    _ => Request::http("bench", &format!("t{t}"), "GET", "https://unknown.example/"),
                }
            })
            .collect();
        let normalized: Vec<NormalizedRequest> = raw.iter().map(|r| engine.normalize(r).unwrap()).collect();
        for i in 0..400_000 {
            black_box(engine.evaluate(&normalized[i % normalized.len()]).allowed);
        }
        return;
    }
    if std::env::var_os("DECIDE_PROFILE").is_some() {
        let (engine, _) = load(&ws, 10);
        let r = engine.normalize(&Request::http("bench", "t3", "GET", "https://api.service3.example/v1/x")).unwrap();
        let set = engine.slice_of(&r).unwrap();
        let t = Instant::now();
        for _ in 0..20_000 {
            black_box(engine.cedar_request(&r).unwrap());
        }
        println!("build {:?}", t.elapsed() / 20_000);
        let (req, ents) = engine.cedar_request(&r).unwrap();
        let auth = cedar_policy::Authorizer::new();
        let loops = if std::env::var_os("DECIDE_AUTH_ONLY").is_some() { 300_000 } else { 20_000 };
        let t = Instant::now();
        for _ in 0..loops {
            black_box(auth.is_authorized(&req, set, &ents));
        }
        println!("authorize {:?} over {} policies", t.elapsed() / loops, set.num_of_policies());
        for p in set.policies() {
            let one = cedar_policy::PolicySet::from_policies([p.clone()]).unwrap();
            let t = Instant::now();
            for _ in 0..20_000 {
                black_box(auth.is_authorized(&req, &one, &ents));
            }
            println!("{} {:?}", p.id(), t.elapsed() / 20_000);
        }
        for n in [1usize, 2, 4, 8] {
            let text: String =
                (0..n).map(|i| format!("@id(\"p{i}\") permit(principal, action, resource);\n")).collect();
            let trivial: cedar_policy::PolicySet = text.parse().unwrap();
            let t = Instant::now();
            for _ in 0..20_000 {
                black_box(auth.is_authorized(&req, &trivial, &ents));
            }
            println!("trivial x{n} {:?}", t.elapsed() / 20_000);
        }
        let deny = engine.normalize(&Request::http("bench", "t3", "GET", "https://unknown.example/")).unwrap();
        for (name, req) in [("allow", &r), ("deny", &deny)] {
            let t = Instant::now();
            for _ in 0..20_000 {
                black_box(engine.evaluate(req));
            }
            println!("evaluate {name} {:?}", t.elapsed() / 20_000);
        }
        return;
    }
    println!(
        "| tools | policies | uncached p50 | uncached p99 | cached p50 | cached p99 | normalise p50 | end-to-end cached p50 | load+compile |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for tools in [10usize, 100, 1000] {
        let (engine, load_time) = load(&ws, tools);
        // A spread of requests over the tools: allows and default denies, http and fs.
        let raw: Vec<Request> = (0..256)
            .map(|i| {
                let t = (i * 7919) % tools;
                match i % 4 {
                    0 => {
                        Request::http("bench", &format!("t{t}"), "GET", &format!("https://api.service{t}.example/v1/x"))
                    }
                    1 => Request::http(
                        "bench",
                        &format!("t{t}"),
                        "DELETE",
                        &format!("https://api.service{t}.example/v1/x"),
                    ),
                    2 => {
                        Request::http("bench", &format!("t{t}"), "GET", &format!("https://a.cdn{t}.example/v2/items/3"))
                    }
                    _ => Request::http("bench", &format!("t{t}"), "GET", "https://unknown.example/"),
                }
            })
            .collect();
        let normalized: Vec<NormalizedRequest> = raw.iter().map(|r| engine.normalize(r).unwrap()).collect();
        let (u50, u99) = measure(
            |i| {
                black_box(engine.evaluate(&normalized[i % normalized.len()]).allowed);
            },
            20_000,
        );
        for n in &normalized {
            engine.decide_normalized(n);
        }
        let (c50, c99) = measure(
            |i| {
                black_box(engine.decide_normalized(&normalized[i % normalized.len()]).cached);
            },
            200_000,
        );
        let (n50, _) = measure(
            |i| {
                black_box(engine.normalize(&raw[i % raw.len()]).is_ok());
            },
            50_000,
        );
        let (e50, _) = measure(
            |i| {
                black_box(engine.decide(&raw[i % raw.len()]).cached);
            },
            50_000,
        );
        let reload = reload_one_changed(&ws, tools);
        println!(
            "| {tools} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            engine.compiled().policy_count(),
            fmt_dur(u50),
            fmt_dur(u99),
            fmt_dur(c50),
            fmt_dur(c99),
            fmt_dur(n50),
            fmt_dur(e50),
            fmt_dur(load_time),
            fmt_dur(reload)
        );
    }
}
