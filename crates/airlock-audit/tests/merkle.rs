//! Tests for the RFC 9162 Merkle tree: published known-answer vectors, then exhaustive and sampled properties
//! checked against a direct transcription of the RFC's recursive definitions.

use airlock_audit::merkle::{
    Frontier, Hash, MAX_TREE_SIZE, MerkleError, TreeView, empty_root, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};

// ---------------------------------------------------------------------------------------------------------------
// Published vectors.
//
// Source: github.com/transparency-dev/merkle, testonly/constants.go (LeafInputs, NodeHashes, RootHashes,
// CompactTrees) and proof/verify_test.go (inclusionProofs, consistencyProofs). The same tree and values appear in
// google/certificate-transparency-go's merkle tests. In verify_test.go the inclusion vectors number leaves from 1
// (`leaf` is index + 1); below they are converted to 0-based indices.
// ---------------------------------------------------------------------------------------------------------------

fn h(s: &str) -> Hash {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

fn leaf_inputs() -> Vec<Vec<u8>> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|s| hex::decode(s).expect("hex"))
        .collect()
}

/// NodeHashes()[level][index].
fn node_hashes() -> Vec<Vec<Hash>> {
    vec![
        vec![
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
            h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
        ],
        vec![
            h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        ],
        vec![
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
        vec![h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
    ]
}

/// RootHashes(): index = tree size.
fn root_hashes() -> Vec<Hash> {
    vec![
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
        h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
        h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ]
}

fn published_leaves() -> Vec<Hash> {
    leaf_inputs().iter().map(|d| leaf_hash(d)).collect()
}

/// (index, size, proof) from verify_test.go's inclusionProofs, 0-based.
fn published_inclusion_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (2, 3, vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (old_size, new_size, proof) from verify_test.go's consistencyProofs.
fn published_consistency_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    assert_eq!(empty_root(), root_hashes()[0]);
    assert_eq!(Frontier::new().root(), root_hashes()[0]);
    let none = Frontier::new();
    assert_eq!(TreeView::new(&none, &[]).root_at(0), Ok(root_hashes()[0]));
}

#[test]
fn published_leaf_and_node_hashes() {
    let leaves = published_leaves();
    let nodes = node_hashes();
    assert_eq!(leaves, nodes[0]);
    // Each published interior node is the root of its own aligned run of leaves.
    let empty = Frontier::new();
    for (level, row) in nodes.iter().enumerate() {
        let width = 1usize << level;
        for (i, want) in row.iter().enumerate() {
            let run = &leaves[i * width..(i + 1) * width];
            assert_eq!(TreeView::new(&empty, run).root_at(width as u64).unwrap(), *want, "level {level} node {i}");
        }
    }
    // And node_hash combines children into parents.
    assert_eq!(node_hash(&nodes[0][0], &nodes[0][1]), nodes[1][0]);
    assert_eq!(node_hash(&nodes[2][0], &nodes[2][1]), nodes[3][0]);
}

#[test]
fn published_roots_for_every_size() {
    let leaves = published_leaves();
    let roots = root_hashes();
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &leaves);
    let mut frontier = Frontier::new();
    for (size, want) in roots.iter().enumerate() {
        assert_eq!(frontier.size(), size as u64);
        assert_eq!(frontier.root(), *want, "frontier root at size {size}");
        assert_eq!(view.root_at(size as u64).unwrap(), *want, "view root at size {size}");
        if let Some(leaf) = leaves.get(size) {
            frontier.push(*leaf);
        }
    }
}

#[test]
fn published_compact_trees() {
    // CompactTrees(): the frontier nodes at each size.
    let n = node_hashes();
    let want: Vec<Vec<Hash>> = vec![
        vec![],
        vec![n[0][0]],
        vec![n[1][0]],
        vec![n[1][0], n[0][2]],
        vec![n[2][0]],
        vec![n[2][0], n[0][4]],
        vec![n[2][0], n[1][2]],
        vec![n[2][0], n[1][2], n[0][6]],
        vec![n[3][0]],
    ];
    let mut frontier = Frontier::new();
    for (size, nodes) in want.iter().enumerate() {
        assert_eq!(frontier.nodes(), nodes.as_slice(), "size {size}");
        assert_eq!(Frontier::from_parts(size as u64, nodes.clone()).unwrap(), frontier);
        if size < 8 {
            frontier.push(published_leaves()[size]);
        }
    }
}

#[test]
fn published_inclusion_proofs_are_produced_and_verify() {
    let leaves = published_leaves();
    let roots = root_hashes();
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &leaves);
    for (index, size, proof) in published_inclusion_proofs() {
        assert_eq!(view.inclusion_proof(index, size).unwrap(), proof, "PATH({index}, {size})");
        let leaf = leaves[index as usize];
        let root = roots[size as usize];
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        for (what, probe) in inclusion_probes(&leaf, index, size, &proof, &root) {
            assert!(probe.is_err(), "PATH({index}, {size}) verified with {what}");
        }
    }
}

