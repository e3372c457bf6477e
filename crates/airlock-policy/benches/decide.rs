//! Decision benchmarks, printed as a table (recorded in docs/benchmarks.md).
//!
//! Run: `cargo bench -p airlock-policy --bench decide`
//!
//! For configs with 10, 100 and 1,000 tools (each with network, fs, exec, secret and limit blocks; one agent
//! granted every tool), measures per decision:
//! - uncached: Cedar evaluation of an already-normalised request (`Engine::evaluate`), the engine's miss path;
//! - cached: a cache hit (`Engine::decide_normalized`);
//! - normalise: turning a raw URL request into its canonical form (paid on every call, hit or miss);
//! - end to end: `Engine::decide` on a raw request that hits the cache;
//!
//! And what a load costs: a cold load (parse, validate, compile, lint) and a `PolicyStore::reload` after one
//! tool changed.
//!
//! Diagnostic modes (not part of the table):
//! - `DECIDE_BREAKDOWN=1`: input building vs Cedar, per policy, and Cedar's floor on trivial policies;
//! - `DECIDE_PHASES=1000`: where a cold load of N tools spends its time;
//! - `DECIDE_LOOP=1000`: the uncached loop alone, for `perf record`;
//! - `DECIDE_SPREAD=10`: the 1,000-tool engine with requests over only 10 (or N) tools.

use std::hint::black_box;
use std::path::Path;
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

fn options(dir: &Path) -> LoadOptions {
    LoadOptions {
        profile_flag: Some("dev".into()),
        profile_env: None,
        workspace: dir.to_path_buf(),
        home: dir.join("home"),
    }
}

/// Median cold load of the whole config, and the engine.
fn load(dir: &Path, tools: usize) -> (Engine, Duration) {
    let path = dir.join(format!("airlock-{tools}.toml"));
    std::fs::write(&path, config(tools)).unwrap();
    let mut times = Vec::new();
    let mut engine = None;
    for _ in 0..5 {
        let t = Instant::now();
        let e = airlock_policy::load_engine(&path, &options(dir)).unwrap();
        times.push(t.elapsed());
        engine = Some(e);
    }
    times.sort();
    (engine.unwrap(), percentile(&times, 0.5))
}

