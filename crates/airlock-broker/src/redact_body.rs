//! A response body masked as it streams: what a capability call's caller receives when the broker has a redactor.
//!
//! Why stream: a capability response can be large and slow (a model's streamed answer), and the caller should see
//! it as it comes. Each data frame goes through a [`StreamRedactor`], which emits what is safe to show now and holds
//! back a bounded tail, so a secret split across two frames (or two TCP reads) is still masked whole. The end of the
//! body flushes the tail, masked.
//!
//! Why fail closed on errors: held-back bytes are exactly the ones that might be the start of a secret. When the
//! upstream body fails, the error ends the stream and the held bytes are dropped (the redactor wipes them), never
//! emitted unscanned.
//!
//! What was found is tallied as it goes ([`Tally`]: rule ids, families, counts, fingerprints, never values, bounded
//! however many findings a hostile body produces) and handed to a callback once, when the body ends, fails or is
//! dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_redact::known::Source;
use airlock_redact::{Finding, Fingerprint, StreamRedactor};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::{Value, json};

use crate::upstream::{Body, BoxError};

/// Distinct fingerprints kept per body (the count stays exact).
pub const MAX_FINGERPRINTS: usize = 64;

/// How a redacted body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The upstream body ended and the held tail was flushed (masked).
    Complete,
    /// The upstream body failed; the held tail was dropped.
    Error,
    /// Nobody read to the end (the caller went away, or a later stage stopped the body).
    Abandoned,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::Error => "error",
            Ending::Abandoned => "abandoned",
        }
    }
}

/// Per rule: its family, category and how often it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub family: Arc<str>,
    pub category: &'static str,
    pub count: u64,
}

/// What redaction found in one body. Names and keyed hashes only, never a value; bounded in size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Findings masked.
    pub count: u64,
    /// By rule id (`known-value` for vault secrets, surrogates and canaries).
    pub rules: BTreeMap<Arc<str>, RuleCount>,
    /// Distinct fingerprints, in the order first seen, at most [`MAX_FINGERPRINTS`].
    pub fingerprints: Vec<Fingerprint>,
    /// Findings whose fingerprint was not kept (the list was full).
    pub fingerprints_dropped: u64,
    /// Known values found: (kind, id, encoding).
    pub known: BTreeSet<(&'static str, String, &'static str)>,
}

impl Tally {
    pub fn add(&mut self, findings: &[Finding]) {
        for f in findings {
            self.count += 1;
            self.rules
                .entry(Arc::clone(&f.rule))
                .or_insert_with(|| RuleCount { family: Arc::clone(&f.family), category: f.category, count: 0 })
                .count += 1;
            if !self.fingerprints.contains(&f.fingerprint) {
                if self.fingerprints.len() < MAX_FINGERPRINTS {
                    self.fingerprints.push(f.fingerprint);
                } else {
                    self.fingerprints_dropped += 1;
                }
            }
            if let Some((source, encoding)) = &f.known {
                let kind = match source {
                    Source::Secret(_) => "secret",
                    Source::Canary(_) => "canary",
                    Source::Surrogate(_) => "surrogate",
                };
                self.known.insert((kind, source.id().to_string(), encoding.as_str()));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether a value Airlock knows (a vault secret, surrogate or canary) was among the findings.
    pub fn has_known(&self) -> bool {
        !self.known.is_empty()
    }

    /// Rule ids, in order.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules.keys().map(|r| &**r).collect()
    }

    /// For the audit record.
    pub fn to_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(id, r)| json!({"rule": &**id, "family": &*r.family, "category": r.category, "count": r.count}))
            .collect();
        let families: BTreeSet<&str> = self.rules.values().map(|r| &*r.family).collect();
        let known: Vec<Value> =
            self.known.iter().map(|(kind, id, enc)| json!({"kind": kind, "id": id, "encoding": enc})).collect();
        let mut v = json!({
            "count": self.count,
            "rules": rules,
            "families": families,
            "fingerprints": self.fingerprints.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        if self.fingerprints_dropped > 0 {
            v["fingerprints_dropped"] = json!(self.fingerprints_dropped);
        }
        if !known.is_empty() {
            v["known"] = json!(known);
        }
        v
    }
}

/// Called once when a body ends, fails or is dropped, with everything found in it.
pub type OnEnd = Box<dyn FnOnce(Tally, Ending) + Send + Sync>;

/// A body whose data frames pass through a [`StreamRedactor`]. See the module documentation.
pub struct RedactedBody {
    inner: Body,
    stream: StreamRedactor,
    tally: Tally,
    /// The inner body has ended (or failed): nothing more is read from it.
    done: bool,
    /// Trailers that arrived while bytes were held: sent after the flushed tail.
    trailers: Option<Frame<Bytes>>,
    on_end: Option<OnEnd>,
}

impl std::fmt::Debug for RedactedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactedBody").field("stream", &self.stream).field("done", &self.done).finish_non_exhaustive()
    }
}

