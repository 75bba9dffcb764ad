//! Ed25519 keys and the protocol's one signature rule, identical for single and batch
//! verification.
//!
//! ed25519-dalek's `verify_batch` checks the *cofactorless* equation with random coefficients,
//! so it can accept a signature whose `R` has a torsion component that `verify_strict` rejects,
//! and whether it does depends on the coefficients: single and batch verification would
//! disagree, and nodes could split on the same header. headway instead uses the *cofactored*
//! equation in both paths (as recommended by Chalkias, Garillot and Nikolaenko, "Taming the many
//! EdDSAs", 2020; like ZIP-215 but with strict encodings), built on curve25519-dalek:
//!
//! 1. Public key `A` (checked once, in [`PublicKey::from_bytes`]): the encoding is canonical
//!    (`y < p`), decompresses, is not of small order and is torsion-free.
//! 2. Signature `R ‖ S`: `S < ℓ`; `R`'s encoding is canonical (`y < p`), decompresses and `R`
//!    is not of small order.
//! 3. `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//! 4. Single: accept iff `[8]([S]B − R − [k]A)` is the identity.
//! 5. Batch of `n`: 128-bit coefficients `z_i` are derived from *all* inputs: the BLAKE3 XOF of
//!    `BLAKE3-keyed(K_batch-coefficients, A_1 ‖ R_1 ‖ S_1 ‖ u64_le(|M_1|) ‖ M_1 ‖ … )`, read as
//!    `n` little-endian `u128`s. Accept iff
//!    `[8](−(Σ z_i S_i) B + Σ z_i R_i + Σ (z_i k_i) A_i)` is the identity.
//!
//! Since the cofactored equation holds for a signature iff `[8]` of its error term vanishes, a
//! valid set of signatures always passes the batch check, and an invalid one passes it only with
//! probability about 2^-128 over the coefficients, which nobody can choose. Nothing here uses an
//! rng (wasm32 has none) and no input can make it panic.

use std::fmt;
use std::hash::{Hash as StdHash, Hasher as StdHasher};
use std::iter;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

use crate::chain::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use crate::chain::hash::{impl_hex_text, Domain};

/// Length of an encoded public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an encoded signature (`R ‖ S`) in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Why bytes or a hex string are not a valid public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The hex string does not have 64 digits (the value is the string's length).
    #[error("expected 64 hex digits (32 bytes), got {0} characters")]
    WrongLength(usize),
    #[error("not a hex string")]
    NotHex,
    /// The y coordinate is not reduced (`y ≥ 2^255 − 19`).
    #[error("non-canonical point encoding (y is not reduced mod p)")]
    NonCanonicalEncoding,
    #[error("not the encoding of a curve point")]
    NotOnCurve,
    /// The point is of small order (including the identity) or has a torsion component.
    #[error("point is of small order or not in the prime-order subgroup")]
    NotTorsionFree,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `S ≥ ℓ`.
    #[error("signature scalar S is not canonical (S >= l)")]
    NonCanonicalS,
    /// `R`'s y coordinate is not reduced (`y ≥ 2^255 − 19`).
    #[error("signature point R has a non-canonical encoding")]
    NonCanonicalR,
    #[error("signature point R is not on the curve")]
    InvalidR,
    #[error("signature point R is of small order")]
    SmallOrderR,
    /// Everything is well formed but the (cofactored) verification equation fails.
    #[error("signature does not verify")]
    Equation,
}

/// Why a batch does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Item `index` failed a per-signature check that needs no curve equation.
    #[error("batch item {index}: {error}")]
    Item { index: usize, error: SignatureError },
    /// All items are well formed but at least one signature is invalid (which one is not known).
    #[error("batch signature equation does not hold")]
    Equation,
}