/// Median `PolicyStore::reload` after one tool's host changes (parsed policies are reused).
fn reload_one_changed(dir: &Path, tools: usize) -> Duration {
    let path = dir.join(format!("reload-{tools}.toml"));
    let text = config(tools);
    std::fs::write(&path, &text).unwrap();
    let store = airlock_policy::PolicyStore::open(&path, options(dir)).unwrap();
    let mut times = Vec::new();
    for round in 0..5 {
        std::fs::write(&path, text.replace("api.service0.example\"", &format!("api.service0-{round}.example\"")))
            .unwrap();
        let t = Instant::now();
        store.reload().unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

/// A spread of requests over the tools: allows and default denies.
fn requests(tools: usize) -> Vec<Request> {
    (0..256)
        .map(|i| {
            let t = (i * 7919) % tools;
            let tool = format!("t{t}");
            match i % 4 {
                0 => Request::http("bench", &tool, "GET", &format!("https://api.service{t}.example/v1/x")),
                1 => Request::http("bench", &tool, "DELETE", &format!("https://api.service{t}.example/v1/x")),
                2 => Request::http("bench", &tool, "GET", &format!("https://a.cdn{t}.example/v2/items/3")),
                _ => Request::http("bench", &tool, "GET", "https://unknown.example/"),
            }
        })
        .collect()
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

fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn breakdown(dir: &Path) {
    let (engine, _) = load(dir, 10);
    let allow = engine.normalize(&Request::http("bench", "t3", "GET", "https://api.service3.example/v1/x")).unwrap();
    let deny = engine.normalize(&Request::http("bench", "t3", "GET", "https://unknown.example/")).unwrap();
    let set = engine.slice_of(&allow).unwrap();
    let auth = cedar_policy::Authorizer::new();
    let (req, ents) = engine.cedar_request(&allow).unwrap();
    println!("build inputs        {:?}", per_call(20_000, || drop(black_box(engine.cedar_request(&allow).unwrap()))));
    println!(
        "cedar, {} policies   {:?}",
        set.num_of_policies(),
        per_call(20_000, || drop(black_box(auth.is_authorized(&req, set, &ents))))
    );
    for p in set.policies() {
        let one = cedar_policy::PolicySet::from_policies([p.clone()]).unwrap();
        println!(
            "  alone: {:<28} {:?}",
            p.id(),
            per_call(20_000, || drop(black_box(auth.is_authorized(&req, &one, &ents))))
        );
    }
    for (name, text) in [
        (
            "grant, action in group",
            "forbid(principal, action in Action::\"tool\", resource) unless { principal in context.tool };",
        ),
        (
            "grant, action ==",
            "forbid(principal, action == Action::\"http.request\", resource) unless { principal in context.tool };",
        ),
        ("grant, no action", "forbid(principal, action, resource) unless { principal in context.tool };"),
        ("forbid when false", "forbid(principal, action, resource) when { false };"),
        ("permit unless true", "permit(principal, action, resource) when { context.default_port };"),
    ] {
        let one: cedar_policy::PolicySet = text.parse().unwrap();
        println!("  {name:<28} {:?}", per_call(20_000, || drop(black_box(auth.is_authorized(&req, &one, &ents)))));
    }
    for n in [1usize, 4, 8] {
        let text: String = (0..n).map(|i| format!("@id(\"p{i}\") permit(principal, action, resource);\n")).collect();
        let trivial: cedar_policy::PolicySet = text.parse().unwrap();
        println!(
            "  {n} trivial permits       {:?}",
            per_call(20_000, || drop(black_box(auth.is_authorized(&req, &trivial, &ents))))
        );
    }
    println!("evaluate, allow     {:?}", per_call(20_000, || drop(black_box(engine.evaluate(&allow)))));
    println!("evaluate, deny      {:?}", per_call(20_000, || drop(black_box(engine.evaluate(&deny)))));
}

fn phases(dir: &Path, tools: usize) {
    let path = dir.join("phases.toml");
    std::fs::write(&path, config(tools)).unwrap();
    let t = Instant::now();
    let doc = airlock_policy::load::load_file(&path, &options(dir)).unwrap();
    println!("read + TOML  {:?}", t.elapsed());
    let t = Instant::now();
    let (model, _) = airlock_policy::model::build(&doc).unwrap();
    println!("model        {:?}", t.elapsed());
    let t = Instant::now();
    let compiled = airlock_policy::compile::compile(model, &doc.source, &doc.cedar, &Default::default()).unwrap();
    println!("compile      {:?} ({} policies)", t.elapsed(), compiled.policy_count());
    let t = Instant::now();
    let lints = airlock_policy::lint::lint(&compiled.model, &compiled, &doc.source);
    println!("lint         {:?} ({} findings)", t.elapsed(), lints.len());
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let arg = |name: &str| std::env::var(name).ok().map(|v| v.parse::<usize>().unwrap_or(1000));
    if let Some(spread) = arg("DECIDE_SPREAD") {
        // The 1,000-tool engine with requests over only `spread` tools: separates work from cache misses.
        let (engine, _) = load(&ws, 1000);
        let normalized: Vec<NormalizedRequest> =
            requests(spread).iter().map(|r| engine.normalize(r).unwrap()).collect();
        let (u50, u99) = measure(|i| drop(black_box(engine.evaluate(&normalized[i % normalized.len()]))), 20_000);
        println!("1000 tools, requests over {spread}: uncached p50 {} p99 {}", fmt_dur(u50), fmt_dur(u99));
        return;
    }
    if std::env::var_os("DECIDE_BREAKDOWN").is_some() {
        return breakdown(&ws);
    }
    if let Some(tools) = arg("DECIDE_PHASES") {
        return phases(&ws, tools);
    }
    if let Some(tools) = arg("DECIDE_LOOP") {
        let (engine, _) = load(&ws, tools);
        let normalized: Vec<NormalizedRequest> = requests(tools).iter().map(|r| engine.normalize(r).unwrap()).collect();
        for i in 0..400_000 {
            black_box(engine.evaluate(&normalized[i % normalized.len()]).allowed);
        }
        return;
    }

    println!(
        "| tools | policies | uncached p50 | uncached p99 | cached p50 | cached p99 | normalise p50 | \
         end-to-end cached p50 | cold load | reload, 1 tool changed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for tools in [10usize, 100, 1000] {
        let (engine, load_time) = load(&ws, tools);
        let raw = requests(tools);
        let normalized: Vec<NormalizedRequest> = raw.iter().map(|r| engine.normalize(r).unwrap()).collect();
        let (u50, u99) = measure(|i| drop(black_box(engine.evaluate(&normalized[i % normalized.len()]))), 20_000);
        for n in &normalized {
            engine.decide_normalized(n);
        }
        let (c50, c99) =
            measure(|i| drop(black_box(engine.decide_normalized(&normalized[i % normalized.len()]))), 200_000);
        let (n50, _) = measure(|i| drop(black_box(engine.normalize(&raw[i % raw.len()]))), 50_000);
        let (e50, _) = measure(|i| drop(black_box(engine.decide(&raw[i % raw.len()]))), 50_000);
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
