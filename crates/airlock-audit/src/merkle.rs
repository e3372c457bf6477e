//! The RFC 9162 (Certificate Transparency v2) Merkle tree over audit records, section 2.1.
//!
//! Why: a hash chain shows that records were not changed, but not that the tail was not cut off or that two
//! readers saw the same log. A Merkle tree with signed roots does: an inclusion proof shows that a record is in
//! the tree a checkpoint signed, and a consistency proof shows that a later checkpoint extends an earlier one.
//! The hashing is RFC 9162's (the same as RFC 6962's), so the standard tooling and test vectors apply:
//! a leaf is `SHA-256(0x00 || data)`, an interior node `SHA-256(0x01 || left || right)`, the empty tree
//! `SHA-256("")`.
//!
//! - [`Frontier`]: what a writer keeps to append in O(log n) and to compute the root (one hash per set bit of
//!   the size).
//! - [`TreeView`]: a tree for producing roots and proofs, possibly with a pruned prefix of which only the
//!   frontier is kept.
//! - [`verify_inclusion`] / [`verify_consistency`]: RFC 9162 2.1.3.2 and 2.1.4.2, for proofs from anywhere.
//!
//! Edge cases, following the RFC: an inclusion proof needs `index < size`; a consistency proof needs
//! `0 < old_size <= new_size` (RFC 9162 2.1.4 defines proofs for `0 < m < n`). `old_size == new_size` gives
//! the empty proof (SUBPROOF(m, D[m], true) = {}), which verifies exactly when the two roots are equal.
//! `old_size == 0` is refused ([`MerkleError::OldSizeZero`]) rather than treated as trivially consistent: an
//! empty tree commits to nothing, so there is nothing to check, and a caller that wants to accept it should
//! say so explicitly.

use sha2::{Digest, Sha256};

/// A SHA-256 output: leaf hashes, node hashes and roots.
pub type Hash = [u8; 32];

/// The largest tree size a [`Frontier`] accepts from outside. It keeps `size + leaves` in [`TreeView`] from
/// overflowing a `u64`; no real log comes near it.
pub const MAX_TREE_SIZE: u64 = 1 << 63;

/// `SHA-256(0x00 || data)`: the hash of a leaf (RFC 9162 2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node (RFC 9162 2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree, MTH({}).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Everything that can go wrong building or checking a proof. Messages name the sizes involved, never hashes.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is beyond the {available} leaves available")]
    SizeBeyondTree { size: u64, available: u64 },
    #[error("old tree size {old_size} is greater than new tree size {new_size}")]
    OldSizeGreater { old_size: u64, new_size: u64 },
    #[error("a consistency proof needs a non-empty old tree (RFC 9162 defines them for 0 < old_size)")]
    OldSizeZero,
    #[error("leaves [{lo}, {hi}) are pruned, and no kept frontier node covers exactly that range")]
    Pruned { lo: u64, hi: u64 },
    #[error("proof has {actual} hashes, but a proof for these sizes has {expected}")]
    ProofLength { expected: usize, actual: usize },
    #[error("proof does not match the root hash")]
    RootMismatch,
    #[error("a frontier of size {size} has {expected} nodes (one per set bit), not {actual}")]
    FrontierShape { size: u64, expected: u32, actual: usize },
    #[error("tree size {size} is beyond the supported maximum of 2^63 leaves")]
    TooLarge { size: u64 },
}

/// The largest power of two strictly below `n`; `n` must be at least 2. This is RFC 9162's split point `k`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges `[lo, hi)` of the frontier nodes of a tree of `size` leaves, left to right: one aligned
/// perfect subtree per set bit of `size`, largest first.
fn frontier_ranges(size: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut start = 0u64;
    (0..64u32).rev().filter(move |bit| size & (1u64 << bit) != 0).map(move |bit| {
        let lo = start;
        start += 1u64 << bit;
        (lo, start)
    })
}

