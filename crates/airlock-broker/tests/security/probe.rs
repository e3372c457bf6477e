use crate::common::*;
use std::time::Duration;

#[test]
fn probe() {
    let h = Harness::open(|cfg| {
        cfg.resolver = std::sync::Arc::new(pinned_resolver(&[
            ("nip.example.com", &["169.254.169.254"]),
            ("127.0.0.1.nip.io", &["127.0.0.1"]),
        ]));
    });
    let p = h.upstream.addr.port();
    for host in [
        "2852039166",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:a9fe]",
        "169.254.170.2",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "192.0.0.192",
        "metadata.google.internal",
        "metadata.google.internal.",
        "METADATA.GOOGLE.INTERNAL",
        "metadata",
        "instance-data",
        "nip.example.com",
        "10.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
        "[::127.0.0.1]",
        "localhost",
        "LOCALHOST",
        "sub.localhost",
        "localhost.",
        "127.0.0.1.nip.io",
        "api.example.com@127.0.0.2",
        "127.0.0.2:{p}#@api.example.com",
    ] {
        let url = format!("http://{host}:{p}/").replace("{p}", &p.to_string());
        let r = h.curl(&["-v", "--path-as-is", &url]);
        let line = r.stderr.lines().find(|l| l.starts_with("> GET")).unwrap_or("").to_string();
        let raw = h.raw_get(&url, "x");
        println!(
            "{host:30} curl {} [{}] body={} err={} | raw {} {}",
            r.status,
            line,
            r.body.trim(),
            r.stderr.lines().last().unwrap_or(""),
            raw.status,
            raw.body.trim()
        );
    }
    for t in ["127.0.0.2:443", "[::1]:443", "169.254.169.254:443", "localhost:443", "metadata.google.internal:443"] {
        let url = format!("https://{t}/");
        let r = h.curl(&["-v", &url]);
        println!(
            "CONNECT {t}: {} {:?}",
            r.status,
            r.stderr
                .lines()
                .filter(|l| l.contains("CONNECT") || l.contains("403") || l.starts_with("curl"))
                .collect::<Vec<_>>()
        );
    }
    let raw = h.raw(
        format!("GET http://api.example.com:{p}\\@127.0.0.2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    println!("backslash: {raw:?}");
    let dns = DnsServer::start();
    dns.set("one.test.example", &["127.0.0.2"]);
    dns.set("mixed.example.com", &["127.0.0.3", "10.0.0.7"]);
    dns.set_rounds("flip.example.com", &[&["127.0.0.3"], &["127.0.0.1"]]);
    let h2 = Harness::open(|cfg| {
        cfg.resolver = std::sync::Arc::new(dns.resolver(Duration::from_secs(1)));
        cfg.ssrf.allow_cidrs = vec![cidr("127.0.0.3/32")];
    });
    for host in [
        "one.test.example",
        "mixed.example.com",
        "flip.example.com",
        "flip.example.com",
        "flip.example.com",
        "nx.example.com",
    ] {
        let t = std::time::Instant::now();
        let r = h2.curl(&[&format!("http://{host}:{p}/")]);
        println!("{host}: {} {} {:?}", r.status, r.body.trim(), t.elapsed());
    }
    println!("{:?}", dns.queries.lock().unwrap());
    let silent = DnsServer::silent();
    let h3 = Harness::open(|cfg| {
        cfg.resolver = std::sync::Arc::new(silent.resolver(Duration::from_secs(1)));
    });
    let t = std::time::Instant::now();
    let r = h3.curl(&[&format!("http://quiet.example.com:{p}/")]);
    println!("silent: {} {} {:?}", r.status, r.body.trim(), t.elapsed());
    println!("count {}", h.upstream.count());
    println!("v6 bind {:?}", std::net::TcpListener::bind("[::1]:0").map(|l| l.local_addr()));
}