/// Whether the 255-bit y coordinate of a point encoding (sign bit ignored) is `< p = 2^255 − 19`.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    // p = ed ff ff ... ff 7f (little-endian). y ≥ p iff the top byte (sans sign bit) is 0x7f,
    // the 30 middle bytes are all 0xff and the low byte is ≥ 0xed.
    !(bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// How many validated keys each thread remembers (a validator set holds at most 1,024).
const VALID_KEY_CACHE: usize = 4096;

thread_local! {
    static VALID_KEYS: std::cell::RefCell<std::collections::HashMap<[u8; PUBLIC_KEY_LEN], EdwardsPoint>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A validated ed25519 public key: canonical encoding of a torsion-free point that is not the
/// identity. The decompressed point is kept so it is never decoded again.
#[derive(Clone)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    point: EdwardsPoint,
}

impl PublicKey {
    /// Parses and validates a key (see the module documentation, rule 1).
    ///
    /// Validation costs about one scalar multiplication (the torsion check), and the same few
    /// validator keys are decoded again with every header, commit and validator set read from a
    /// store or the network. So keys that passed are remembered per thread (bounded, keyed by
    /// their exact bytes: the result is a pure function of them).
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, KeyError> {
        if let Some(point) = VALID_KEYS.with(|c| c.borrow().get(bytes).copied()) {
            return Ok(PublicKey {
                bytes: *bytes,
                point,
            });
        }
        let key = Self::validate(bytes)?;
        VALID_KEYS.with(|c| {
            let mut cache = c.borrow_mut();
            if cache.len() >= VALID_KEY_CACHE {
                cache.clear();
            }
            cache.insert(*bytes, key.point);
        });
        Ok(key)
    }

    fn validate(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, KeyError> {
        if !is_canonical_y(bytes) {
            return Err(KeyError::NonCanonicalEncoding);
        }
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(KeyError::NotOnCurve)?;
        // `is_torsion_free` alone accepts the identity (it is in the prime-order subgroup),
        // for which any (R, S) with [8]([S]B − R) = 0 would verify: reject small order too.
        if point.is_small_order() || !point.is_torsion_free() {
            return Err(KeyError::NotTorsionFree);
        }
        Ok(PublicKey {
            bytes: *bytes,
            point,
        })
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Parses exactly 64 lowercase or uppercase hex digits, then validates the key.
    pub fn from_hex(s: &str) -> Result<PublicKey, KeyError> {
        if s.len() != 2 * PUBLIC_KEY_LEN {
            return Err(KeyError::WrongLength(s.len()));
        }
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| KeyError::NotHex)?;
        PublicKey::from_bytes(&bytes)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl StdHash for PublicKey {
    fn hash<H: StdHasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl_hex_text!(PublicKey);

impl Encode for PublicKey {
    fn encode_to(&self, w: &mut Writer) {
        w.raw(&self.bytes);
    }
}

impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.array::<PUBLIC_KEY_LEN>()?;
        PublicKey::from_bytes(&bytes).map_err(|e| DecodeError::Invalid {
            what: "public key",
            reason: e.to_string(),
        })
    }
}

/// An encoded signature `R ‖ S`. Not validated until it is verified.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl Signature {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 128 lowercase or uppercase hex digits.
    pub fn from_hex(s: &str) -> Result<Signature, hex::FromHexError> {
        let mut bytes = [0u8; SIGNATURE_LEN];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(Signature(bytes))
    }

    fn r_bytes(&self) -> &[u8; 32] {
        self.0.first_chunk::<32>().expect("64 >= 32")
    }

    fn s_bytes(&self) -> &[u8; 32] {
        self.0.last_chunk::<32>().expect("64 >= 32")
    }
}

impl_hex_text!(Signature);

impl Encode for Signature {
    fn encode_to(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array::<SIGNATURE_LEN>()?))
    }
}

/// An ed25519 signing key (RFC 8032). The secret is zeroized on drop by ed25519-dalek.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key. Always valid: `A = [a]B` with a clamped `a` (a multiple of 8 that is not
    /// a multiple of ℓ) is torsion-free and not the identity.
    pub fn public_key(&self) -> PublicKey {
        let vk = self.0.verifying_key();
        PublicKey {
            bytes: vk.to_bytes(),
            point: vk.to_edwards(),
        }
    }

    /// Standard deterministic RFC 8032 signing.
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public: {})", self.public_key().to_hex())
    }
}

