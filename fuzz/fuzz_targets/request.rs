//! Request decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use p2p_proto::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let bytes = r.encode();
        assert_eq!(Request::decode(&bytes).ok(), Some(r));
    }
});