impl RedactedBody {
    /// The stream scans every frame as it comes (no batching of small frames): a body has no "quiet" moment at
    /// which held bytes could be released, so holding more than one window would delay streamed responses.
    pub fn new(inner: Body, stream: StreamRedactor) -> RedactedBody {
        let stream = stream.with_batch(1);
        RedactedBody { inner, stream, tally: Tally::default(), done: false, trailers: None, on_end: None }
    }

    /// Also calls `f` once with what was found, when the body ends, fails or is dropped.
    pub fn on_end(mut self, f: OnEnd) -> RedactedBody {
        self.on_end = Some(f);
        self
    }

    fn end(&mut self, how: Ending) {
        if let Some(f) = self.on_end.take() {
            f(std::mem::take(&mut self.tally), how);
        }
    }

    /// The inner body ended: flushes the held tail, masked. `None` when nothing was held.
    fn flush(&mut self) -> Option<Bytes> {
        self.done = true;
        let mut out = Vec::new();
        let found = self.stream.finish(&mut out);
        self.tally.add(&found);
        self.end(Ending::Complete);
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl Drop for RedactedBody {
    fn drop(&mut self) {
        self.end(Ending::Abandoned);
    }
}

impl HttpBody for RedactedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(t) = this.trailers.take() {
                return Poll::Ready(Some(Ok(t)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(this.flush().map(|b| Ok(Frame::data(b)))),
                Poll::Ready(Some(Err(e))) => {
                    // The held tail is never shown: it may be the first part of a secret. The redactor wipes it.
                    this.done = true;
                    this.end(Ending::Error);
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let mut out = Vec::new();
                        let found = this.stream.push(&data, &mut out);
                        this.tally.add(&found);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    // Trailers end the body: the held tail goes first, the trailers after it.
                    Err(trailers) => match this.flush() {
                        Some(b) => {
                            this.trailers = Some(trailers);
                            return Poll::Ready(Some(Ok(Frame::data(b))));
                        }
                        None => return Poll::Ready(Some(Ok(trailers))),
                    },
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Masking changes the length: nothing is known until the end.
        if self.is_end_stream() { SizeHint::with_exact(0) } else { SizeHint::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use airlock_redact::known::LeakScanner;
    use airlock_redact::{MaskStyle, Redactor, RuleSet, ScanOptions, Scanner};
    use http_body_util::BodyExt;

    const RULES: &str = r#"
[[rule]]
id = "unit-token"
family = "unit"
description = "A token for these tests"
keywords = ["utok_"]
regex = '''\butok_[0-9A-Za-z]{20}\b'''
max_len = 32
positive = ["utok_Q3v9LmZ2x8Rt5Wp1Ks7H"]
negative = ["utok_short"]
"#;
    const TOKEN: &str = "utok_Q3v9LmZ2x8Rt5Wp1Ks7H";
    const KNOWN: &str = "known_VALUE_0123456789_zyxw";

    fn redactor() -> Redactor {
        let mut set = RuleSet::empty();
        set.add_toml("unit.toml", RULES).unwrap();
        let mut known = LeakScanner::builder();
        known.add(Source::Secret("default/KNOWN".into()), KNOWN.as_bytes());
        let known = Arc::new(known.build().unwrap());
        Redactor::new(Scanner::new(set, &ScanOptions::default(), Some(known)).unwrap(), MaskStyle::Label)
    }

    /// A body of ready frames.
    fn body_of(frames: Vec<Result<Frame<Bytes>, BoxError>>) -> Body {
        struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, BoxError>>);
        impl HttpBody for Frames {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                Poll::Ready(self.0.pop_front())
            }
        }
        Frames(frames.into()).boxed()
    }

    fn data(s: &str) -> Result<Frame<Bytes>, BoxError> {
        Ok(Frame::data(Bytes::copy_from_slice(s.as_bytes())))
    }

    type Ended = Arc<std::sync::Mutex<Option<(Tally, Ending)>>>;

    fn redacted(frames: Vec<Result<Frame<Bytes>, BoxError>>) -> (RedactedBody, Ended) {
        let ended: Ended = Default::default();
        let slot = Arc::clone(&ended);
        let body = RedactedBody::new(body_of(frames), redactor().stream())
            .on_end(Box::new(move |t, how| *slot.lock().unwrap() = Some((t, how))));
        (body, ended)
    }

    /// Every frame, in order: data as text, trailers as `<trailers>`, an error as `<error>`.
    async fn frames(mut body: RedactedBody) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = body.frame().await {
            match f {
                Ok(f) if f.is_data() => out.push(String::from_utf8(f.into_data().unwrap().to_vec()).unwrap()),
                Ok(_) => out.push("<trailers>".into()),
                Err(_) => out.push("<error>".into()),
            }
        }
        out
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_token_split_across_frames_is_masked_whole() {
        let (mid, end) = TOKEN.split_at(9);
        let (body, ended) =
            redacted(vec![data(&format!("{{\"t\":\"{mid}")), data(&format!("{end}\",\"k\":\"{KNOWN}\"}}"))]);
        let text = run(frames(body)).concat();
        assert_eq!(text, r#"{"t":"[REDACTED:unit-token]","k":"[REDACTED:known-value]"}"#);
        let (tally, how) = ended.lock().unwrap().take().expect("the end is reported");
        assert_eq!(how, Ending::Complete);
        assert_eq!(tally.count, 2);
        assert_eq!(tally.rule_ids(), vec!["known-value", "unit-token"]);
        assert_eq!(tally.fingerprints.len(), 2);
        assert!(tally.known.contains(&("secret", "default/KNOWN".to_string(), "raw")));
        let record = tally.to_json().to_string();
        assert!(!record.contains(KNOWN) && !record.contains(&TOKEN[5..]), "{record}");
    }

    #[test]
    fn an_error_ends_the_stream_without_the_held_tail() {
        let (mid, _) = TOKEN.split_at(9);
        let (body, ended) = redacted(vec![data(&format!("clean text, then {mid}")), Err("upstream broke".into())]);
        let got = run(frames(body));
        assert_eq!(got.last().map(String::as_str), Some("<error>"), "{got:?}");
        let shown = got.concat();
        assert!(!shown.contains("utok_"), "held-back bytes were shown: {shown:?}");
        assert_eq!(ended.lock().unwrap().as_ref().map(|(_, how)| *how), Some(Ending::Error));
    }

    #[test]
    fn trailers_follow_the_flushed_tail() {
        let mut trailers = hyper::HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().unwrap());
        let (body, _) = redacted(vec![data(&format!("a {TOKEN}")), Ok(Frame::trailers(trailers))]);
        let got = run(frames(body));
        assert_eq!(got.last().map(String::as_str), Some("<trailers>"), "{got:?}");
        assert_eq!(got[..got.len() - 1].concat(), "a [REDACTED:unit-token]");
    }

    #[test]
    fn a_body_dropped_early_still_reports_what_it_found() {
        // Longer than the redactor holds back, so the first frame comes out before the end.
        let filler = "clean text. ".repeat(40);
        let (mut body, ended) = redacted(vec![data(&format!("{TOKEN} {filler}")), data("x")]);
        run(async {
            let first = body.frame().await.unwrap().unwrap();
            assert!(!String::from_utf8_lossy(first.data_ref().unwrap()).contains(&TOKEN[5..]));
        });
        drop(body);
        let (tally, how) = ended.lock().unwrap().take().expect("reported on drop");
        assert_eq!((tally.count, how), (1, Ending::Abandoned));
    }

    #[test]
    fn fingerprints_are_bounded_and_the_count_exact() {
        let mut tally = Tally::default();
        let r = redactor();
        let text: String = (0..100).map(|i| format!("utok_Q3v9LmZ2x8Rt5Wp{i:03}xy ")).collect();
        let (_, found) = r.redact(text.as_bytes());
        tally.add(&found);
        assert_eq!(tally.count, 100);
        assert_eq!(tally.fingerprints.len(), MAX_FINGERPRINTS);
        assert_eq!(tally.fingerprints_dropped, 100 - MAX_FINGERPRINTS as u64);
    }
}
