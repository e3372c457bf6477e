//! The API's HTTP plumbing: problem documents (RFC 9457), bounded JSON bodies, bearer tokens.
//!
//! Every error leaves as `application/problem+json` with a stable `type` URI per kind of problem, so clients branch on
//! the type rather than on prose. Bodies are read up to a limit and no further: a client that sends more gets 413
//! before the rest is read.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;

/// Why a streamed body stopped short (a capability's upstream went away): hyper then cuts the connection instead of
/// ending the body cleanly, so the client cannot take a truncated answer for a whole one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A reply's body: whole (most answers) or streamed (a run's output, a capability's answer).
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;
pub type Reply = Response<Body>;

/// A body fed from a channel, one chunk per message, ending when every sender is gone.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// A problem, as RFC 9457 describes it. `kind` becomes the `type` URI's last segment.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Seconds until a retry may succeed (429, 503).
    pub retry_after: Option<u64>,
}

/// Where each problem type is documented.
pub const PROBLEM_BASE: &str = "https://airlock.invalid/problems/";

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, kind, title, detail: detail.into(), retry_after: None }
    }
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "The request is malformed", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "A valid agent token is needed", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "This agent may not do that", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "No such resource", detail)
    }
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The daemon failed", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The daemon cannot serve this now", detail)
    }
    /// A secret store (OpenBao, the Secret Service) is down or sealed. The caller is asked to wait long enough not
    /// to hammer a store that is restarting, and briefly enough to notice soon that it is back.
    pub fn store_unavailable(detail: impl Into<String>) -> Problem {
        Problem { retry_after: Some(5), ..Problem::unavailable(detail) }
    }

    pub fn reply(&self, instance: &str) -> Reply {
        let body = serde_json::json!({
            "type": format!("{PROBLEM_BASE}{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": instance,
        });
        let mut r = Response::new(full_body(Bytes::from(body.to_string())));
        *r.status_mut() = self.status;
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"airlock\""));
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

impl From<crate::CliError> for Problem {
    fn from(e: crate::CliError) -> Problem {
        match e.code {
            2 | 8 => Problem::bad_request(e.message),
            3 => Problem::unavailable(e.message),
            4 => Problem::not_found(e.message),
            5 => Problem::new(StatusCode::CONFLICT, "conflict", "The resource already exists", e.message),
            9 => Problem::forbidden(e.message),
            crate::backends::EXIT_UNAVAILABLE => Problem::store_unavailable(e.message),
            _ => Problem::internal(e.message),
        }
    }
}

/// A body of these bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A JSON reply with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut r = Response::new(full_body(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A reply of `content_type` text.
pub fn text(content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(full_body(body));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A streamed reply of `content_type`, fed through `rx`.
pub fn stream(content_type: &'static str, rx: tokio::sync::mpsc::Receiver<Bytes>) -> Reply {
    let mut r = Response::new(ChannelBody(rx).map_err(|never| match never {}).boxed());
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The request's body as `T`, from JSON of at most `limit` bytes. A body over the limit is 413 (read no further);
/// a body that is not `application/json` is 415; JSON that does not fit `T` is 400 naming the problem.
pub async fn read_json<T: DeserializeOwned>(req: Request<Incoming>, limit: usize) -> Result<T, Problem> {
    let bytes = read_json_bytes(req, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| Problem::bad_request(format!("the body does not fit: {e}")))
}

/// The request's body, unparsed, under the rules of [`read_json`]: `application/json`, at most `limit` bytes.
pub async fn read_json_bytes(req: Request<Incoming>, limit: usize) -> Result<Bytes, Problem> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            "send Content-Type: application/json",
        ));
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The body is too large",
            format!("request bodies are limited to {limit} bytes"),
        )
    };
    if req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    let bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err(Problem::bad_request(format!("cannot read the body: {e}"))),
    };
    Ok(bytes)
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// A JSON number that is a whole number in range, written either way (`3` or `3.0`): JSON Schema's `integer`
/// accepts both, so the API does too.
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    to_whole(&serde_json::Number::deserialize(d)?)
}

/// [`whole`] for an optional field (absent or `null`: none).
pub fn whole_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    Option::<serde_json::Number>::deserialize(d)?.as_ref().map(to_whole).transpose()
}

fn to_whole<E: serde::de::Error, T: TryFrom<u64>>(n: &serde_json::Number) -> Result<T, E> {
    let v = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => Some(v),
        // `u64::MAX as f64` is 2^64, one past the largest u64.
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    v.and_then(|v| T::try_from(v).ok()).ok_or_else(|| E::custom(format!("{n} is not a whole number in range")))
}
