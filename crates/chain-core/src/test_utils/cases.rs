//! The invalid blocks and transactions a node must refuse, each built on top
//! of a real chain tip so that only the one broken rule fails.
//!
//! The same cases run against the chain store directly and over the network
//! from a misbehaving peer.

use super::{outputs_of, spend};
use crate::amount::Amount;
use crate::block::{merkle_root, Block, BlockHeader, ChainParams, MAX_BLOCK_SIZE};
use crate::keys::PrivateKey;
use crate::miner::{assemble_block, solve};
use crate::pow::Target;
use crate::transaction::{OutPoint, Transaction, TxIn, TxOut, MAX_TX_SIZE};
use crate::validation::{BlockError, InputError};
use crate::{CompactTarget, TxError};
use std::sync::atomic::AtomicBool;

/// What the cases build on: a chain tip and coins of `key` in it.
#[derive(Clone)]
pub struct CaseBase {
    /// The chain's parameters.
    pub params: ChainParams,
    /// The tip every case extends.
    pub tip: BlockHeader,
    /// The median time of the last 11 blocks up to the tip.
    pub median_time_past: u64,
    /// The time the receiver judges blocks at.
    pub now: u64,
    /// Owner of `coins` and `spent`.
    pub key: PrivateKey,
    /// At least two unspent outputs of `key`.
    pub coins: Vec<(OutPoint, TxOut)>,
    /// An output of `key` that is already spent on this chain.
    pub spent: (OutPoint, TxOut),
}

/// One invalid block and the refusal it must get.
pub struct BlockCase {
    /// Short name of the broken rule.
    pub name: &'static str,
    /// Blocks offered first: an invalid parent, refused in its own right.
    pub before: Vec<Block>,
    /// The invalid block.
    pub block: Block,
    /// True when the refusal is the expected one.
    pub expect: fn(&BlockError) -> bool,
    /// A valid block to offer afterwards that must be accepted.
    pub honest_after: Option<Block>,
    /// The fault is only one of timing (not an offence by the sender).
    pub timing_only: bool,
}

/// One invalid transaction and the refusal it must get.
pub struct TxCase {
    /// Short name of the broken rule.
    pub name: &'static str,
    /// Valid transactions offered first (for a conflict with the mempool).
    pub before: Vec<Transaction>,
    /// The invalid transaction.
    pub tx: Transaction,
    /// What the refusal message must contain.
    pub reason: &'static str,
}

impl CaseBase {
    fn pkh(&self) -> crate::PubkeyHash {
        self.key.public_key().pubkey_hash()
    }

    /// A time valid for a child of the tip.
    pub fn next_time(&self) -> u64 {
        self.tip.time.max(self.median_time_past) + 1
    }

    /// A signed spend of coin `i` paying 1 to the key itself, change back.
    pub fn pay(&self, i: usize) -> Transaction {
        spend(
            &self.key,
            &[self.coins[i]],
            self.pkh(),
            Amount(1),
            Amount(0),
        )
    }

    /// An output of `v` to the key.
    pub fn out(&self, v: u64) -> TxOut {
        TxOut {
            value: Amount(v),
            pubkey_hash: self.pkh(),
        }
    }

    /// A transaction spending `coins` (all the key's) into exactly
    /// `outputs`, signed by the key: lets a case break the value rules.
    pub fn signed(&self, outputs: Vec<TxOut>, coins: &[(OutPoint, TxOut)]) -> Transaction {
        let mut tx = unsigned(outputs, coins.iter().map(|c| c.0).collect());
        let spent: Vec<TxOut> = coins.iter().map(|c| c.1).collect();
        let keys: Vec<&PrivateKey> = coins.iter().map(|_| &self.key).collect();
        tx.sign_all(&spent, &keys);
        tx
    }

    /// An unsolved child of the tip with `txs` after a correct coinbase.
    fn assemble(&self, txs: Vec<Transaction>, fees: Amount) -> Block {
        assemble_block(
            &self.params,
            &self.tip,
            self.tip.bits,
            self.next_time(),
            self.pkh(),
            txs,
            fees,
        )
    }

    /// A solved valid child of the tip holding `txs`.
    pub fn valid_block(&self, txs: Vec<Transaction>) -> Block {
        let mut b = self.assemble(txs, Amount::ZERO);
        mine(&mut b);
        b
    }

