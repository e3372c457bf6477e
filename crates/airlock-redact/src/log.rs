//! Redacting Airlock's own logs.
//!
//! # Why a writer and not a filtering layer
//! A `tracing` layer sees an event's fields, but it cannot change what the other layers print, and a secret can
//! reach a log through any field, a `Debug` impl of a dependency's type or an error message. So the redaction
//! sits where text is final: [`fmt_layer`] is a `tracing_subscriber::fmt` layer whose writer collects each
//! formatted event and passes it through a [`Redactor`] before it reaches the real writer. Every event is masked
//! as a whole (no carry-over needed: the fmt layer writes one event per writer).

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use zeroize::Zeroizing;

use crate::stream::Redactor;

/// A `MakeWriter` that masks what the wrapped one would have written.
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Redactor) -> RedactingMakeWriter<M> {
        RedactingMakeWriter { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { inner: self.inner.make_writer(), redactor: self.redactor.clone(), buf: Zeroizing::default() }
    }
}

/// Buffers one event; masks and writes it on flush or drop.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let (masked, _) = self.redactor.redact(&self.buf);
            self.buf.clear();
            self.inner.write_all(&masked)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A fmt layer (compact format, no ANSI colours) writing through `redactor` to `make_writer`.
pub fn fmt_layer<S, M>(
    redactor: Redactor,
    make_writer: M,
) -> tracing_subscriber::fmt::Layer<
    S,
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Compact>,
    RedactingMakeWriter<M>,
>
where
    S: tracing_core::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    M: for<'w> MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .compact()
        .with_ansi(false)
        .with_writer(RedactingMakeWriter::new(make_writer, redactor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaskStyle, Scanner};
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(d);
            Ok(d.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_logged_token_is_masked_in_the_written_log() {
        let sink = Sink::default();
        let redactor = Redactor::new(Scanner::builtin(), MaskStyle::Label);
        let writer_sink = sink.clone();
        let subscriber = tracing_subscriber::registry().with(fmt_layer(redactor, move || writer_sink.clone()));
        let token = "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";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(header = %format!("token {token}"), "upstream said no");
        });
        let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(written.contains("upstream said no"), "{written}");
        assert!(written.contains("[REDACTED:github-pat-classic]"), "{written}");
        assert!(!written.contains(token), "{written}");
    }
}