/// The compact range over leaves `[0, size)`: the roots of the maximal perfect subtrees, left to right (one per
/// set bit of `size`, largest first). Lets a writer append in O(log n) and compute the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from stored parts. `nodes` must have one hash per set bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, MerkleError> {
        if size > MAX_TREE_SIZE {
            return Err(MerkleError::TooLarge { size });
        }
        if nodes.len() != size.count_ones() as usize {
            return Err(MerkleError::FrontierShape { size, expected: size.count_ones(), actual: nodes.len() });
        }
        Ok(Frontier { size, nodes })
    }

    /// The number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash. Adding a leaf is binary increment: every trailing set bit of the old size is a
    /// subtree of the same height as the carry, so it merges with it.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            // The invariant nodes.len() == size.count_ones() guarantees a node for every set bit.
            let Some(left) = self.nodes.pop() else { break };
            carry = node_hash(&left, &carry);
            size >>= 1;
        }
        self.nodes.push(carry);
        // Cannot overflow in practice: from_parts caps the size at 2^63, and 2^63 appends would be needed.
        self.size += 1;
    }

    /// MTH of leaves `[0, size)`; [`empty_root`] when the size is 0. The frontier nodes have strictly
    /// decreasing sizes, so the RFC's split always falls at a node boundary and the root is a right fold.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else { return empty_root() };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// A tree given as the frontier of a pruned prefix `[0, F)` plus the leaf hashes of leaves `F..`
/// (`F = pruned.size()`). With `F = 0` it is simply the whole tree.
///
/// Inside the pruned prefix only the frontier's nodes are known. A root or proof that needs any other node
/// there fails with [`MerkleError::Pruned`]. Roots at sizes `>= F`, inclusion proofs for indices `>= F` and
/// consistency proofs from old sizes `>= F` always succeed: every node they need that ends at or before `F` is
/// a frontier node or a run of them.
pub struct TreeView<'a> {
    pruned: &'a Frontier,
    leaves: &'a [Hash],
}

impl<'a> TreeView<'a> {
    pub fn new(pruned: &'a Frontier, leaves: &'a [Hash]) -> Self {
        TreeView { pruned, leaves }
    }

    /// `F + leaves.len()`. Cannot overflow: `F <= 2^63` and a slice holds fewer than 2^63 elements.
    pub fn size(&self) -> u64 {
        self.pruned.size + self.leaves.len() as u64
    }

    /// MTH of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree(0, size)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves: RFC 9162 2.1.3.1 PATH, the
    /// sibling hashes from the leaf up to the root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(size)?;
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        inclusion_ranges(index, size).into_iter().map(|(lo, hi)| self.subtree(lo, hi)).collect()
    }

    /// The consistency proof between the trees of the first `old_size` and `new_size` leaves: RFC 9162 2.1.4.1
    /// PROOF / SUBPROOF. Empty when the sizes are equal; an error when `old_size` is 0.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(new_size)?;
        check_consistency_sizes(old_size, new_size)?;
        consistency_ranges(old_size, new_size).into_iter().map(|(lo, hi)| self.subtree(lo, hi)).collect()
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        if size > self.size() {
            return Err(MerkleError::SizeBeyondTree { size, available: self.size() });
        }
        Ok(())
    }

    /// MTH of leaves `[lo, hi)`, with `lo < hi <= self.size()`. Work is linear in the leaves it covers past
    /// `F`; recursion depth is at most about 2 * 64, since each split at least halves a range every two steps.
    fn subtree(&self, lo: u64, hi: u64) -> Result<Hash, MerkleError> {
        let f = self.pruned.size;
        if lo >= f {
            // Entirely in the kept leaves. Indices fit in usize: they are below leaves.len().
            return Ok(hash_leaves(&self.leaves[(lo - f) as usize..(hi - f) as usize]));
        }
        if hi <= f {
            return self.pruned_subtree(lo, hi);
        }
        // Straddles F: split as the RFC does. Each half is again pruned, kept, or straddling.
        let k = split_point(hi - lo);
        let left = self.subtree(lo, lo + k)?;
        let right = self.subtree(lo + k, hi)?;
        Ok(node_hash(&left, &right))
    }

    /// MTH of `[lo, hi)` inside the pruned prefix. Known only when the range is a run of consecutive frontier
    /// nodes (from a node's start to a node's end): then, as in [`Frontier::root`], it is their right fold.
    /// Any other range would need a node that was thrown away. Checked up front, so a request for part of a
    /// huge pruned subtree fails at once instead of recursing down to leaves that are not there.
    fn pruned_subtree(&self, lo: u64, hi: u64) -> Result<Hash, MerkleError> {
        let mut run: Vec<&Hash> = Vec::new();
        for ((start, end), node) in frontier_ranges(self.pruned.size).zip(&self.pruned.nodes) {
            if start == lo || !run.is_empty() {
                run.push(node);
                if end == hi {
                    let mut nodes = run.into_iter().rev();
                    let Some(last) = nodes.next() else { break };
                    return Ok(nodes.fold(*last, |right, left| node_hash(left, &right)));
                }
                if end > hi {
                    break;
                }
            }
        }
        Err(MerkleError::Pruned { lo, hi })
    }
}