    /// A solved child of the tip whose body is `txs` exactly (no coinbase added).
    fn block_of(&self, txs: Vec<Transaction>) -> Block {
        let mut b = self.assemble(vec![], Amount::ZERO);
        b.transactions = txs;
        remine(&mut b);
        b
    }
}

fn unsigned(outputs: Vec<TxOut>, inputs: Vec<OutPoint>) -> Transaction {
    Transaction {
        version: 1,
        inputs: inputs
            .into_iter()
            .map(|prevout| TxIn {
                prevout,
                signature: vec![],
                pubkey: vec![],
            })
            .collect(),
        outputs,
    }
}

fn mine(b: &mut Block) {
    assert!(
        solve(b, 1, &AtomicBool::new(false), &mut |_| {}),
        "a nonce exists for test difficulties"
    );
}

fn remine(b: &mut Block) {
    b.header.merkle_root = merkle_root(&b.txids());
    mine(b);
}

/// The high-S twin of a strict-DER low-S signature.
pub fn high_s_twin(der: &[u8]) -> Vec<u8> {
    use k256::ecdsa::Signature;
    let sig = Signature::from_der(der).expect("a signature made by this crate");
    let neg = -*sig.s().as_ref();
    let high = Signature::from_scalars(sig.r().to_bytes(), neg.to_bytes())
        .expect("n - s is a valid scalar");
    high.to_der().as_bytes().to_vec()
}

fn with_input_sig(mut tx: Transaction, i: usize, sig: Vec<u8>) -> Transaction {
    tx.inputs[i].signature = sig;
    tx
}

fn input_error(e: &BlockError, f: fn(&InputError) -> bool) -> bool {
    matches!(e, BlockError::Input(ie) if f(ie))
}

fn bad_signature(e: &BlockError) -> bool {
    input_error(
        e,
        |ie| matches!(ie, InputError::BadSignature { reason, .. } if reason.contains("does not verify")),
    )
}

/// Builds one case on a base.
pub type MakeCase = fn(&CaseBase) -> BlockCase;

/// Every invalid-block case, by name.
pub const BLOCK_CASES: &[(&str, MakeCase)] = &[
    ("bad proof of work", bad_proof_of_work),
    ("bits not the expected difficulty", unexpected_bits),
    ("bad merkle root", bad_merkle_root),
    (
        "duplicated transactions, same merkle root",
        duplicate_txs_same_root,
    ),
    ("no coinbase", no_coinbase),
    ("second coinbase", second_coinbase),
    ("coinbase over reward plus fees", coinbase_too_large),
    ("double spend inside one block", double_spend_in_block),
    (
        "spends an output that does not exist",
        spends_missing_output,
    ),
    (
        "spends an output already spent on this chain",
        spends_spent_output,
    ),
    ("outputs worth more than inputs", outputs_exceed_inputs),
    ("amount overflow", amount_overflow),
    ("bad signature", bad_sig),
    ("signature of another input", signature_of_another_input),
    ("signature of another transaction", signature_of_another_tx),
    ("high-S signature", high_s),
    ("public key not the spent output's", pubkey_mismatch),
    ("time more than 2 hours ahead", time_too_new),
    ("time not above the median of the last 11", time_too_old),
    ("wrong height", wrong_height),
    ("over the size limit", oversized),
    ("parent known to be invalid", invalid_parent),
];

fn case(name: &'static str, block: Block, expect: fn(&BlockError) -> bool) -> BlockCase {
    BlockCase {
        name,
        before: vec![],
        block,
        expect,
        honest_after: None,
        timing_only: false,
    }
}

/// A valid block whose nonce is changed until the hash misses the target.
pub fn bad_proof_of_work(base: &CaseBase) -> BlockCase {
    let mut b = base.valid_block(vec![]);
    let target = b.header.bits.to_target().expect("valid bits");
    while target.is_met_by(&b.header.hash()) {
        b.header.nonce = b.header.nonce.wrapping_add(1);
    }
    case("bad proof of work", b, |e| {
        matches!(e, BlockError::BadProofOfWork { .. })
    })
}

/// A block mined to a harder target than the chain expects.
pub fn unexpected_bits(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    let t = base.tip.bits.to_target().expect("valid bits");
    b.header.bits = Target(t.0 >> 1).to_compact();
    mine(&mut b);
    case("bits not the expected difficulty", b, |e| {
        matches!(e, BlockError::UnexpectedBits { .. })
    })
}

