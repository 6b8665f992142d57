//! Arbitrary `Authorization` header values into every parser: none may panic,
//! and whatever parses must survive a format/parse round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values are bytes on the wire; the gateway only hands valid UTF-8
    // to the parsers, and the lossy conversion keeps the odd bytes as U+FFFD.
    tollgate_sign_fuzz::authorization_parse(&String::from_utf8_lossy(data));
});