/// Rule 2: `S` canonical; `R` canonical, on the curve and not of small order.
fn parse_signature(signature: &Signature) -> Result<(EdwardsPoint, Scalar), SignatureError> {
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
        .ok_or(SignatureError::NonCanonicalS)?;
    let r_bytes = signature.r_bytes();
    if !is_canonical_y(r_bytes) {
        return Err(SignatureError::NonCanonicalR);
    }
    let r = CompressedEdwardsY(*r_bytes)
        .decompress()
        .ok_or(SignatureError::InvalidR)?;
    if r.is_small_order() {
        return Err(SignatureError::SmallOrderR);
    }
    Ok((r, s))
}

/// Rule 3: `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
fn challenge(r_bytes: &[u8; 32], key: &PublicKey, message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.bytes);
    h.update(message);
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// The batch coefficients: `n` little-endian `u128`s, the first `16·n` bytes of the seed's
/// BLAKE3 XOF, read one whole 64-byte output block at a time (a shorter read would recompute
/// the same block).
struct Coefficients {
    xof: blake3::OutputReader,
    block: [u8; 64],
    next: usize,
    left: usize,
}

impl Coefficients {
    fn new(xof: blake3::OutputReader, n: usize) -> Self {
        Coefficients {
            xof,
            block: [0; 64],
            next: 64,
            left: n,
        }
    }

    /// The next coefficient; after the `n`-th, zeros (never reached by the caller).
    fn next_u128(&mut self) -> u128 {
        if self.left == 0 {
            return 0;
        }
        if self.next == 64 {
            let want = self.left.saturating_mul(16).min(64);
            self.xof.fill(&mut self.block[..want]);
            self.next = 0;
        }
        let mut z = [0u8; 16];
        z.copy_from_slice(&self.block[self.next..self.next + 16]);
        self.next += 16;
        self.left -= 1;
        u128::from_le_bytes(z)
    }
}

/// Verifies one signature: `[8]([S]B − R − [k]A) = 0`.
pub fn verify(
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let (r, s) = parse_signature(signature)?;
    let k = challenge(signature.r_bytes(), key, message);
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-k), &key.point, &s);
    if (sb_minus_ka - r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(SignatureError::Equation)
    }
}