/// A header whose merkle root does not commit to the body.
pub fn bad_merkle_root(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![base.pay(0)], Amount::ZERO);
    b.header.merkle_root.0[0] ^= 1;
    mine(&mut b);
    case("bad merkle root", b, |e| {
        matches!(e, BlockError::BadMerkleRoot { .. })
    })
}

/// CVE-2012-2459: repeating the last transaction of an odd list keeps the
/// merkle root, so the header (and hash) equal the honest block's.
pub fn duplicate_txs_same_root(base: &CaseBase) -> BlockCase {
    let t1 = base.pay(0);
    let t2 = spend(
        &base.key,
        &[outputs_of(&t1)[0]],
        base.pkh(),
        Amount(1),
        Amount::ZERO,
    );
    let honest = base.valid_block(vec![t1, t2.clone()]);
    let mut mutated = honest.clone();
    mutated.transactions.push(t2);
    assert_eq!(mutated.hash(), honest.hash(), "same header");
    BlockCase {
        honest_after: Some(honest),
        ..case("duplicated transactions, same merkle root", mutated, |e| {
            matches!(e, BlockError::DuplicateTxid(_))
        })
    }
}

/// A block whose first transaction is not a coinbase.
pub fn no_coinbase(base: &CaseBase) -> BlockCase {
    let b = base.block_of(vec![base.pay(0)]);
    case("no coinbase", b, |e| {
        matches!(e, BlockError::FirstNotCoinbase)
    })
}

/// A block with two coinbases.
pub fn second_coinbase(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    let h = base.tip.height + 1;
    b.transactions
        .push(Transaction::coinbase(h, base.pkh(), Amount(1), b"again"));
    remine(&mut b);
    case("second coinbase", b, |e| {
        matches!(e, BlockError::ExtraCoinbase { .. })
    })
}

/// A coinbase that claims one more than the reward plus the fees.
pub fn coinbase_too_large(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    let h = base.tip.height + 1;
    let too_much = base.params.reward.checked_add(Amount(1)).expect("small");
    b.transactions[0] = Transaction::coinbase(h, base.pkh(), too_much, b"");
    remine(&mut b);
    case("coinbase over reward plus fees", b, |e| {
        matches!(e, BlockError::CoinbaseTooLarge { .. })
    })
}

/// Two transactions of one block spending the same output.
pub fn double_spend_in_block(base: &CaseBase) -> BlockCase {
    let a = base.pay(0);
    let other = PrivateKey::generate().public_key().pubkey_hash();
    let b2 = spend(&base.key, &[base.coins[0]], other, Amount(1), Amount::ZERO);
    let b = base.valid_block(vec![a, b2]);
    case("double spend inside one block", b, |e| {
        matches!(e, BlockError::DoubleSpendInBlock { .. })
    })
}

/// An input that spends an output nobody created.
pub fn spends_missing_output(base: &CaseBase) -> BlockCase {
    let ghost = (
        OutPoint {
            txid: crate::Txid([0x5a; 32]),
            vout: 0,
        },
        base.coins[0].1,
    );
    let tx = spend(&base.key, &[ghost], base.pkh(), Amount(1), Amount::ZERO);
    case(
        "spends an output that does not exist",
        base.valid_block(vec![tx]),
        |e| input_error(e, |ie| matches!(ie, InputError::Missing { .. })),
    )
}

/// An input that spends an output already spent on this chain.
pub fn spends_spent_output(base: &CaseBase) -> BlockCase {
    let tx = spend(
        &base.key,
        &[base.spent],
        base.pkh(),
        Amount(1),
        Amount::ZERO,
    );
    case(
        "spends an output already spent on this chain",
        base.valid_block(vec![tx]),
        |e| input_error(e, |ie| matches!(ie, InputError::Missing { .. })),
    )
}

/// A transaction that pays out one more than it spends.
pub fn outputs_exceed_inputs(base: &CaseBase) -> BlockCase {
    let coin = base.coins[0];
    let value = coin.1.value.checked_add(Amount(1)).expect("small");
    let tx = base.signed(vec![base.out(value.0)], &[coin]);
    case(
        "outputs worth more than inputs",
        base.valid_block(vec![tx]),
        |e| input_error(e, |ie| matches!(ie, InputError::ValueCreated { .. })),
    )
}

/// Outputs whose sum does not fit in 64 bits.
pub fn amount_overflow(base: &CaseBase) -> BlockCase {
    let tx = base.signed(vec![base.out(u64::MAX), base.out(2)], &[base.coins[0]]);
    case("amount overflow", base.valid_block(vec![tx]), |e| {
        matches!(e, BlockError::Tx(TxError::OutputOverflow(_)))
    })
}