#[test]
fn published_consistency_proofs_are_produced_and_verify() {
    let leaves = published_leaves();
    let roots = root_hashes();
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &leaves);
    for (old, new, proof) in published_consistency_proofs() {
        assert_eq!(view.consistency_proof(old, new).unwrap(), proof, "PROOF({old}, {new})");
        let (r1, r2) = (roots[old as usize], roots[new as usize]);
        assert_eq!(verify_consistency(old, new, &r1, &r2, &proof), Ok(()));
        if old < new {
            for (what, probe) in consistency_probes(old, new, &r1, &r2, &proof) {
                assert!(probe.is_err(), "PROOF({old}, {new}) verified with {what}");
            }
        }
    }
}

/// The corruptions transparency-dev/merkle's verify_test.go applies to inclusion proofs (corruptInclusionProof),
/// each paired with the result of verifying it. Every one must fail.
fn inclusion_probes(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Vec<(String, Result<(), MerkleError>)> {
    let some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let mut out = vec![
        ("index - 1".to_string(), verify_inclusion(leaf, index.wrapping_sub(1), size, proof, root)),
        ("index + 1".to_string(), verify_inclusion(leaf, index + 1, size, proof, root)),
        ("index ^ 2".to_string(), verify_inclusion(leaf, index ^ 2, size, proof, root)),
        ("size * 2".to_string(), verify_inclusion(leaf, index, size * 2, proof, root)),
        ("size / 2".to_string(), verify_inclusion(leaf, index, size / 2, proof, root)),
        ("wrong leaf".to_string(), verify_inclusion(&leaf_hash(b"WrongLeaf"), index, size, proof, root)),
        ("empty root".to_string(), verify_inclusion(leaf, index, size, proof, &empty_root())),
        ("random root".to_string(), verify_inclusion(leaf, index, size, proof, &some_hash)),
        ("trailing root".to_string(), verify_inclusion(leaf, index, size, &[proof, &[*root]].concat(), root)),
        ("preceding root".to_string(), verify_inclusion(leaf, index, size, &[&[*root], proof].concat(), root)),
    ];
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i][0] ^= 8;
        out.push((format!("proof[{i}] bit 3 flipped"), verify_inclusion(leaf, index, size, &bad, root)));
    }
    if let Some((_, head)) = proof.split_last() {
        out.push(("removed component".to_string(), verify_inclusion(leaf, index, size, head, root)));
    }
    if proof.len() > 1 {
        let bad = [&[proof[0], some_hash], &proof[1..]].concat();
        out.push(("inserted component".to_string(), verify_inclusion(leaf, index, size, &bad, root)));
    }
    out
}

/// The corruptions of corruptConsistencyProof in the same file. Every one must fail.
fn consistency_probes(
    old: u64,
    new: u64,
    r1: &Hash,
    r2: &Hash,
    proof: &[Hash],
) -> Vec<(String, Result<(), MerkleError>)> {
    let wrong = leaf_hash(b"WrongRoot");
    let mut out = vec![
        ("old - 1".to_string(), verify_consistency(old - 1, new, r1, r2, proof)),
        ("old + 1".to_string(), verify_consistency(old + 1, new, r1, r2, proof)),
        ("old ^ 2".to_string(), verify_consistency(old ^ 2, new, r1, r2, proof)),
        ("new * 2".to_string(), verify_consistency(old, new * 2, r1, r2, proof)),
        ("new / 2".to_string(), verify_consistency(old, new / 2, r1, r2, proof)),
        ("wrong old root".to_string(), verify_consistency(old, new, &wrong, r2, proof)),
        ("wrong new root".to_string(), verify_consistency(old, new, r1, &wrong, proof)),
        ("swapped roots".to_string(), verify_consistency(old, new, r2, r1, proof)),
        ("empty proof".to_string(), verify_consistency(old, new, r1, r2, &[])),
        ("trailing old root".to_string(), verify_consistency(old, new, r1, r2, &[proof, &[*r1]].concat())),
        ("trailing new root".to_string(), verify_consistency(old, new, r1, r2, &[proof, &[*r2]].concat())),
        ("preceding old root".to_string(), verify_consistency(old, new, r1, r2, &[&[*r1], proof].concat())),
        ("preceding new root".to_string(), verify_consistency(old, new, r1, r2, &[&[*r2], proof].concat())),
        ("preceding proof[0]".to_string(), verify_consistency(old, new, r1, r2, &[&[proof[0]], proof].concat())),
    ];
    if let Some((_, head)) = proof.split_last() {
        out.push(("truncated".to_string(), verify_consistency(old, new, r1, r2, head)));
    }
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i][0] ^= 16;
        out.push((format!("proof[{i}] bit 4 flipped"), verify_consistency(old, new, r1, r2, &bad)));
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// A reference implementation: RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 transcribed literally (slow, recursive). The
// library must agree with it everywhere.
// ---------------------------------------------------------------------------------------------------------------