/// One signature of a batch. Cheap to build (three references), so a batch can be built once
/// and verified many times.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies all signatures at once with the same rule as [`verify`]: `Ok` iff every item would
/// pass [`verify`] (up to a 2^-128 chance of accepting an invalid batch). An empty batch is
/// `Ok`. A malformed item is reported by index; an equation failure does not say which item.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), BatchError> {
    let n = items.len();
    if n == 0 {
        return Ok(());
    }
    // Scalars of the multiscalar multiplication, in point order: B, R_1..R_n, A_1..A_n.
    // Slots 1..=n first hold S_i and slots n+1..=2n first hold k_i; both are replaced below.
    let mut scalars = vec![Scalar::ZERO; 2 * n + 1];
    let mut rs: Vec<EdwardsPoint> = Vec::with_capacity(n);
    let mut seed = Domain::BatchCoefficients.hasher();
    {
        let (s_slots, k_slots) = scalars[1..].split_at_mut(n);
        for (index, ((item, s_slot), k_slot)) in items.iter().zip(s_slots).zip(k_slots).enumerate()
        {
            let sig = item.signature;
            let (r, s) = parse_signature(sig).map_err(|error| BatchError::Item { index, error })?;
            rs.push(r);
            *s_slot = s;
            *k_slot = challenge(sig.r_bytes(), item.key, item.message);
            seed.update(&item.key.bytes);
            seed.update(&sig.0);
            seed.update(&(item.message.len() as u64).to_le_bytes());
            seed.update(item.message);
        }
    }

    let mut coefficients = Coefficients::new(seed.finalize_xof(), n);
    let mut s_sum = Scalar::ZERO;
    let (z_slots, zk_slots) = scalars[1..].split_at_mut(n);
    for (z_slot, zk_slot) in z_slots.iter_mut().zip(zk_slots) {
        let z = Scalar::from(coefficients.next_u128());
        s_sum += z * *z_slot; // z_slot holds S_i
        *z_slot = z;
        *zk_slot *= z; // zk_slot held k_i
    }
    scalars[0] = -s_sum;

    let points = iter::once(&ED25519_BASEPOINT_POINT)
        .chain(rs.iter())
        .chain(items.iter().map(|item| &item.key.point));
    let sum = EdwardsPoint::vartime_multiscalar_mul(scalars.iter(), points);
    if sum.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(BatchError::Equation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::hash::{hash, Domain};
    use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn remembered_keys_decode_to_the_same_point_and_rejections_are_not_remembered() {
        let key = SigningKey::from_seed(&[42; 32]).public_key();
        let first = PublicKey::from_bytes(key.as_bytes()).unwrap();
        let second = PublicKey::from_bytes(key.as_bytes()).unwrap();
        assert_eq!(first.point.compress(), second.point.compress());
        assert_eq!(second.point.compress().to_bytes(), *key.as_bytes());
        // The identity is rejected every time, never served from the cache.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert_eq!(
                PublicKey::from_bytes(&identity).unwrap_err(),
                KeyError::NotTorsionFree
            );
        }
    }

    /// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn key(i: u64) -> SigningKey {
        let seed = hash(Domain::Handshake, &i.to_le_bytes());
        SigningKey::from_seed(&seed.0)
    }

    fn vote(i: u64) -> [u8; 32] {
        hash(Domain::Vote, &i.to_le_bytes()).0
    }

    fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let t = u16::from(a[i]) + u16::from(b[i]) + carry;
            out[i] = t as u8;
            carry = t >> 8;
        }
        out
    }

    /// A signature whose R = [r]B + T has a torsion component T, S computed honestly.
    fn mixed_order_r_signature(
        a: Scalar,
        r: Scalar,
        t: EdwardsPoint,
        msg: &[u8],
    ) -> (PublicKey, Signature) {
        let pk = PublicKey::from_bytes(&(&a * ED25519_BASEPOINT_TABLE).compress().0).unwrap();
        let big_r = (&r * ED25519_BASEPOINT_TABLE) + t;
        let r_bytes = big_r.compress().0;
        let k = challenge(&r_bytes, &pk, msg);
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        (pk, Signature(sig))
    }

    struct Owned {
        keys: Vec<PublicKey>,
        msgs: Vec<Vec<u8>>,
        sigs: Vec<Signature>,
    }

    impl Owned {
        fn honest(n: u64, shared_message: bool) -> Owned {
            let mut o = Owned {
                keys: vec![],
                msgs: vec![],
                sigs: vec![],
            };
            for i in 0..n {
                let sk = key(i);
                let m = vote(if shared_message { 0 } else { i }).to_vec();
                o.sigs.push(sk.sign(&m));
                o.keys.push(sk.public_key());
                o.msgs.push(m);
            }
            o
        }

        fn items(&self) -> Vec<BatchItem<'_>> {
            (0..self.keys.len())
                .map(|i| BatchItem {
                    key: &self.keys[i],
                    message: &self.msgs[i],
                    signature: &self.sigs[i],
                })
                .collect()
        }
    }

    #[test]
    fn coefficients_are_the_xof_prefix() {
        for n in 0..=13usize {
            let mut seed = Domain::BatchCoefficients.hasher();
            seed.update(&n.to_le_bytes());
            let mut all = vec![0u8; 16 * n];
            seed.finalize_xof().fill(&mut all);
            let mut c = Coefficients::new(seed.finalize_xof(), n);
            for chunk in all.chunks(16) {
                assert_eq!(
                    c.next_u128(),
                    u128::from_le_bytes(chunk.try_into().unwrap())
                );
            }
            assert_eq!(c.next_u128(), 0);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let sk = key(12);
        let pk = sk.public_key();
        let mut keys = 0;
        for i in 0u64..2000 {
            let mut bytes = [0u8; 96];
            Domain::Handshake
                .hasher()
                .update(&i.to_le_bytes())
                .finalize_xof()
                .fill(&mut bytes);
            let k: [u8; 32] = bytes[..32].try_into().unwrap();
            let sig = Signature(bytes[32..].try_into().unwrap());
            let other = PublicKey::from_bytes(&k);
            keys += usize::from(other.is_ok());
            assert!(verify(&pk, &k, &sig).is_err());
            let item = BatchItem {
                key: other.as_ref().unwrap_or(&pk),
                message: &k,
                signature: &sig,
            };
            assert!(verify_batch(&[item]).is_err());
        }
        // About 1/2 of random y decompress, and 1/8 of those are torsion-free (~125 of 2000).
        assert!((50..250).contains(&keys), "{keys}");
    }

    #[test]
    fn sign_verify_round_trip() {
        let sk = key(1);
        let pk = sk.public_key();
        let m = vote(7);
        let sig = sk.sign(&m);
        assert_eq!(verify(&pk, &m, &sig), Ok(()));
        assert_eq!(SigningKey::from_seed(&sk.seed()).public_key(), pk);
        assert_eq!(PublicKey::from_bytes(pk.as_bytes()), Ok(pk.clone()));
        assert_eq!(verify(&pk, b"", &sk.sign(b"")), Ok(()));
    }

    #[test]
    fn wrong_message_or_key_fails_the_equation() {
        let sk = key(1);
        let m = vote(7);
        let sig = sk.sign(&m);
        assert_eq!(
            verify(&sk.public_key(), &vote(8), &sig),
            Err(SignatureError::Equation)
        );
        assert_eq!(
            verify(&key(2).public_key(), &m, &sig),
            Err(SignatureError::Equation)
        );
    }

    #[test]
    fn flipped_bits_give_the_exact_error() {
        let sk = key(3);
        let pk = sk.public_key();
        let m = vote(3);
        let sig = sk.sign(&m);
        let (mut saw_invalid_r, mut saw_r_equation) = (false, false);
        for bit in 0..256 {
            let mut bad = sig;
            bad.0[bit / 8] ^= 1 << (bit % 8);
            let flipped_r: [u8; 32] = bad.0[..32].try_into().unwrap();
            let expected = if !is_canonical_y(&flipped_r) {
                SignatureError::NonCanonicalR
            } else {
                match CompressedEdwardsY(flipped_r).decompress() {
                    None => SignatureError::InvalidR,
                    Some(p) if p.is_small_order() => SignatureError::SmallOrderR,
                    Some(_) => SignatureError::Equation,
                }
            };
            saw_invalid_r |= expected == SignatureError::InvalidR;
            saw_r_equation |= expected == SignatureError::Equation && bit < 255;
            assert_eq!(verify(&pk, &m, &bad), Err(expected), "R bit {bit}");
        }
        assert!(saw_invalid_r && saw_r_equation);
        // The sign bit of R always decompresses (to −R's x): the equation fails.
        let mut bad = sig;
        bad.0[31] ^= 0x80;
        assert_eq!(verify(&pk, &m, &bad), Err(SignatureError::Equation));
        for bit in 0..256 {
            let mut bad = sig;
            bad.0[32 + bit / 8] ^= 1 << (bit % 8);
            let s: [u8; 32] = bad.0[32..].try_into().unwrap();
            let expected = if bool::from(Scalar::from_canonical_bytes(s).is_some()) {
                SignatureError::Equation
            } else {
                SignatureError::NonCanonicalS
            };
            if bit < 252 {
                assert_eq!(expected, SignatureError::Equation);
            }
            if bit > 252 {
                assert_eq!(expected, SignatureError::NonCanonicalS);
            }
            assert_eq!(verify(&pk, &m, &bad), Err(expected), "S bit {bit}");
        }
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        let sk = key(4);
        let m = vote(4);
        let sig = sk.sign(&m);
        let s: [u8; 32] = sig.0[32..].try_into().unwrap();
        let mut bad = sig;
        bad.0[32..].copy_from_slice(&add_le(&s, &ELL));
        assert_eq!(
            verify(&sk.public_key(), &m, &bad),
            Err(SignatureError::NonCanonicalS)
        );
        // S = ℓ exactly is non-canonical too.
        bad.0[32..].copy_from_slice(&ELL);
        assert_eq!(
            verify(&sk.public_key(), &m, &bad),
            Err(SignatureError::NonCanonicalS)
        );
    }

    #[test]
    fn small_order_and_malformed_r_are_rejected() {
        let sk = key(5);
        let pk = sk.public_key();
        let m = vote(5);
        let sig = sk.sign(&m);
        for t in EIGHT_TORSION {
            let mut bad = sig;
            bad.0[..32].copy_from_slice(&t.compress().0);
            assert_eq!(verify(&pk, &m, &bad), Err(SignatureError::SmallOrderR));
        }
        // Identity with the sign bit set: canonical y, decompresses, small order.
        let mut bad = sig;
        bad.0[..32].copy_from_slice(&[0; 32]);
        bad.0[0] = 1;
        bad.0[31] = 0x80;
        assert_eq!(verify(&pk, &m, &bad), Err(SignatureError::SmallOrderR));
        // y = p + 1 ≡ 1: would decompress to the identity, but the encoding is non-canonical.
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        bad.0[..32].copy_from_slice(&p_plus_1);
        assert_eq!(verify(&pk, &m, &bad), Err(SignatureError::NonCanonicalR));
        // A y with no x on the curve.
        let off_curve = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| CompressedEdwardsY(*b).decompress().is_none())
            .unwrap();
        bad.0[..32].copy_from_slice(&off_curve);
        assert_eq!(verify(&pk, &m, &bad), Err(SignatureError::InvalidR));
    }

    #[test]
    fn key_errors() {
        // y = p: non-canonical (≡ 0, which is on the curve).
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert_eq!(
            PublicKey::from_bytes(&p),
            Err(KeyError::NonCanonicalEncoding)
        );
        let mut p_plus_1 = p;
        p_plus_1[0] = 0xee;
        assert_eq!(
            PublicKey::from_bytes(&p_plus_1),
            Err(KeyError::NonCanonicalEncoding)
        );
        p_plus_1[31] |= 0x80;
        assert_eq!(
            PublicKey::from_bytes(&p_plus_1),
            Err(KeyError::NonCanonicalEncoding)
        );
        // Not on the curve.
        let off_curve = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| CompressedEdwardsY(*b).decompress().is_none())
            .unwrap();
        assert_eq!(PublicKey::from_bytes(&off_curve), Err(KeyError::NotOnCurve));
        // Every small-order point, including the identity, and the identity with the sign bit.
        for t in EIGHT_TORSION {
            assert_eq!(
                PublicKey::from_bytes(&t.compress().0),
                Err(KeyError::NotTorsionFree)
            );
        }
        let mut neg_zero_identity = [0u8; 32];
        neg_zero_identity[0] = 1;
        neg_zero_identity[31] = 0x80;
        assert_eq!(
            PublicKey::from_bytes(&neg_zero_identity),
            Err(KeyError::NotTorsionFree)
        );
        // Mixed order: a valid key plus a torsion point.
        let valid = key(6).public_key();
        for t in &EIGHT_TORSION[1..] {
            let mixed = (valid.point + t).compress().0;
            assert_eq!(PublicKey::from_bytes(&mixed), Err(KeyError::NotTorsionFree));
        }
        // Hex.
        assert_eq!(PublicKey::from_hex(&valid.to_hex()), Ok(valid.clone()));
        assert_eq!(
            PublicKey::from_hex(&valid.to_hex().to_uppercase()),
            Ok(valid.clone())
        );
        assert_eq!(PublicKey::from_hex("00"), Err(KeyError::WrongLength(2)));
        assert_eq!(PublicKey::from_hex(&"zz".repeat(32)), Err(KeyError::NotHex));
        assert_eq!(
            PublicKey::from_hex(&hex::encode(p)),
            Err(KeyError::NonCanonicalEncoding)
        );
    }

    #[test]
    fn serde_and_encoding() {
        let sk = key(8);
        let pk = sk.public_key();
        let sig = sk.sign(b"m");
        let json = serde_json::to_string(&pk).unwrap();
        assert_eq!(json, format!("\"{}\"", pk.to_hex()));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), pk);
        let bad = format!("\"{}\"", hex::encode(EIGHT_TORSION[1].compress().0));
        assert!(serde_json::from_str::<PublicKey>(&bad).is_err());
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(json, format!("\"{}\"", sig.to_hex()));
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), sig);
        assert!(serde_json::from_str::<Signature>("\"00\"").is_err());

        assert_eq!(pk.encode(), pk.as_bytes().to_vec());
        assert_eq!(PublicKey::decode(&pk.encode()), Ok(pk.clone()));
        assert_eq!(sig.encode(), sig.0.to_vec());
        assert_eq!(Signature::decode(&sig.encode()), Ok(sig));
        assert_eq!(
            PublicKey::decode(&EIGHT_TORSION[0].compress().0),
            Err(DecodeError::Invalid {
                what: "public key",
                reason: KeyError::NotTorsionFree.to_string()
            })
        );
        assert!(matches!(
            PublicKey::decode(&[1; 31]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert_eq!(format!("{pk:?}"), format!("PublicKey({})", pk.to_hex()));
        assert_eq!(format!("{pk}"), pk.to_hex());
        assert_eq!(format!("{sig:?}"), format!("Signature({})", sig.to_hex()));
        assert!(!format!("{sk:?}").contains(&hex::encode(sk.seed())));
    }

    #[test]
    fn key_order_and_hash_follow_bytes() {
        let mut keys: Vec<PublicKey> = (0..20).map(|i| key(i).public_key()).collect();
        keys.sort();
        assert!(keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
        let set: std::collections::HashSet<PublicKey> = keys.iter().cloned().collect();
        assert_eq!(set.len(), 20);
    }

    #[test]
    fn honest_signatures_agree_with_dalek_verify_strict() {
        for i in 0..32 {
            let sk = key(i);
            let m = vote(i);
            let sig = sk.sign(&m);
            let pk = sk.public_key();
            let dalek_vk = ed25519_dalek::VerifyingKey::from_bytes(pk.as_bytes()).unwrap();
            let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig.0);
            assert!(dalek_vk.verify_strict(&m, &dalek_sig).is_ok());
            assert_eq!(verify(&pk, &m, &sig), Ok(()));
            let other = vote(i + 1000);
            assert!(dalek_vk.verify_strict(&other, &dalek_sig).is_err());
            assert_eq!(verify(&pk, &other, &sig), Err(SignatureError::Equation));
        }
    }

    #[test]
    fn mixed_order_r_is_accepted_by_both_paths() {
        // The cofactorless equation rejects it (so does verify_strict); the cofactored one
        // accepts, in the single path and in every batch it is part of.
        let msg = vote(42);
        let mut extra = Owned::honest(10, true);
        for (j, t) in EIGHT_TORSION[1..].iter().enumerate() {
            let a = Scalar::from(1000u64 + j as u64);
            let r = Scalar::from(77u64 + j as u64);
            let (pk, sig) = mixed_order_r_signature(a, r, *t, &msg);
            assert_eq!(verify(&pk, &msg, &sig), Ok(()));
            let item = BatchItem {
                key: &pk,
                message: &msg,
                signature: &sig,
            };
            assert_eq!(verify_batch(&[item]), Ok(()));
            let dalek_vk = ed25519_dalek::VerifyingKey::from_bytes(pk.as_bytes()).unwrap();
            let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig.0);
            assert!(dalek_vk.verify_strict(&msg, &dalek_sig).is_err());
            extra.keys.push(pk);
            extra.msgs.push(msg.to_vec());
            extra.sigs.push(sig);
        }
        assert_eq!(verify_batch(&extra.items()), Ok(()));
    }

    #[test]
    fn valid_batches_are_accepted() {
        assert_eq!(verify_batch(&[]), Ok(()));
        for n in [1, 2, 3, 4, 5, 67, 200] {
            for shared in [true, false] {
                let o = Owned::honest(n, shared);
                assert_eq!(
                    verify_batch(&o.items()),
                    Ok(()),
                    "n = {n}, shared = {shared}"
                );
            }
        }
    }

    #[test]
    fn one_bad_item_anywhere_rejects_the_batch() {
        let n = 67;
        let o = Owned::honest(n, true);
        let other_sig = key(999).sign(&vote(0));
        for bad in [0, 1, 33, 65, 66] {
            // Wrong message / wrong key / wrong signature: only the equation fails.
            let mut items = o.items();
            let wrong_msg = vote(1);
            items[bad].message = &wrong_msg;
            assert_eq!(
                verify_batch(&items),
                Err(BatchError::Equation),
                "msg at {bad}"
            );
            let mut items = o.items();
            items[bad].key = &o.keys[(bad + 1) % o.keys.len()];
            assert_eq!(
                verify_batch(&items),
                Err(BatchError::Equation),
                "key at {bad}"
            );
            let mut items = o.items();
            items[bad].signature = &other_sig;
            assert_eq!(
                verify_batch(&items),
                Err(BatchError::Equation),
                "sig at {bad}"
            );
            // Malformed items are reported with their index.
            let mut non_canonical_s = o.sigs[bad];
            non_canonical_s.0[63] |= 0xf0;
            let mut small_r = o.sigs[bad];
            small_r.0[..32].copy_from_slice(&EIGHT_TORSION[3].compress().0);
            for (sig, error) in [
                (non_canonical_s, SignatureError::NonCanonicalS),
                (small_r, SignatureError::SmallOrderR),
            ] {
                let mut items = o.items();
                items[bad].signature = &sig;
                assert_eq!(
                    verify_batch(&items),
                    Err(BatchError::Item {
                        index: bad,
                        error: error.clone()
                    })
                );
                assert_eq!(verify(items[bad].key, items[bad].message, &sig), Err(error));
            }
        }
    }

    #[test]
    fn swapped_signatures_do_not_cancel() {
        // Two signatures on the same message swapped between keys: each is invalid.
        let o = Owned::honest(4, true);
        let mut items = o.items();
        items.swap(1, 2);
        let (k1, k2) = (items[1].key, items[2].key);
        items[1].key = k2;
        items[2].key = k1;
        assert_eq!(verify_batch(&items), Err(BatchError::Equation));
    }

    #[test]
    fn batch_of_one_agrees_with_single() {
        let sk = key(11);
        let pk = sk.public_key();
        let m = vote(11);
        let sig = sk.sign(&m);
        let mut cases = vec![sig];
        for bit in (0..512).step_by(7) {
            let mut bad = sig;
            bad.0[bit / 8] ^= 1 << (bit % 8);
            cases.push(bad);
        }
        for s in &cases {
            let item = BatchItem {
                key: &pk,
                message: &m,
                signature: s,
            };
            let single = verify(&pk, &m, s);
            let batch = verify_batch(&[item]);
            match single {
                Ok(()) => assert_eq!(batch, Ok(())),
                Err(SignatureError::Equation) => assert_eq!(batch, Err(BatchError::Equation)),
                Err(error) => assert_eq!(batch, Err(BatchError::Item { index: 0, error })),
            }
        }
    }
}
