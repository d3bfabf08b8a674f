//! Response decoding never panics, and what decodes re-encodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use p2p_proto::Response;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Response::decode(data) {
        let bytes = r.encode();
        assert_eq!(Response::decode(&bytes).ok(), Some(r));
    }
});
