//! Transaction decoding and the context-free checks never panic; a decoded
//! transaction re-encodes to the same bytes, so its txid is well defined.
#![no_main]
use chain_core::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Transaction::decode(data) {
        assert_eq!(t.encode(), data);
        let _ = t.check();
        let _ = t.txid();
    }
});
