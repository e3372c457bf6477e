//! The attacker replaces the classifier's model files (weights or tokenizer) with ones that never fire, so that the
//! guard quietly loses a layer.

use airlock_guard::classifier::{Classifier, ClassifierError, MODEL_FILES};

#[test]
fn swap_the_classifier_model() {
    let Some(dir) = crate::common_model::model_dir() else { return };
    for (target, _) in MODEL_FILES {
        let copy = tempfile::tempdir().unwrap();
        for (name, _) in MODEL_FILES {
            std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
        }
        // One byte changed is enough: the digest is of the whole file.
        let path = copy.path().join(target);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        let err = Classifier::load(copy.path()).expect_err("a tampered model must not load");
        assert!(matches!(&err, ClassifierError::Digest { file, .. } if file == &path), "{err}");
        assert!(err.to_string().contains("refusing"), "{err}");
    }
}