/// A signature with one bit of `s` flipped.
pub fn bad_sig(base: &CaseBase) -> BlockCase {
    let tx = base.pay(0);
    let mut sig = tx.inputs[0].signature.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    let tx = with_input_sig(tx, 0, sig);
    case("bad signature", base.valid_block(vec![tx]), bad_signature)
}

/// Two inputs of one transaction with their (valid) signatures swapped.
pub fn signature_of_another_input(base: &CaseBase) -> BlockCase {
    let mut tx = spend(
        &base.key,
        &[base.coins[0], base.coins[1]],
        base.pkh(),
        Amount(1),
        Amount::ZERO,
    );
    let (a, b) = (
        tx.inputs[0].signature.clone(),
        tx.inputs[1].signature.clone(),
    );
    tx.inputs[0].signature = b;
    tx.inputs[1].signature = a;
    case(
        "signature of another input",
        base.valid_block(vec![tx]),
        bad_signature,
    )
}

/// A signature made for another transaction spending the same output.
pub fn signature_of_another_tx(base: &CaseBase) -> BlockCase {
    let other = PrivateKey::generate().public_key().pubkey_hash();
    let theirs = spend(&base.key, &[base.coins[0]], other, Amount(1), Amount::ZERO);
    let ours = base.pay(0);
    let tx = with_input_sig(ours, 0, theirs.inputs[0].signature.clone());
    case(
        "signature of another transaction",
        base.valid_block(vec![tx]),
        bad_signature,
    )
}

/// The malleated high-S twin of a valid signature.
pub fn high_s(base: &CaseBase) -> BlockCase {
    let tx = base.pay(0);
    let twin = high_s_twin(&tx.inputs[0].signature);
    let tx = with_input_sig(tx, 0, twin);
    case("high-S signature", base.valid_block(vec![tx]), |e| {
        input_error(
            e,
            |ie| matches!(ie, InputError::BadSignature { reason, .. } if reason.contains("high S")),
        )
    })
}

/// A spend signed by a key that does not own the output.
pub fn pubkey_mismatch(base: &CaseBase) -> BlockCase {
    let thief = PrivateKey::generate();
    let tx = spend(
        &thief,
        &[base.coins[0]],
        base.pkh(),
        Amount(1),
        Amount::ZERO,
    );
    case(
        "public key not the spent output's",
        base.valid_block(vec![tx]),
        |e| input_error(e, |ie| matches!(ie, InputError::PubkeyMismatch { .. })),
    )
}

/// A time three hours after `now`.
pub fn time_too_new(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    b.header.time = base.now + 3 * 3600;
    mine(&mut b);
    BlockCase {
        timing_only: true,
        ..case("time more than 2 hours ahead", b, |e| {
            matches!(e, BlockError::TimeTooNew { .. })
        })
    }
}

/// A time equal to the median of the last 11 blocks.
pub fn time_too_old(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    b.header.time = base.median_time_past;
    mine(&mut b);
    case("time not above the median of the last 11", b, |e| {
        matches!(e, BlockError::TimeTooOld { .. })
    })
}

/// A header (and coinbase) height that is not the parent's plus one.
pub fn wrong_height(base: &CaseBase) -> BlockCase {
    let mut b = base.assemble(vec![], Amount::ZERO);
    let h = base.tip.height + 2;
    b.header.height = h;
    b.transactions[0] = Transaction::coinbase(h, base.pkh(), base.params.reward, b"");
    remine(&mut b);
    case("wrong height", b, |e| {
        matches!(e, BlockError::BadHeight { .. })
    })
}

