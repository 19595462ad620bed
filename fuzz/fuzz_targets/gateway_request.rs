//! What a client controls before any handler runs: each route's query string and JSON
//! body, numbers in paths, case references.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ribat_gateway::fuzzing::decode(data);
});