fn k_for(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_for(n);
            node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_for(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = k_for(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

/// Distinct leaf hashes for tests.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// A small deterministic generator (xorshift64*), so "random" sizes are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn frontier_matches_reference_for_every_prefix() {
    let all = leaves(300);
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &all);
    let mut frontier = Frontier::new();
    for size in 0..=all.len() {
        assert_eq!(frontier.size(), size as u64);
        assert_eq!(frontier.nodes().len(), size.count_ones() as usize);
        let root = frontier.root();
        assert_eq!(root, ref_mth(&all[..size]), "size {size}");
        assert_eq!(view.root_at(size as u64).unwrap(), root, "size {size}");
        // Each frontier node is the MTH of its aligned range, largest first.
        let mut start = 0usize;
        for (node, bit) in frontier.nodes().iter().zip((0..64).rev().filter(|b| size & (1 << b) != 0)) {
            assert_eq!(*node, ref_mth(&all[start..start + (1 << bit)]), "size {size}, node at {start}");
            start += 1 << bit;
        }
        // Rebuilding from parts gives the same frontier.
        assert_eq!(Frontier::from_parts(size as u64, frontier.nodes().to_vec()).unwrap(), frontier);
        if size < all.len() {
            frontier.push(all[size]);
        }
    }
}

#[test]
fn every_inclusion_proof_up_to_70_matches_reference_verifies_and_resists_tampering() {
    let all = leaves(72);
    let roots: Vec<Hash> = (0..=all.len()).map(|n| ref_mth(&all[..n])).collect();
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &all);
    for size in 1..=70u64 {
        let d = &all[..size as usize];
        let root = roots[size as usize];
        for index in 0..size {
            let leaf = all[index as usize];
            let proof = view.inclusion_proof(index, size).unwrap();
            assert_eq!(proof, ref_path(index as usize, d), "PATH({index}, {size})");
            assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()), "PATH({index}, {size})");

            // Any changed byte of any proof hash fails.
            for i in 0..proof.len() {
                for byte in 0..32 {
                    let mut bad = proof.clone();
                    bad[i][byte] ^= 0x01;
                    assert!(
                        verify_inclusion(&leaf, index, size, &bad, &root).is_err(),
                        "({index}, {size}) [{i}][{byte}]"
                    );
                }
            }
            // Any other index fails.
            for other in (0..size + 2).filter(|&o| o != index) {
                assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err(), "({index}, {size}) as {other}");
            }
            // Any other size fails, against that size's true root.
            for other in (1..=size + 3).filter(|&o| o != size && o <= all.len() as u64) {
                assert!(
                    verify_inclusion(&leaf, index, other, &proof, &roots[other as usize]).is_err(),
                    "({index}, {size}) at size {other}"
                );
            }
            // Any other root fails: other sizes' roots, and the root with a byte changed.
            for other in (0..=all.len()).filter(|&o| o != size as usize) {
                assert!(verify_inclusion(&leaf, index, size, &proof, &roots[other]).is_err());
            }
            let mut bad_root = root;
            bad_root[31] ^= 0x80;
            assert_eq!(verify_inclusion(&leaf, index, size, &proof, &bad_root), Err(MerkleError::RootMismatch));
            // The transparency-dev corruptions.
            for (what, probe) in inclusion_probes(&leaf, index, size, &proof, &root) {
                assert!(probe.is_err(), "PATH({index}, {size}) verified with {what}");
            }
        }
    }
}

