//! Attack: a tool hands the agent what it must not see, through its output: its own surrogate, a GitHub token it
//! found in a workspace file (printed whole, and printed in two writes), a payment card number on stderr. What
//! reaches the caller is masked, the run record lists the redactions (rule, stream, line, fingerprint; never the
//! value), and the audit log holds a Detection Finding for each. An IP address, not masked by default, passes.

use crate::common::sandbox::*;

/// A GitHub classic token with a valid checksum (made up).
const TOKEN: &str = "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";

#[test]
fn sandbox_print_secrets_to_the_agent() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "sleep"])));
    require_programs(&["bash", "cat", "sleep"]);
    let found = sb.in_ws("found.env");
    std::fs::write(&found, format!("GH={TOKEN}\n")).unwrap();
    let (head, tail) = TOKEN.split_at(17);
    let r = sb.bash(&fill(
        r#"
echo "surrogate=$SANDBOX_TOKEN"
cat @FOUND@
printf 'split %s' @HEAD@; printf '%s end\n' @TAIL@
echo 'card 4111 1111 1111 1111' >&2
echo 'host 10.1.2.3'
"#,
        &[("FOUND", &p(&found)), ("HEAD", head), ("TAIL", tail)],
    ));
    r.exited(0);
    let out = r.all_output();
    assert!(!out.contains(TOKEN), "the token reached the caller\n{}", r.describe());
    assert!(!out.contains("4111 1111 1111 1111"), "the card number reached the caller\n{}", r.describe());
    assert!(r.stdout().contains("surrogate=[REDACTED:known-value]"), "{}", r.describe());
    assert!(r.stdout().contains("GH=[REDACTED:github-pat-classic]"), "{}", r.describe());
    assert!(r.stdout().contains("split [REDACTED:github-pat-classic] end"), "{}", r.describe());
    assert!(r.stderr().contains("card [REDACTED:"), "{}", r.describe());
    assert!(r.stdout().contains("host 10.1.2.3"), "IP addresses are not masked by default\n{}", r.describe());

    let redactions = &r.record["redactions"];
    assert_eq!(redactions["count"], 4, "{redactions}");
    let findings = redactions["findings"].as_array().expect("findings");
    assert!(findings.iter().any(|f| f["rule"] == "known-value" && f["stream"] == "stdout"), "{redactions}");
    assert!(findings.iter().any(|f| f["family"] == "credit-card" && f["stream"] == "stderr"), "{redactions}");
    assert!(!redactions.to_string().contains(TOKEN));

    let audit = sb.al.call(["--json", "audit", "query", "--type", "finding"]).run();
    let run_id = r.record["run"].as_str().expect("run id");
    let ours = audit.out().lines().filter(|l| l.contains(run_id) && l.contains("redaction")).count();
    assert_eq!(ours, 4, "one Detection Finding per masked value:\n{}", audit.out());
    assert!(!audit.out().contains(TOKEN));
}
