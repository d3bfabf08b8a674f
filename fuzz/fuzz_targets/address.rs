//! Address and WIF parsing never panic; a parsed address prints as the input.
#![no_main]
use chain_core::keys::PrivateKey;
use chain_core::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(a) = Address::parse(text) {
            assert_eq!(a.to_string(), text);
        }
        let _ = PrivateKey::from_wif(text);
    }
});
