//! Block decoding and the context-free checks never panic; a decoded block
//! re-encodes to the same bytes (one canonical encoding).
#![no_main]
use chain_core::validation::check_block;
use chain_core::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Block::decode(data) {
        assert_eq!(b.encode(), data);
        let _ = check_block(&b);
    }
});