#[test]
fn every_consistency_proof_up_to_70_matches_reference_verifies_and_resists_tampering() {
    let all = leaves(72);
    let roots: Vec<Hash> = (0..=all.len()).map(|n| ref_mth(&all[..n])).collect();
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &all);
    for new in 1..=70u64 {
        for old in 1..=new {
            let (r1, r2) = (roots[old as usize], roots[new as usize]);
            let proof = view.consistency_proof(old, new).unwrap();
            assert_eq!(proof, ref_subproof(old as usize, &all[..new as usize], true), "PROOF({old}, {new})");
            assert_eq!(verify_consistency(old, new, &r1, &r2, &proof), Ok(()), "PROOF({old}, {new})");
            if old == new {
                assert!(proof.is_empty());
                continue;
            }
            for i in 0..proof.len() {
                for byte in 0..32 {
                    let mut bad = proof.clone();
                    bad[i][byte] ^= 0x01;
                    assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err(), "({old}, {new}) [{i}][{byte}]");
                }
            }
            // Other sizes fail, each with its own true root.
            for other in (1..=new).filter(|&o| o != old) {
                let bad = verify_consistency(other, new, &roots[other as usize], &r2, &proof);
                assert!(bad.is_err(), "PROOF({old}, {new}) as old size {other}");
            }
            for other in (old..=all.len() as u64).filter(|&o| o != new) {
                let bad = verify_consistency(old, other, &r1, &roots[other as usize], &proof);
                assert!(bad.is_err(), "PROOF({old}, {new}) as new size {other}");
            }
            let mut bad_root = r1;
            bad_root[0] ^= 0x01;
            assert!(verify_consistency(old, new, &bad_root, &r2, &proof).is_err());
            let mut bad_root = r2;
            bad_root[0] ^= 0x01;
            assert!(verify_consistency(old, new, &r1, &bad_root, &proof).is_err());
            for (what, probe) in consistency_probes(old, new, &r1, &r2, &proof) {
                assert!(probe.is_err(), "PROOF({old}, {new}) verified with {what}");
            }
        }
    }
}

#[test]
fn sampled_proofs_in_larger_trees_verify() {
    let mut rng = Rng(0x00A1_7C0C_u64);
    let all = leaves(3000);
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &all);
    let mut frontier = Frontier::new();
    let mut roots = vec![frontier.root()];
    for leaf in &all {
        frontier.push(*leaf);
        roots.push(frontier.root());
    }
    let mut sizes: Vec<u64> = vec![127, 128, 129, 1023, 1024, 1025, 3000];
    sizes.extend((0..6).map(|_| 71 + rng.below(3000 - 71)));
    for size in sizes {
        let root = roots[size as usize];
        assert_eq!(view.root_at(size).unwrap(), root, "size {size}");
        let mut indices = vec![0, size / 2, size - 1];
        indices.extend((0..40).map(|_| rng.below(size)));
        for index in indices {
            let proof = view.inclusion_proof(index, size).unwrap();
            let leaf = all[index as usize];
            assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()), "({index}, {size})");
            let i = rng.below(proof.len() as u64) as usize;
            let mut bad = proof.clone();
            bad[i][rng.below(32) as usize] ^= 0x40;
            assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            for (what, probe) in inclusion_probes(&leaf, index, size, &proof, &root) {
                assert!(probe.is_err(), "PATH({index}, {size}) verified with {what}");
            }
        }
        let mut olds = vec![1, size / 2, size - 1, size];
        olds.extend((0..40).map(|_| 1 + rng.below(size)));
        for old in olds {
            let proof = view.consistency_proof(old, size).unwrap();
            let r1 = roots[old as usize];
            assert_eq!(verify_consistency(old, size, &r1, &root, &proof), Ok(()), "({old}, {size})");
            if old < size {
                for (what, probe) in consistency_probes(old, size, &r1, &root, &proof) {
                    assert!(probe.is_err(), "PROOF({old}, {size}) verified with {what}");
                }
            }
        }
    }
}

