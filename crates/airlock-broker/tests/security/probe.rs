use crate::common::*;

#[test]
fn probe() {
    let h = Harness::open(|cfg| cfg.ssrf.allow_cidrs.clear());
    let p = h.upstream.addr.port();
    for host in ["0X7F.1", "127.0.0.1.1", "127.0.0.01", "127.0.0.08", "0x7f.0x0.0x0.0x1", "0x000000007f.1", "0177.0000.0000.0001", "2130706433.",
        "1.0.0.127.in-addr.arpa", "[::ffff:0x7f.1]", "[0000::1]", "[::0:1]", "0x0", "00", "0.0", "[::0]", "[0::]", "127.255.255.254", "0177.1",
        "１２７.０.０.１", "ｌｏｃａｌｈｏｓｔ", "127。0。0。1", "127.0.0.1%2e", "4294967295", "4294967296", "[::FFFF:7F00:1]", "localhost.localdomain", "ip6-localhost"] {
        let url = format!("http://{host}:{p}/");
        let r = h.curl(&["-v", "--path-as-is", &url]);
        let line = r.stderr.lines().find(|l| l.starts_with("> GET")).unwrap_or("").to_string();
        let raw = h.raw_get(&url, "x");
        println!("{host:30} curl {} [{}] {} {} | raw {} {}", r.status, line, r.body.trim(), r.stderr.lines().filter(|l| l.starts_with("curl")).collect::<String>(), raw.status, raw.body.trim());
    }
    println!("count {}", h.upstream.count());
}