/// A block a few bytes over the size limit, filled with large transactions
/// (just over, so that it still fits the network's frame caps and reaches
/// the block rules).
pub fn oversized(base: &CaseBase) -> BlockCase {
    let filler_outputs = (MAX_TX_SIZE - 1_000) / 40;
    let filler = |n: u32, outputs: usize| Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint {
                txid: crate::Txid([0x77; 32]),
                vout: n,
            },
            signature: vec![0; 70],
            pubkey: vec![2; 33],
        }],
        outputs: vec![
            TxOut {
                value: Amount(1),
                pubkey_hash: base.pkh(),
            };
            outputs
        ],
    };
    let mut txs = Vec::new();
    let mut n = 0;
    while base.assemble(txs.clone(), Amount::ZERO).encode().len() <= MAX_BLOCK_SIZE {
        n += 1;
        txs.push(filler(n, filler_outputs));
    }
    // Trim the last filler so the block is only just over the limit.
    let size = base.assemble(txs.clone(), Amount::ZERO).encode().len();
    let one_output = 28; // an 8-byte value and a 20-byte hash
    let trim = (size - MAX_BLOCK_SIZE - 1) / one_output;
    txs.pop();
    txs.push(filler(n, filler_outputs - trim));
    let b = base.valid_block(txs);
    let size = b.encode().len();
    assert!(
        size > MAX_BLOCK_SIZE && size <= MAX_BLOCK_SIZE + 64,
        "{size}"
    );
    case("over the size limit", b, |e| {
        matches!(e, BlockError::Oversized(_))
    })
}

/// A valid child of a block that was refused for its contents.
pub fn invalid_parent(base: &CaseBase) -> BlockCase {
    let parent = bad_sig(base).block;
    let child_base = CaseBase {
        tip: parent.header,
        ..base.clone()
    };
    let child = child_base.valid_block(vec![]);
    BlockCase {
        before: vec![parent],
        ..case("parent known to be invalid", child, |e| {
            matches!(e, BlockError::InvalidParent(_))
        })
    }
}

/// Every invalid-transaction case for the mempool and relay.
pub fn tx_cases(base: &CaseBase) -> Vec<TxCase> {
    let pkh = base.pkh();
    let coin = base.coins[0];
    let signed = |outputs, coins: &[(OutPoint, TxOut)]| base.signed(outputs, coins);
    let out = |v: u64| base.out(v);
    let first = base.pay(0);
    let conflicting = spend(
        &base.key,
        &[coin],
        PrivateKey::generate().public_key().pubkey_hash(),
        Amount(1),
        Amount::ZERO,
    );
    let mut bad = base.pay(1);
    let last = bad.inputs[0].signature.len() - 1;
    bad.inputs[0].signature[last] ^= 1;
    let high = {
        let t = base.pay(1);
        let twin = high_s_twin(&t.inputs[0].signature);
        with_input_sig(t, 0, twin)
    };
    let huge = signed(vec![out(1); MAX_TX_SIZE / 20], &[coin]);
    let ghost = OutPoint {
        txid: crate::Txid([0x5a; 32]),
        vout: 0,
    };
    vec![
        TxCase {
            name: "no inputs",
            before: vec![],
            tx: unsigned(vec![out(1)], vec![]),
            reason: "has no inputs",
        },
        TxCase {
            name: "no outputs",
            before: vec![],
            tx: signed(vec![], &[coin]),
            reason: "has no outputs",
        },
        TxCase {
            name: "zero amount",
            before: vec![],
            tx: signed(vec![out(0)], &[coin]),
            reason: "is zero",
        },
        TxCase {
            name: "overflowing amounts",
            before: vec![],
            tx: signed(vec![out(u64::MAX), out(2)], &[coin]),
            reason: "overflow",
        },
        TxCase {
            name: "duplicate inputs",
            before: vec![],
            tx: signed(vec![out(1)], &[coin, coin]),
            reason: "twice",
        },
        TxCase {
            name: "missing input",
            before: vec![],
            tx: signed(vec![out(1)], &[(ghost, coin.1)]),
            reason: "does not exist or is already spent",
        },
        TxCase {
            name: "double spend against the chain",
            before: vec![],
            tx: signed(vec![out(1)], &[base.spent]),
            reason: "does not exist or is already spent",
        },
        TxCase {
            name: "double spend against the mempool",
            before: vec![first],
            tx: conflicting,
            reason: "replacement pays too little",
        },
        TxCase {
            name: "bad signature",
            before: vec![],
            tx: bad,
            reason: "does not verify",
        },
        TxCase {
            name: "high-S signature",
            before: vec![],
            tx: high,
            reason: "high S",
        },
        TxCase {
            name: "coinbase outside a block",
            before: vec![],
            tx: Transaction::coinbase(base.tip.height + 1, pkh, Amount(20), b""),
            reason: "coinbase",
        },
        TxCase {
            name: "oversized transaction",
            before: vec![],
            tx: huge,
            reason: "the limit is",
        },
    ]
}

/// The compact target for `bits` leading zero bits (re-exported for tests).
pub fn bits(zero_bits: u32) -> CompactTarget {
    CompactTarget::from_leading_zero_bits(zero_bits).expect("1..=255")
}