/// Checks a pruned view against the full one: whatever it produces equals the full view's answer, anything it
/// cannot produce is refused as `Pruned`, and everything at or past the pruning point is produced.
fn check_pruned_view(all: &[Hash], n: usize, f: usize, full: &TreeView<'_>) {
    let mut frontier = Frontier::new();
    for leaf in &all[..f] {
        frontier.push(*leaf);
    }
    let view = TreeView::new(&frontier, &all[f..n]);
    let (n, f) = (n as u64, f as u64);
    assert_eq!(view.size(), n);
    for size in 0..=n {
        match view.root_at(size) {
            Ok(root) => assert_eq!(root, full.root_at(size).unwrap(), "n {n}, F {f}, root_at({size})"),
            Err(e) => {
                assert!(matches!(e, MerkleError::Pruned { .. }), "n {n}, F {f}, root_at({size}): {e}");
                assert!(size < f, "n {n}, F {f}: root_at({size}) must succeed");
            }
        }
        for index in 0..size {
            match view.inclusion_proof(index, size) {
                Ok(p) => assert_eq!(p, full.inclusion_proof(index, size).unwrap(), "n {n}, F {f}, ({index}, {size})"),
                Err(e) => {
                    assert!(matches!(e, MerkleError::Pruned { .. }), "n {n}, F {f}, ({index}, {size}): {e}");
                    assert!(index < f, "n {n}, F {f}: inclusion ({index}, {size}) must succeed");
                }
            }
        }
        for old in 1..=size {
            match view.consistency_proof(old, size) {
                Ok(p) => assert_eq!(p, full.consistency_proof(old, size).unwrap(), "n {n}, F {f}, ({old}, {size})"),
                Err(e) => {
                    assert!(matches!(e, MerkleError::Pruned { .. }), "n {n}, F {f}, ({old}, {size}): {e}");
                    assert!(old < f, "n {n}, F {f}: consistency ({old}, {size}) must succeed");
                }
            }
        }
    }
    assert_eq!(view.root_at(n + 1), Err(MerkleError::SizeBeyondTree { size: n + 1, available: n }));
}

#[test]
fn pruned_views_agree_with_the_full_tree_and_serve_everything_past_the_prune_point() {
    let all = leaves(40);
    let empty = Frontier::new();
    let full = TreeView::new(&empty, &all);
    for n in 0..=33 {
        for f in 0..=n {
            check_pruned_view(&all, n, f, &full);
        }
    }
}

#[test]
fn pruned_views_of_larger_trees() {
    let all = leaves(300);
    let empty = Frontier::new();
    let full = TreeView::new(&empty, &all);
    for (n, f) in [(64, 63), (64, 64), (65, 64), (100, 37), (130, 128), (130, 129)] {
        check_pruned_view(&all, n, f, &full);
    }
}

#[test]
fn pruned_view_reports_the_missing_range() {
    let all = leaves(8);
    let mut frontier = Frontier::new();
    for leaf in &all[..6] {
        frontier.push(*leaf);
    }
    // Kept: node [0, 4), node [4, 6), then leaves 6 and 7.
    let view = TreeView::new(&frontier, &all[6..]);
    assert_eq!(view.size(), 8);
    // Leaf 2's sibling is leaf 3, inside [0, 4).
    assert_eq!(view.inclusion_proof(2, 8), Err(MerkleError::Pruned { lo: 3, hi: 4 }));
    // Leaf 6 needs [7, 8), [4, 6) and [0, 4): all there.
    let empty = Frontier::new();
    let full = TreeView::new(&empty, &all);
    assert_eq!(view.inclusion_proof(6, 8).unwrap(), full.inclusion_proof(6, 8).unwrap());
    // Size 5 needs MTH([0, 4)) and leaf 4, which is inside [4, 6).
    assert_eq!(view.root_at(5), Err(MerkleError::Pruned { lo: 0, hi: 5 }));
    // Size 4 and 6 are runs of frontier nodes.
    assert_eq!(view.root_at(4).unwrap(), full.root_at(4).unwrap());
    assert_eq!(view.root_at(6).unwrap(), full.root_at(6).unwrap());
}

#[test]
fn a_huge_pruned_prefix_is_refused_at_once() {
    // A frontier of 2^40 leaves (the hashes do not matter here): asking for a node inside it must fail straight
    // away rather than descend towards leaves that are not there.
    let frontier = Frontier::from_parts(1 << 40, vec![leaf_hash(b"big")]).unwrap();
    let tail = leaves(3);
    let view = TreeView::new(&frontier, &tail);
    assert_eq!(view.size(), (1 << 40) + 3);
    assert_eq!(view.root_at(1 << 39), Err(MerkleError::Pruned { lo: 0, hi: 1 << 39 }));
    assert!(matches!(view.inclusion_proof(5, 1 << 40), Err(MerkleError::Pruned { .. })));
    // But everything at or past the prefix works, and matches a frontier grown from it.
    let mut grown = frontier.clone();
    for leaf in &tail {
        grown.push(*leaf);
    }
    assert_eq!(view.root_at(view.size()).unwrap(), grown.root());
    let proof = view.inclusion_proof((1 << 40) + 1, view.size()).unwrap();
    assert_eq!(verify_inclusion(&tail[1], (1 << 40) + 1, view.size(), &proof, &grown.root()), Ok(()));
    let proof = view.consistency_proof(1 << 40, view.size()).unwrap();
    assert_eq!(verify_consistency(1 << 40, view.size(), &frontier.root(), &grown.root(), &proof), Ok(()));
}

