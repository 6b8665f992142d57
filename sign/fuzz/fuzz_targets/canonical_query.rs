//! Arbitrary query pairs into every canonical-query builder: the output may
//! only hold unreserved characters, `%XX`, `=` and `&`, and must decode back
//! to the input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|pairs: Vec<(String, String)>| {
    tollgate_sign_fuzz::canonical_query(&pairs);
});
