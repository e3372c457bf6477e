//! Attack: store a value crafted so that no same-shape surrogate differs from it (all separators, a provider
//! prefix followed only by separators, or a piece of the opaque surrogate prefix), hoping surrogate generation
//! spins forever and stalls every run that uses the secret.

use std::sync::mpsc;
use std::time::Duration;

use airlock_vault::surrogate::generate;

#[test]
fn surrogate_generation_stalled_by_degenerate_values_terminates() {
    let values: Vec<Vec<u8>> = vec![
        b"--------".to_vec(),
        b"________________________________________".to_vec(),
        [b"ghp_".to_vec(), vec![b'_'; 36]].concat(),
        [b"sk-".to_vec(), vec![b'-'; 60]].concat(),
        b"airlock-surrogate".to_vec(),
        b"-surrogate-".to_vec(),
        b"ate-".to_vec(),
    ];
    let (tx, rx) = mpsc::channel();
    let worker = values.clone();
    std::thread::spawn(move || {
        for v in worker {
            tx.send((v.clone(), generate(&v))).unwrap();
        }
    });
    for _ in 0..values.len() {
        let (v, s) = rx.recv_timeout(Duration::from_secs(10)).expect("surrogate generation hung");
        if v.len() >= 8 {
            assert!(!s.as_bytes().windows(v.len()).any(|w| w == &v[..]), "{s} contains the value");
        }
        assert_ne!(s.as_bytes(), &v[..]);
    }
}