#[test]
fn argument_errors() {
    let all = leaves(5);
    let empty = Frontier::new();
    let view = TreeView::new(&empty, &all);
    let root = view.root_at(5).unwrap();
    assert_eq!(view.root_at(6), Err(MerkleError::SizeBeyondTree { size: 6, available: 5 }));
    assert_eq!(view.inclusion_proof(5, 5), Err(MerkleError::IndexOutOfRange { index: 5, size: 5 }));
    assert_eq!(view.inclusion_proof(0, 0), Err(MerkleError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(view.inclusion_proof(0, 6), Err(MerkleError::SizeBeyondTree { size: 6, available: 5 }));
    assert_eq!(view.consistency_proof(3, 2), Err(MerkleError::OldSizeGreater { old_size: 3, new_size: 2 }));
    assert_eq!(view.consistency_proof(0, 3), Err(MerkleError::OldSizeZero));
    assert_eq!(view.consistency_proof(0, 0), Err(MerkleError::OldSizeZero));
    assert_eq!(view.consistency_proof(2, 6), Err(MerkleError::SizeBeyondTree { size: 6, available: 5 }));

    assert_eq!(
        verify_inclusion(&all[0], 0, 0, &[], &empty_root()),
        Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(verify_inclusion(&all[0], 0, 5, &[], &root), Err(MerkleError::ProofLength { expected: 3, actual: 0 }));
    assert_eq!(verify_consistency(0, 5, &empty_root(), &root, &[]), Err(MerkleError::OldSizeZero));
    assert_eq!(
        verify_consistency(6, 5, &root, &root, &[]),
        Err(MerkleError::OldSizeGreater { old_size: 6, new_size: 5 })
    );
    // Equal sizes: the empty proof, and only for equal roots.
    assert_eq!(verify_consistency(5, 5, &root, &root, &[]), Ok(()));
    assert_eq!(verify_consistency(5, 5, &root, &all[0], &[]), Err(MerkleError::RootMismatch));
    assert_eq!(
        verify_consistency(5, 5, &root, &root, &[root]),
        Err(MerkleError::ProofLength { expected: 0, actual: 1 })
    );
    assert_eq!(view.consistency_proof(5, 5), Ok(vec![]));

    assert_eq!(
        Frontier::from_parts(5, vec![all[0]]),
        Err(MerkleError::FrontierShape { size: 5, expected: 2, actual: 1 })
    );
    assert_eq!(
        Frontier::from_parts(0, vec![all[0]]),
        Err(MerkleError::FrontierShape { size: 0, expected: 0, actual: 1 })
    );
    assert_eq!(
        Frontier::from_parts(MAX_TREE_SIZE + 1, vec![all[0]; 2]),
        Err(MerkleError::TooLarge { size: MAX_TREE_SIZE + 1 })
    );
    assert!(Frontier::from_parts(MAX_TREE_SIZE, vec![all[0]]).is_ok());
}

#[test]
fn hostile_sizes_do_not_panic() {
    // Untrusted sizes at the edges of u64 must give errors, not overflow.
    let x = leaf_hash(b"x");
    let proof = vec![x; 64];
    for size in [1, 2, u64::MAX - 1, u64::MAX, 1 << 63, (1 << 63) + 1] {
        for index in [0, 1, size / 2, size.wrapping_sub(2), size.wrapping_sub(1), size, u64::MAX] {
            for len in [0, 1, 63, 64] {
                assert!(verify_inclusion(&x, index, size, &proof[..len], &x).is_err() || (size == 1 && len == 0));
            }
        }
        for old in [1, 2, size / 2, size.wrapping_sub(1), size] {
            for len in [0, 1, 64] {
                let r = verify_consistency(old, size, &x, &x, &proof[..len]);
                // Only the trivial case (same size, same root, empty proof) may pass.
                assert!(r.is_err() || (old == size && len == 0), "({old}, {size}) len {len}");
            }
        }
    }
}
