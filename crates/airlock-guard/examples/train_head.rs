//! Trains the classifier's head (`model/head.safetensors`). Run by `scripts/train-guard-head.sh`, which gathers the
//! training text; see there.
//!
//! ```text
//! train_head MODEL_DIR TRAIN.jsonl OUT.safetensors
//! ```
//!
//! TRAIN.jsonl: one `{"text": ..., "label": 0|1}` per line, train splits only. An injection is one example (its
//! first window: the examples are short); benign text gives every window, of the whole text and of each of its
//! lines, because benign pages are long and every window of them must stay quiet. The head (384 → 128 ReLU → 1) is trained with AdamW on binary cross-entropy,
//! from a fixed seed, in a fixed order: the same inputs give the same weights.

use std::collections::HashMap;

use airlock_guard::classifier::{DIM, Embedder, WINDOW};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

const HIDDEN: usize = 128;
const EPOCHS: usize = 40;
const BATCH: usize = 256;

/// splitmix64: a small deterministic generator for initial weights and shuffling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in -1..1.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Binary cross-entropy on logits, in the stable form `max(z, 0) - z·y + ln(1 + e^-|z|)` (through a sigmoid and a
/// log, saturated logits give NaN).
fn logistic_loss(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    (z.relu()? - (z * y)?)?.add(&soft)?.mean_all()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, train, out] = args.as_slice() else {
        return Err("usage: train_head MODEL_DIR TRAIN.jsonl OUT.safetensors".into());
    };
    let (embedder, _) = Embedder::load(std::path::Path::new(model))?;
    let mut xs: Vec<f32> = Vec::new();
    let mut ys: Vec<f32> = Vec::new();
    let mut counts = [0usize; 2];
    for line in std::fs::read_to_string(train)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let text = row["text"].as_str().ok_or("a row without text")?;
        let label = row["label"].as_u64().ok_or("a row without label")?;
        let (ids, _) = embedder.tokens(text);
        if ids.is_empty() {
            continue;
        }
        if label == 1 {
            xs.extend_from_slice(&embedder.embed(&ids[..ids.len().min(WINDOW)]));
            ys.push(1.0);
            counts[1] += 1;
        } else {
            // The whole text, and each of its lines alone when it has several: a line of code or a heading must
            // read as benign without its neighbours too.
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let parts = if lines.len() > 1 { std::iter::once(text).chain(lines).collect() } else { vec![text] };
            for part in parts {
                for (_, v) in embedder.windows(part) {
                    xs.extend_from_slice(&v);
                    ys.push(0.0);
                    counts[0] += 1;
                }
            }
        }
    }
    let n = ys.len();
    eprintln!("{n} examples: {} benign windows, {} injections", counts[0], counts[1]);

    let device = Device::Cpu;
    let mut rng = Rng(0x5eed_a1e1_0c4b_0001);
    let mut init = |rows: usize, cols: usize| -> candle_core::Result<Var> {
        // Uniform ±1/sqrt(fan-in), as PyTorch initialises dense layers.
        let bound = 1.0 / (cols as f32).sqrt();
        let data: Vec<f32> = (0..rows * cols).map(|_| rng.unit() * bound).collect();
        Var::from_tensor(&Tensor::from_vec(data, (rows, cols), &device)?)
    };
    let w1 = init(HIDDEN, DIM)?;
    let b1 = Var::zeros(HIDDEN, DType::F32, &device)?;
    let w2 = init(1, HIDDEN)?;
    let b2 = Var::zeros(1, DType::F32, &device)?;
    let params = ParamsAdamW { lr: 1e-3, weight_decay: 1e-4, ..Default::default() };
    let mut opt = AdamW::new(vec![w1.clone(), b1.clone(), w2.clone(), b2.clone()], params)?;

    let x_all = Tensor::from_vec(xs, (n, DIM), &device)?;
    let y_all = Tensor::from_vec(ys, (n, 1), &device)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut shuffle = Rng(0x5eed_a1e1_0c4b_0002);
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            order.swap(i, (shuffle.next() % (i as u64 + 1)) as usize);
        }
        let mut total = 0f32;
        for chunk in order.chunks(BATCH) {
            let idx = Tensor::new(chunk, &device)?;
            let x = x_all.index_select(&idx, 0)?;
            let y = y_all.index_select(&idx, 0)?;
            let h = x.matmul(&w1.t()?)?.broadcast_add(&b1)?.relu()?;
            let logits = h.matmul(&w2.t()?)?.broadcast_add(&b2)?;
            let loss = logistic_loss(&logits, &y)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()? * chunk.len() as f32;
        }
        if epoch % 10 == 9 || epoch == EPOCHS - 1 {
            eprintln!("epoch {}: loss {:.4}", epoch + 1, total / n as f32);
        }
    }
    let tensors: HashMap<String, Tensor> = HashMap::from([
        ("w1".to_string(), w1.as_tensor().clone()),
        ("b1".to_string(), b1.as_tensor().clone()),
        ("w2".to_string(), w2.as_tensor().flatten_all()?),
        ("b2".to_string(), b2.as_tensor().clone()),
    ]);
    candle_core::safetensors::save(&tensors, out)?;
    eprintln!("wrote {out}");
    Ok(())
}