/// MTH of a non-empty run of leaf hashes, by the RFC's definition: split at the largest power of two below
/// the length. Linear work, recursion depth at most 64.
fn hash_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            node_hash(&hash_leaves(&leaves[..k]), &hash_leaves(&leaves[k..]))
        }
    }
}

/// The leaf ranges of the nodes in PATH(index, D[0:size]), in proof order (leaf end first).
/// Requires `index < size`.
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0u64, size);
    let mut top_down = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            top_down.push((lo + k, hi));
            hi = lo + k;
        } else {
            // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            top_down.push((lo, lo + k));
            lo += k;
        }
    }
    top_down.reverse();
    top_down
}

/// The leaf ranges of the nodes in PROOF(old_size, D[0:new_size]), in proof order.
/// Requires `0 < old_size <= new_size`.
fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0u64, new_size);
    let mut m = old_size; // relative to lo
    let mut whole_old_tree = true; // the RFC's `b`: is [lo, lo + m) the complete old tree?
    let mut top_down = Vec::new();
    loop {
        if m == hi - lo {
            // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            if !whole_old_tree {
                top_down.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            top_down.push((lo + k, hi));
            hi = lo + k;
        } else {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            top_down.push((lo, lo + k));
            m -= k;
            lo += k;
            whole_old_tree = false;
        }
    }
    top_down.reverse();
    top_down
}

fn check_consistency_sizes(old_size: u64, new_size: u64) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeGreater { old_size, new_size });
    }
    if old_size == 0 {
        return Err(MerkleError::OldSizeZero);
    }
    Ok(())
}

/// Checks that `proof` shows leaf hash `leaf` at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 2.1.3.2). The proof's length is checked against the sizes first, so extra or missing hashes are
/// reported as such.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    // 1. leaf_index must be below tree_size.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_ranges(index, size).len();
    if proof.len() != expected {
        return Err(MerkleError::ProofLength { expected, actual: proof.len() });
    }
    // 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    // 4. For each p in the path:
    for p in proof {
        // a. sn == 0 means the path is too long.
        if sn == 0 {
            return Err(MerkleError::RootMismatch);
        }
        // b. A right child (or the last node of its level) hashes with p on the left.
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            // Skip the levels where this node has no sibling (the right edge of an unbalanced tree).
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        // c. Up one level.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn must be 0 and r the root.
    if sn != 0 || r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root` (RFC 9162 2.1.4.2). `old_size == new_size` needs the empty proof and
/// equal roots; `old_size == 0` is refused (see the module docs).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    check_consistency_sizes(old_size, new_size)?;
    let expected = consistency_ranges(old_size, new_size).len();
    if proof.len() != expected {
        return Err(MerkleError::ProofLength { expected, actual: proof.len() });
    }
    if old_size == new_size {
        // The RFC's algorithm starts at 0 < first < second; the same tree is consistent only with itself.
        return if old_root == new_root { Ok(()) } else { Err(MerkleError::RootMismatch) };
    }

    // 1. An empty path fails (cannot happen here: the length check above rules it out for old < new).
    // 2. If first is an exact power of 2, the old root is itself the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return Err(MerkleError::RootMismatch) };

    // 3. fn = first - 1, sn = second - 1.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // 4. Shift past the levels where the old tree's last leaf is a right child.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. fr and sr both start at the first node.
    let (mut fr, mut sr) = (*first, *first);
    // 6. For each following node c:
    for c in rest {
        // a. sn == 0 means the path is too long.
        if sn == 0 {
            return Err(MerkleError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            // b. c is a left sibling: it is in both trees.
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // Otherwise c is a right sibling, only in the new tree.
            sr = node_hash(&sr, c);
        }
        // c. Up one level.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. Both roots must come out, and the path must have reached the top.
    if fr != *old_root || sr != *new_root || sn != 0 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}
