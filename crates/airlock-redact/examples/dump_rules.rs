// TEMPORARY helper (not committed): prints what each rule finds in its own examples.
use airlock_redact::{PiiSelection, RuleSet, ScanOptions, Scanner};
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut set = RuleSet::empty();
        if let Err(e) = set.add_toml(f, &text) { println!("LOAD ERROR {e}"); continue; }
        println!("{f}: {} rules", set.len());
        for rule in set.rules() {
            let mut one = RuleSet::empty();
            one.add_specs("t", vec![rule.spec().clone()]).unwrap();
            let sc = Scanner::new(one, &ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([1; 32]) }, None).unwrap();
            for (i, p) in rule.spec().positive.iter().enumerate() {
                let found = sc.scan(p.as_bytes());
                let secs: Vec<String> = found.iter().map(|x| {
                    let s = String::from_utf8_lossy(&p.as_bytes()[x.start as usize..x.end as usize]).to_string();
                    if s.len() > 70 { format!("{}..{} ({}b)", &s[..30].replace('\n', "\\n"), &s[s.len()-25..].replace('\n', "\\n"), s.len()) } else { s }
                }).collect();
                println!("  {:<40} +{i} {}", rule.id(), if secs.is_empty() { "!!! NOT FOUND".to_string() } else { secs.join(" | ") });
            }
            for (i, n) in rule.spec().negative.iter().enumerate() {
                let found = sc.scan(n.as_bytes());
                if !found.is_empty() {
                    let s = String::from_utf8_lossy(&n.as_bytes()[found[0].start as usize..found[0].end as usize]).to_string();
                    println!("  {:<40} -{i} !!! FOUND {s}", rule.id());
                }
            }
        }
    }
}
